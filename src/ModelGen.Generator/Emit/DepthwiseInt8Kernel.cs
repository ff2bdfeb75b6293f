using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A depthwise convolution in int8 arithmetic (Compression int8), one channel at a time. The channel's
/// plane is quantized to uint8 values (round half to even, saturating, as QuantizeU8 does), held as
/// float32, into a plane whose padding holds the zero point. The taps are then summed over a wide plane,
/// as the float32 depthwise kernel does. Every product and partial sum is an integer below 2^24, so the
/// float32 sums are exact whatever their order, and identical to the int32 sums of the evaluator. Last
/// comes y = (sum + bias[c])·multiplier[c] in int32 and then float32, as in the other int8 kernels.
/// A grouped GEMM with one channel per group, which these layers took before, spent most of its time
/// gathering patches. Undilated layers take the strips of the float32 depthwise kernel instead (EmitRows),
/// and over a uint8 input, on machines with AVX-VNNI, 4 taps a vpdpbusd from "quads" (EmitQuads).
/// </summary>
internal sealed class DepthwiseInt8Kernel : IKernel
{
    const string U = "Unsafe";

    const string V512 = "Vector512", V256 = "Vector256", V128 = "Vector128";

    public KernelKind Kernel => KernelKind.DepthwiseInt8;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "w", "bias", "multipliers" }[i];

    public void Emit(KernelContext k)
    {
        var method = ConvScratch.DepthwiseInt8MethodFor(k.Window.Dilations);
        if (k.Outputs.Length != 1 + ConvScratch.DepthwiseInt8ScratchOutputs(method))
            throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': the {method} method takes {ConvScratch.DepthwiseInt8ScratchOutputs(method)} scratch outputs");
        if (method == DepthwiseInt8Method.Rows)
        {
            EmitRows(k);
            return;
        }
        var w = k.W;
        var x = k.Inputs[0]; var y = k.Y;
        int[] kernel = k.Window.Kernel, s = k.Window.Strides, d = k.Window.Dilations, p = k.Window.Pads;
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3], oh = y.Shape[2], ow = y.Shape[3];
        var plane = k.Node.Plane ?? throw new FormatException($"DepthwiseInt8 '{k.Node.Name}' (dilated) has no plane");
        int rows = plane.Rows, pw = plane.Width, planeLength = (int)k.Outputs[3].ElementCount, wide = (int)k.Outputs[2].ElementCount, stride = s[1];
        int taps = kernel[0] * kernel[1];
        if (k.Inputs[1].ElementCount != (long)c * taps || s[0] != s[1] || stride is not (1 or 2))
            throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': weights must be [{c}, {taps}] and strides equal, 1 or 2");
        string scale = KernelContext.F(k.Int8Layer.Scale), inverse = KernelContext.F(1f / k.Int8Layer.Scale);
        int zero = k.Int8Layer.Zero;
        w.Line($"// Conv (depthwise) in int8: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ q[{c}, {kernel[0]}x{kernel[1]}], one filter per channel; stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}{k.ActName()}.");
        // uint8 in: the layer before wrote x quantized with these parameters; uint8 out: requantized for the next int8 layer.
        bool byteInput = x.Element == TensorElement.UInt8;
        var requant = Requant.Of(k);
        if (byteInput || requant is not null) k.Helpers.Add("Requantize");
        if (byteInput)
            w.Line($"// Per channel: x's uint8 plane (scale {scale}, zero point {zero}, as the layer before wrote it) widened to float32 into y3 ({rows}x{pw}; the zero point in the padding);");
        else
        {
            w.Line($"// Per channel: the plane copied into y1 ({rows}x{pw}, zeros in the padding), then all of it quantized to uint8 values (scale {scale},");
            w.Line($"// zero point {zero}; a padding 0 becomes the zero point) held as float32 in y3;");
        }
        w.Line($"// sum = Σ taps xq·q + bias[c] over a wide plane in y2 (exact in float32: every sum is an integer below 2^24);");
        w.Line(requant is null ? $"// y = sum·multiplier[c]{k.ActName()}; then {ow} columns per row copied out." : $"// {requant.Describe().Replace("[j]", "[c]").Replace("acc", "sum")}, {ow} columns per row.");
        using var kernelBody = k.OpenMethod();
        if (planeLength < rows * pw || planeLength % 16 != 0 || !byteInput && k.Outputs[1].ElementCount < planeLength)
            throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': the planes must hold {rows}x{pw} floats in whole vectors");
        KernelEmitter.CheckedRefs(w, [("x", x.ElementCount), ("w", k.Inputs[1].ElementCount), ("bias", c), ("multipliers", c), ("y", y.ElementCount), ("y1", byteInput ? 1 : planeLength), ("y2", wide), ("y3", planeLength)],
            ("rx", "x"), ("ry", "y"), ("rr", "y1"), ("rq", "y2"), ("rp", "y3"));
        w.Line("ref sbyte rw = ref MemoryMarshal.GetReference(w);");
        if (byteInput) w.Line($"y3.Slice(0, {planeLength}).Fill({zero}f); // the padding (the zero point), which the planes widened in never touch");
        else w.Line($"y1.Slice(0, {planeLength}).Clear(); // the padding, which the planes copied in never touch");
        using (w.Block($"for (int plane = 0; plane < {n * c}; plane++)"))
        {
            w.Line($"int ch = plane % {c};");
            w.Line($"int b = {ConvInt8Kernel.Bias(k, "bias[ch]")};");
            w.Line($"float m = {ConvInt8Kernel.Multiplier(k, "multipliers[ch]")};");
            if (requant is not null) w.Line($"int im = (int)({requant.IntegerMultiplier("m")}); ref byte rqb = ref {U}.As<float, byte>(ref rq);");
            w.Line(string.Join(" ", Enumerable.Range(0, taps).Select(t => $"float w{t} = {U}.Add(ref rw, ch * {taps} + {t});")));
            using (w.Block($"for (int r = 0; r < {h}; r++)"))
            {
                if (byteInput)
                {
                    w.Line($"ref byte src = ref {U}.Add(ref rx, (plane * {h} + r) * {wd}); ref float dst = ref {U}.Add(ref rp, (r + {p[0]}) * {pw} + {p[1]});");
                    if (k.Simd == SimdLevel.Auto && wd >= 8)
                    {
                        // 8 bytes at a time (vpmovzxbd, vcvtdq2ps); a last, overlapping 8 for the rest of the row.
                        var at = Enumerable.Range(0, wd / 8).Select(i => i * 8).Concat(wd % 8 != 0 ? [wd - 8] : Array.Empty<int>());
                        using (w.Block($"if (Avx2.IsSupported)"))
                        {
                            foreach (int o in at)
                                w.Line($"{V256}.StoreUnsafe(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32({V128}.AsByte({V128}.CreateScalar({U}.ReadUnaligned<ulong>(ref {U}.Add(ref src, {o})))))), ref dst, {o});");
                        }
                        w.Line($"else WidenU8(ref src, ref dst, {wd});");
                    }
                    else w.Line($"WidenU8(ref src, ref dst, {wd});");
                }
                else w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref rr, (r + {p[0]}) * {pw} + {p[1]})), ref {U}.As<float, byte>(ref {U}.Add(ref rx, (plane * {h} + r) * {wd})), {wd * 4});");
            }
            if (!byteInput) Quantize(w, k.Simd, planeLength, inverse, zero);
            var offsets = new List<int>();
            for (int kh = 0; kh < kernel[0]; kh++)
                for (int kw = 0; kw < kernel[1]; kw++) offsets.Add(kh * d[0] * pw + kw * d[1]);
            string? vectorAct = GemmEmitter.VectorActivation(k.Node, "V", "v");
            SimdLadder.Chain(w, SimdLadder.Widths(k.Simd), sw =>
            {
                string v = sw.V;
                int width = sw.Floats;
                w.Line(string.Join(" ", Enumerable.Range(0, taps).Select(t => $"var v{t} = {v}.Create(w{t});")));
                w.Line($"var vb = {v}.Create(b); var vm = {v}.Create(m);");
                using (w.Block($"for (int j = 0; j < {wide}; j += {width})"))
                {
                    DepthwiseConvEmitter.WideTaps(w, v, width, true, $"{v}<float>.Zero", "v", kernel, stride, offsets);
                    if (requant is not null)
                    {
                        // uint8 out: the int32 sums requantized (fixed point) into bytes of y2, copied out row by row below.
                        w.Line($"var sum = {v}.ConvertToInt32Native(acc) + vb;");
                        string mv = $"{V256}.Create(im)";
                        if (width == 16)
                            w.Line($"{V128}.StoreUnsafe({requant.Vector16("sum", $"{v}.Create(im)")}, ref rqb, (nuint)j);");
                        else if (width == 8)
                            w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref rqb, j), PackBytes8({requant.Vector("sum", mv)}));");
                        else
                            w.Line($"for (int e = 0; e < {width}; e++) {U}.Add(ref rqb, j + e) = {requant.Scalar($"{v}.GetElement(sum, e)", "im")};");
                    }
                    else
                    {
                        w.Line($"var v = {v}.ConvertToSingle({v}.ConvertToInt32Native(acc) + vb) * vm;");
                        w.Line($"{v}.StoreUnsafe({(vectorAct is null ? "v" : GemmEmitter.VectorActivation(k.Node, v, "v"))}, ref rq, (nuint)j);");
                    }
                }
            }, () =>
            {
                using (w.Block($"for (int j = 0; j < {wide}; j++)"))
                {
                    w.Line("float sum = 0f;");
                    for (int t = 0; t < taps; t++) w.Line($"sum += w{t} * {U}.Add(ref rp, {stride} * j + {offsets[t]});");
                    if (requant is not null) w.Line($"{U}.Add(ref rqb, j) = {requant.Scalar("(int)sum + b", "im")};");
                    else
                    {
                        w.Line("float v = ((int)sum + b) * m;");
                        w.Line($"{U}.Add(ref rq, j) = {(vectorAct is null ? "v" : k.Act())};");
                    }
                }
            });
            using (w.Block($"for (int oy = 0; oy < {oh}; oy++)"))
            {
                if (requant is not null)
                    w.Line($"{U}.CopyBlockUnaligned(ref {U}.Add(ref ry, (plane * {oh} + oy) * {ow}), ref {U}.Add(ref rqb, oy * {pw}), {ow});");
                else if (vectorAct is null)
                {
                    // An activation with no vector form: applied here, once per output.
                    w.Line($"for (int ox = 0; ox < {ow}; ox++) {{ float v = {U}.Add(ref rq, oy * {pw} + ox); {U}.Add(ref ry, (plane * {oh} + oy) * {ow} + ox) = {k.Act()}; }}");
                }
                else
                    w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref ry, (plane * {oh} + oy) * {ow})), ref {U}.As<float, byte>(ref {U}.Add(ref rq, oy * {pw})), {ow * 4});");
            }
        }
    }

    /// <summary>
    /// Undilated, horizontal stride 1 or 2: the strips of the float32 kernel (DepthwiseRowsEmitter) over one
    /// plane at a time of xq − zero point in y1 (float32; exact), so the padding, which stands for the zero
    /// point, is a plain zero. The sums then lack zero·Σw, which the bias takes back:
    /// Σ taps q·w (padding q = zero) + bias = Σ inside (q − zero)·w + bias + zero·Σ taps w.
    /// </summary>
    static void EmitRows(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0]; var y = k.Y;
        var g = DepthwiseRowsEmitter.Geometry(k.Node, x, y) ?? throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': the strips need no dilation and a horizontal stride of 1 or 2");
        int[] p = k.Window.Pads;
        // A uint8 input is read in place, each load widened. (Widening each plane first into y1 measured no faster.)
        bool bytes = x.Element == TensorElement.UInt8;
        long scratch = ConvScratch.DepthwiseInt8RowsFloats(g.M, g.Taps, g.H, g.W, bytes);
        if (g.Multiplier != 1 || k.Inputs[1].ElementCount != (long)g.M * g.Taps || k.Outputs[1].ElementCount < scratch)
            throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': weights must be [{g.M}, {g.Taps}] and y1 hold {scratch} floats (the weights{(bytes ? "" : " and a plane")})");
        var requant = Requant.Of(k);
        if (x.Element == TensorElement.UInt8 || requant is not null) k.Helpers.Add("Requantize");
        string scale = KernelContext.F(k.Int8Layer.Scale);
        w.Line($"// Conv (depthwise) in int8: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ q[{g.M}, {g.KH}x{g.KW}], {DepthwiseRowsEmitter.Filters(g)}; stride {g.SH}x{g.SW}, pads {string.Join(",", p)}{k.ActName()}.");
        w.Line($"// The int8 weights as float32 in y1 (once a call); per channel, {(bytes
            ? $"x's uint8 values (scale {scale}, zero point {k.Int8Layer.Zero}, as the layer before wrote it) widened as they are loaded, minus the zero point;"
            : $"the plane quantized to uint8 values (scale {scale}, zero point {k.Int8Layer.Zero}) minus the zero point, as float32 in y1 after the weights;")}");
        w.Line($"// the taps summed in vector strips of the output rows, {g.Accumulators} row(s) in flight, the padding masked to zero (exact in float32:");
        w.Line("// every sum is an integer below 2^24); sum + bias[c] + zero·Σw in int32, then " + (requant is null ? $"y = that·multiplier[c]{k.ActName()}." : "requantized to uint8 for the next layer:"));
        if (requant is not null) w.Line($"// {requant.Describe().Replace("[j]", "[c]").Replace("acc", "sum")}.");
        using var method = k.OpenMethod();
        var quads = bytes && k.Simd == SimdLevel.Auto && (requant is not null || GemmEmitter.VectorActivation(k.Node, V256, "v") is not null)
            ? DepthwiseQuadLayout.For(g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, p[0], p[1], p[2], p[3], 1, 1) : null;
        if (quads is not null)
        {
            scratch = Math.Max(scratch, (quads.ScratchBytes + 3) / 4);
            if (k.Outputs[1].ElementCount < scratch)
                throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': y1 must hold {quads.ScratchBytes} bytes (the padded plane and its quads)");
        }
        KernelEmitter.CheckedRefs(w, [("x", x.ElementCount), ("w", k.Inputs[1].ElementCount), ("bias", g.M), ("multipliers", g.M), ("y", y.ElementCount), ("y1", scratch)],
            ("rx", "x"), ("ry", "y"), ("rp", "y1"));
        w.Line("ref sbyte rw = ref MemoryMarshal.GetReference(w);");
        if (quads is not null)
        {
            using (w.Block($"if (AvxVnni.IsSupported)"))
            {
                EmitQuads(k, g, quads, requant);
            }
        }
        using (w.BlockIf(quads is not null, "else"))
        {
            EmitFloatWeights(w, k.Simd, g.M * g.Taps);
            if (!bytes) w.Line($"ref float qp = ref {U}.Add(ref rp, {g.M * g.Taps});");
            DepthwiseRowsEmitter.EmitBody(w, g, k.Simd, new Int8Rows(k, requant));
        }
    }

    /// <summary>
    /// AVX-VNNI over a uint8 input (DepthwiseQuadLayout): per channel the plane copied into a padded plane (the zero
    /// point in the padding, written once a call), expanded into quads (one vpshufb per 8), then per 8 outputs one
    /// vpdpbusd per kernel row and 4 taps, from the channel's bias: the evaluator's Σ taps q·w + bias, in int32.
    /// The three steps run a channel apart (two padded planes and two quad planes, used in turn): the loads of each
    /// step read what was stored a whole channel before, not stores still in flight, which they cannot take bytes
    /// from when they straddle two (a store-forwarding stall; building and using in one pass measured slower than
    /// the float32 strips it replaces).
    /// </summary>
    static void EmitQuads(KernelContext k, DepthwiseRowsEmitter.Shape g, DepthwiseQuadLayout layout, Requant? requant)
    {
        var w = k.W;
        int zero = k.Int8Layer.Zero, s = layout.Stride, pitch = layout.Pitch, planeBytes = layout.PlaneBytes, quadBytes = 4 * layout.Quads;
        w.Line($"// AVX-VNNI: per channel the plane copied into a padded plane (pitch {pitch}, the zero point in the padding) and expanded into");
        w.Line($"// quads, the 4 bytes from element {(s == 1 ? "i" : "2i")} on at int32 i; then per 8 outputs one vpdpbusd per kernel row{(layout.Groups == 1 ? "" : " and 4 taps")} adds");
        w.Line("// q·w over 4 taps into the int32 sums (a zero weight past the row's last tap). Channel c's sums are taken while c + 1's quads");
        w.Line("// are built and c + 2's plane copied, into the other of two buffers each: no load waits on a store just made.");
        w.Line($"ref byte pb = ref {U}.As<float, byte>(ref rp); ref byte qd = ref {U}.Add(ref pb, {2 * planeBytes});");
        if (!layout.Direct) w.Line($"ref byte wb = ref {U}.Add(ref qd, {2 * quadBytes}); // the wide outputs, row pitch {pitch}");
        w.Line($"{U}.InitBlockUnaligned(ref pb, (byte){zero}, {2 * planeBytes}u); // the padding, which the rows copied in never touch");
        // Lane L of a quad vector holds quads 4L…4L+3 of 8: bytes e + b (+ 4 in lane 1) of the 16 loaded into both halves for
        // stride 1; for stride 2, bytes 2e + b of 16 loaded from 2i (lane 0) and 2i + 8 (lane 1).
        var pick = Enumerable.Range(0, 32).Select(i => { int lane = i / 16, e = i % 16 / 4, b = i % 4; return s == 1 ? 4 * lane + e + b : 2 * e + b; });
        w.Line($"var qpick = {V256}.Create({string.Join(", ", pick.Select(i => $"(byte){i}"))});");
        void CopyPlane(string plane, string buffer) =>
            w.Line($"for (int r = 0; r < {g.H}; r++) {U}.CopyBlockUnaligned(ref {U}.Add(ref pb, {buffer} * {planeBytes} + (r + {g.PT}) * {pitch} + {g.PL}), ref {U}.Add(ref rx, {plane} * {g.Plane} + r * {g.W}), {g.W});");
        // Four vectors of 8 quads a step (the source and destination refs moved on, constant offsets), the rest one by one.
        void BuildQuads(string buffer)
        {
            using (w.Block())
            {
                w.Line($"ref byte src = ref {U}.Add(ref pb, {buffer} * {planeBytes}); ref byte dst = ref {U}.Add(ref qd, {buffer} * {quadBytes});");
                string Quad(int n)
                {
                    int from = s * 8 * n;
                    string source = s == 1
                        ? $"{V256}.Create({V128}.LoadUnsafe(ref src{(from == 0 ? "" : $", {from}")}))"
                        : $"{V256}.Create({V128}.LoadUnsafe(ref src{(from == 0 ? "" : $", {from}")}), {V128}.LoadUnsafe(ref src, {from + 8}))";
                    return $"{V256}.StoreUnsafe(Avx2.Shuffle({source}, qpick), ref dst{(n == 0 ? "" : $", {32 * n}")});";
                }
                int vectors = layout.Quads / 8;
                if (vectors >= 4)
                {
                    using (w.Block($"for (int n = 0; n < {vectors / 4}; n++)"))
                    {
                        for (int n = 0; n < 4; n++) w.Line(Quad(n));
                        w.Line($"src = ref {U}.Add(ref src, {32 * s}); dst = ref {U}.Add(ref dst, 128);");
                    }
                }
                for (int n = 0; n < vectors % 4; n++) w.Line(Quad(n));
            }
        }
        w.Line("// The first channel's quads, and the second's plane.");
        CopyPlane("0", "0");
        BuildQuads("0");
        if (g.Planes > 1) CopyPlane("1", "1");
        using (w.Block($"for (int plane = 0; plane < {g.Planes}; plane++)"))
        {
            if (g.Planes > 1)
            {
                w.Line($"if (plane + 1 < {g.Planes}) // the next channel's quads, from the plane copied a channel ago");
                BuildQuads("((plane + 1) & 1)");
                w.Line($"if (plane + 2 < {g.Planes}) // the one after's plane, into this one's (its quads are built)");
                w.Indent();
                CopyPlane("(plane + 2)", "(plane & 1)");
                w.Outdent();
            }
            w.Line($"ref byte qc = ref {U}.Add(ref qd, (plane & 1) * {quadBytes}); // this channel's quads");
            w.Line($"int ch = plane % {g.M};");
            w.Line($"ref sbyte wq = ref {U}.Add(ref rw, ch * {g.Taps});");
            w.Line($"var vb = {V256}.Create({ConvInt8Kernel.Bias(k, "bias[ch]")});");
            if (requant is not null) w.Line($"var vim = {V256}.Create((int)({requant.IntegerMultiplier(ConvInt8Kernel.Multiplier(k, "multipliers[ch]"))}));");
            else w.Line($"var vm = {V256}.Create({ConvInt8Kernel.Multiplier(k, "multipliers[ch]")});");
            for (int kh = 0; kh < g.KH; kh++)
                for (int q = 0; q < layout.Groups; q++)
                {
                    var bytes = Enumerable.Range(0, 4).Where(b => 4 * q + b < g.KW).Select(b => $"(byte){U}.Add(ref wq, {kh * g.KW + 4 * q + b}){(b == 0 ? "" : $" << {8 * b}")}");
                    w.Line($"var w{kh}_{q} = {V256}.AsSByte({V256}.Create((int)({string.Join(" | ", bytes)}))); // taps {kh},{4 * q}…{Math.Min(g.KW, 4 * q + 4) - 1}");
                }
            string yOffset = $"plane * {g.OH * g.OW}";
            string vectorAct = requant is null ? GemmEmitter.VectorActivation(k.Node, V256, $"{V256}.ConvertToSingle(SUMS) * vm")! : "";

            // The int32 sums of the 8 outputs whose first quad is element j of the row's quads qr (j a constant).
            string Sums(int j)
            {
                string acc = $"a{j}";
                w.Line($"var {acc} = vb;");
                for (int kh = 0; kh < g.KH; kh++)
                    for (int q = 0; q < layout.Groups; q++)
                    {
                        long at = 4 * (j + (long)kh * layout.RowStep + q * layout.GroupStep);
                        w.Line($"{acc} = AvxVnni.MultiplyWideningAndAdd({acc}, {V256}.LoadUnsafe(ref qr{(at == 0 ? "" : $", {at}")}), w{kh}_{q});");
                    }
                return acc;
            }
            // Blocks in pairs: one requantization each, one pack of the two into 16 bytes.
            void Blocks(int[] starts, string target, Func<int, int> store)
            {
                for (int b = 0; b < starts.Length; b += 2)
                {
                    using (w.Block())
                    {
                        if (b + 1 < starts.Length && requant is not null)
                        {
                            string a0 = Sums(starts[b]), a1 = Sums(starts[b + 1]);
                            w.Line($"var q = PackBytes16({requant.VectorForPack(a0, "vim")}, {requant.VectorForPack(a1, "vim")});");
                            int at0 = store(starts[b]), at1 = store(starts[b + 1]);
                            if (at1 == at0 + 8) w.Line($"{V128}.StoreUnsafe(q, ref {target}{(at0 == 0 ? "" : $", {at0}")});");
                            else
                            {
                                w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref {target}, {at0}), {V128}.GetElement({V128}.AsUInt64(q), 0));");
                                w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref {target}, {at1}), {V128}.GetElement({V128}.AsUInt64(q), 1));");
                            }
                        }
                        else
                            for (int e = b; e < Math.Min(b + 2, starts.Length); e++)
                            {
                                string acc = Sums(starts[e]);
                                int at = store(starts[e]);
                                w.Line(requant is not null
                                    ? $"{U}.WriteUnaligned(ref {U}.Add(ref {target}, {at}), PackBytes8({requant.Vector(acc, "vim")}));"
                                    : $"{V256}.StoreUnsafe({vectorAct.Replace("SUMS", acc)}, ref {target}{(at == 0 ? "" : $", {at}")});");
                            }
                    }
                }
            }
            string elem = requant is null ? "float" : "byte";
            if (layout.Direct)
            {
                using (w.Block($"for (int oy = 0; oy < {g.OH}; oy++)"))
                {
                    w.Line($"ref byte qr = ref {U}.Add(ref qc, oy * {4 * pitch}); ref {elem} yr = ref {U}.Add(ref ry, {yOffset} + oy * {g.OW});");
                    Blocks(layout.Columns, "yr", ox => ox);
                }
            }
            else
            {
                w.Line($"ref {elem} wr = ref {(requant is null ? $"{U}.As<byte, float>(ref wb)" : "wb")};");
                using (w.Block(layout.PerRow ? $"for (int oy = 0; oy < {g.OH}; oy++)" : $"for (int j = 0; j < {layout.WideLength}; j += 8)"))
                {
                    string at = layout.PerRow ? $"oy * {pitch}" : "j";
                    w.Line($"ref byte qr = ref {U}.Add(ref qc, 4 * {at}); ref {elem} yr = ref {U}.Add(ref wr, {at});");
                    Blocks([0], "yr", ox => ox);
                }
                int size = requant is null ? 4 : 1;
                string row = $"ref {U}.Add(ref ry, {yOffset} + oy * {g.OW})";
                w.Line($"for (int oy = 0; oy < {g.OH}; oy++) {U}.CopyBlockUnaligned({(requant is null ? $"ref {U}.As<float, byte>({row})" : row)}, ref {U}.Add(ref wb, oy * {pitch * size}), {g.OW * size});");
            }
        }
    }

    /// <summary>wf = y1[0..count) = the int8 weights as float32 (exact), converted once a call rather than once a plane.</summary>
    static void EmitFloatWeights(CodeWriter w, SimdLevel simd, int count)
    {
        w.Line("ref float wf = ref rp;");
        using (w.Block())
        {
            w.Line("int i = 0;");
            if (simd == SimdLevel.Auto)
                w.Line($"if (Avx512F.IsSupported) for (; i <= {count - 16}; i += 16) {V512}.StoreUnsafe({Int8RowDecoder.Floats(SimdWidth.V512, "rw", "i")}, ref wf, (nuint)i);");
            if (simd != SimdLevel.None)
                w.Line($"if ({V128}.IsHardwareAccelerated) for (; i <= {count - 4}; i += 4) {V128}.StoreUnsafe({V128}.ConvertToSingle({V128}.WidenLower({V128}.WidenLower({V128}.AsSByte({V128}.CreateScalar({U}.ReadUnaligned<uint>(ref {U}.As<sbyte, byte>(ref {U}.Add(ref rw, i)))))))), ref wf, (nuint)i);");
            w.Line($"for (; i < {count}; i++) {U}.Add(ref wf, i) = {U}.Add(ref rw, i);");
        }
    }

    sealed class Int8Rows(KernelContext k, Requant? requant) : DepthwiseRowsEmitter.Flavor
    {
        readonly int _zero = k.Int8Layer.Zero;
        readonly bool _bytes = k.Inputs[0].Element == TensorElement.UInt8;

        /// <summary>A uint8 input is read in place: each load widens its bytes to float32 (less the zero point).</summary>
        public override string Load(string v, int width, string offset, bool constant, string? at = null)
        {
            if (!_bytes) return base.Load(v, width, offset, constant, at);
            string index = constant ? offset : $"(nuint)({offset})";
            string xb = at ?? "xb";
            string widened = width switch
            {
                16 => $"{V512}.ConvertToSingle(Avx512F.ConvertToVector512Int32({V128}.LoadUnsafe(ref {xb}, {index})))",
                8 => $"{V256}.ConvertToSingle(Avx2.ConvertToVector256Int32({V128}.AsByte({V128}.CreateScalar({U}.ReadUnaligned<ulong>(ref {U}.Add(ref {xb}, {offset}))))))",
                _ => $"{V128}.ConvertToSingle({V128}.AsInt32({V128}.WidenLower({V128}.WidenLower({V128}.AsByte({V128}.CreateScalar({U}.ReadUnaligned<uint>(ref {U}.Add(ref {xb}, {offset}))))))))",
            };
            return _zero == 0 ? widened : $"({widened} - {v}.Create({_zero}f))";
        }

        /// <summary>
        /// Stride 2 on a uint8 input: the 2·width bytes as width 16-bit lanes widened to int32 (vpmovzxwd), whose low
        /// bytes are the even elements; one widening instead of two and a permute.
        /// </summary>
        public override string? LoadEven(string v, int width, string offset, bool constant, string? at = null)
        {
            if (!_bytes || k.Simd != SimdLevel.Auto || width is not (16 or 8)) return null;
            string pairsAt = $"ref {U}.As<byte, ushort>(ref {U}.Add(ref {at ?? "xb"}, {offset}))";
            string pairs = width == 16
                ? $"Avx512F.ConvertToVector512Int32({V256}.LoadUnsafe({pairsAt}))"
                : $"Avx2.ConvertToVector256Int32({V128}.LoadUnsafe({pairsAt}))";
            string widened = $"{v}.ConvertToSingle({pairs} & {v}.Create(0xFF))";
            return _zero == 0 ? widened : $"({widened} - {v}.Create({_zero}f))";
        }

        public override string LoadScalar(string index) => _bytes ? $"(float)({U}.Add(ref xb, {index}) - {_zero})" : base.LoadScalar(index);

        public override void DeclareRow(CodeWriter w, string name, string offset)
        {
            if (_bytes) w.Line($"ref byte {name} = ref {U}.Add(ref xb, {offset});");
            else base.DeclareRow(w, name, offset);
        }

        public override void BeginPlane(CodeWriter w, DepthwiseRowsEmitter.Shape g, string? v)
        {
            w.Line($"ref sbyte wq = ref {U}.Add(ref rw, ch * {g.Taps});");
            string weightSum = string.Join(" + ", Enumerable.Range(0, g.Taps).Select(t => $"{U}.Add(ref wq, {t})"));
            w.Line($"int bz = {ConvInt8Kernel.Bias(k, "bias[ch]")}{(_zero == 0 ? "" : $" + {_zero} * ({weightSum})")};");
            w.Line($"float m = {ConvInt8Kernel.Multiplier(k, "multipliers[ch]")};");
            if (requant is not null) w.Line($"int im = (int)({requant.IntegerMultiplier("m")});");
            w.Line($"ref float wc = ref {U}.Add(ref wf, ch * {g.Taps});");
            for (int t = 0; t < g.Taps; t += g.KW)
                w.Line(string.Join(" ", Enumerable.Range(t, g.KW).Select(i => v is null ? $"float w{i} = {U}.Add(ref wc, {i});" : $"var w{i} = {v}.Create({U}.Add(ref wc, {i}));")));
            if (v is null) w.Line("float start = 0f;");
            else
            {
                w.Line($"var start = {v}<float>.Zero; var vb = {v}.Create(bz);");
                if (requant is null) w.Line($"var vm = {v}.Create(m);");
                else if (v.EndsWith("Vector512", StringComparison.Ordinal) || v.EndsWith("Vector256", StringComparison.Ordinal)) w.Line($"var vim = {v}.Create(im);");
            }
            w.Line($"ref {(requant is null ? "float" : "byte")} yp = ref {U}.Add(ref ry, plane * {g.OH * g.OW});");
            if (_bytes) w.Line($"ref byte xb = ref {U}.Add(ref rx, plane * {g.Plane});");
            else
            {
                FillPlane(w, g);
                w.Line("ref float xp = ref qp;");
            }
        }

        /// <summary>The plane quantized (QuantizeU8's arithmetic) less the zero point, as float32 in qp (after the weights in y1).</summary>
        void FillPlane(CodeWriter w, DepthwiseRowsEmitter.Shape g)
        {
            string inverse = KernelContext.F(1f / k.Int8Layer.Scale);
            w.Line($"ref float src = ref {U}.Add(ref rx, plane * {g.Plane});");
            w.Line("int i = 0;");
            SimdLadder.CascadeLines(w, SimdLadder.Widths(k.Simd),
                x => $"for (; i <= {g.Plane - x.Floats}; i += {x.Floats}) {x.V}.StoreUnsafe({Quantized(x.V, "src", inverse)}, ref qp, (nuint)i);");
            w.Line($"for (; i < {g.Plane}; i++) {U}.Add(ref qp, i) = (byte)Math.Clamp(MathF.Round({U}.Add(ref src, i) * {inverse}) + {_zero}f, 0f, 255f) - {_zero}f; // (byte): a NaN becomes 0, as in QuantizeU8");
        }

        string Quantized(string v, string src, string inverse) =>
            ConvInt8Kernel.QuantizedFloats(v, $"{v}.LoadUnsafe(ref {src}, (nuint)i) * {v}.Create({inverse})", _zero, lessZero: true);

        public override void Store(CodeWriter w, DepthwiseRowsEmitter.Shape g, SimdWidth l, string at, int lanes, bool partial)
        {
            string v = l.V;
            w.Line($"var sum = {v}.ConvertToInt32Native(acc0) + vb;");
            if (requant is null)
            {
                w.Line($"var done = {GemmEmitter.VectorActivation(k.Node, v, $"{v}.ConvertToSingle(sum) * vm") ?? $"{v}.ConvertToSingle(sum) * vm"};");
                if (!partial) w.Line($"{v}.StoreUnsafe(done, ref yp, (nuint)({at}));");
                else DepthwiseRowsEmitter.StorePrefix(w, "done", l.Floats, lanes, at);
                if (GemmEmitter.VectorActivation(k.Node, v, "v") is null)
                    w.Line($"for (int e = 0; e < {lanes}; e++) {{ float v = {U}.Add(ref yp, {at} + e); {U}.Add(ref yp, {at} + e) = {k.Act()}; }}");
                return;
            }
            // uint8 out: a narrow row's spare bytes land on the next row, written later; the plane's last row writes only its own.
            if (l.Floats == 16)
            {
                w.Line($"var q = {requant.Vector16("sum", "vim")};");
                if (!partial) w.Line($"{V128}.StoreUnsafe(q, ref yp, (nuint)({at}));");
                else for (int e = 0; e < lanes; e++) w.Line($"{U}.Add(ref yp, {at} + {e}) = {V128}.GetElement(q, {e});");
            }
            else if (l.Floats == 8)
            {
                w.Line($"ulong q = PackBytes8({requant.Vector("sum", "vim")});");
                if (!partial) w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref yp, {at}), q);");
                else for (int e = 0; e < lanes; e++) w.Line($"{U}.Add(ref yp, {at} + {e}) = (byte)(q >> {8 * e});");
            }
            else
            {
                if (k.Simd == SimdLevel.Auto && l.Floats == 4)
                {
                    // Rows of 4 (4x4 planes): the 8-lane requantization on the sums and 4 zero lanes, 4 bytes out.
                    using (w.Block($"if (Avx2.IsSupported)"))
                    {
                        w.Line($"uint q = (uint)PackBytes8({requant.Vector($"{V256}.Create(sum, {V128}<int>.Zero)", $"{V256}.Create(im)")});");
                        if (!partial) w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref yp, {at}), q);");
                        else for (int e = 0; e < lanes; e++) w.Line($"{U}.Add(ref yp, {at} + {e}) = (byte)(q >> {8 * e});");
                    }
                }
                using (w.BlockIf(k.Simd == SimdLevel.Auto && l.Floats == 4, "else"))
                {
                    for (int e = 0; e < lanes; e++) w.Line($"{U}.Add(ref yp, {at} + {e}) = {requant.Scalar($"{v}.GetElement(sum, {e})", "im")};");
                }
            }
        }

        public override void StoreScalar(CodeWriter w, DepthwiseRowsEmitter.Shape g, string at)
        {
            if (requant is not null)
            {
                w.Line($"{U}.Add(ref yp, {at}) = {requant.Scalar("(int)sum + bz", "im")};");
                return;
            }
            w.Line("float v = ((int)sum + bz) * m;");
            w.Line($"{U}.Add(ref yp, {at}) = {k.Act()};");
        }
    }

    /// <summary>y3 = clamp(round(y1·inverseScale) + zero, 0, 255) over the whole plane, the arithmetic of QuantizeU8.</summary>
    static void Quantize(CodeWriter w, SimdLevel simd, int length, string inverse, int zero)
    {
        w.Line("int i = 0;");
        SimdLadder.Chain(w, SimdLadder.Widths(simd), x =>
        {
            w.Line($"var s = {x.V}.Create({inverse});");
            w.Line($"for (; i < {length}; i += {x.Floats}) {x.V}.StoreUnsafe({ConvInt8Kernel.QuantizedFloats(x.V, $"{x.V}.LoadUnsafe(ref rr, (nuint)i) * s", zero, lessZero: false)}, ref rp, (nuint)i);");
        });
        w.Line($"for (; i < {length}; i++) {U}.Add(ref rp, i) = (byte)Math.Clamp(MathF.Round({U}.Add(ref rr, i) * {inverse}) + {zero}f, 0f, 255f); // (byte): a NaN becomes 0, as in QuantizeU8");
    }
}
