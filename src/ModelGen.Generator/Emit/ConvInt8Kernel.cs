using System;
using System.Globalization;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A 2-D convolution in int8 arithmetic (Compression int8), any group, depthwise included:
/// 1. the input is quantized to uint8 into a plane whose borders hold the zero point (so padding needs
///    no tests, and counts as 0 once the row sums are taken out);
/// 2. per group, the patch matrix is gathered as uint8 in the layout a VNNI lane reads: four neighbouring
///    taps of a kernel row for one output pixel are four bytes (one 32-bit copy; kernel rows are padded
///    with zero weights to a multiple of 4 taps);
/// 3. a GEMM of int8 weights [M, K] by those patches into int32 sums, 4 output channels by 8 pixels at a
///    time: AVX-VNNI (vpdpbusd), AVX2 (bytes widened to 16 bits, vpmaddwd: no 16-bit saturation),
///    Vector128 (16-bit products, exact since 255·127 &lt; 2^15, widened to 32 bits) or scalar;
/// 4. y = (acc + bias[m])·multiplier[m] in float32 (bias: the float bias in accumulator units, less the zero
///    point's share, an int32), then the fused activation.
/// Integer sums are exact, so every path and the evaluator (Int8Conv.Apply) give the same bits.
/// </summary>
internal sealed class ConvInt8Kernel : IKernel
{
    const string U = "Unsafe", MM = "MemoryMarshal";
    const string V512 = "Vector512";
    const string V256 = "Vector256", V128 = "Vector128";

    public KernelKind Kernel => KernelKind.ConvInt8;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "w", "bias", "multipliers" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0]; var wt = k.Inputs[1]; var y = k.Y;
        int[] kernel = k.Window.Kernel, s = k.Window.Strides, d = k.Window.Dilations, p = k.Window.Pads;
        int group = k.Conv.Group, zero = k.Int8Layer.Zero;
        string scale = KernelContext.F(k.Int8Layer.Scale), inverse = KernelContext.F(1f / k.Int8Layer.Scale);
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3], m = wt.Shape[0], row = wt.Shape[1];
        int oh = y.Shape[2], ow = y.Shape[3], cols = oh * ow, colsP = (cols + 7) / 8 * 8;
        int cpg = c / group, mpg = m / group, kwp = (kernel[1] + 3) / 4 * 4, k4 = row / 4;
        int ph = h + p[0] + p[2], pw = wd + p[1] + p[3];
        bool padded = p.Any(v => v != 0);
        // A pointwise convolution (1x1, stride 1, no pads) needs no plane: its patch matrix is the input itself,
        // four channels interleaved, which QuantizeInterleave4 writes as it quantizes (no fill, no gather).
        bool pointwise = ConvScratch.IsPointwise(kernel, s, p);
        // With pads, the image is quantized into a flat copy after the plane first (one vectorized pass, whatever
        // the row width), then its rows copied into the plane; without, straight into the plane.
        long flatAt = ConvScratch.Int8FlatOffset(c, h, wd, p, kwp), planeBytes = ConvScratch.Int8PlaneBytes(pointwise, c, h, wd, p, kwp), patchBytes = ConvScratch.Int8PatchBytes(row, oh, ow);
        // uint8 in: the layer before wrote x quantized (these parameters); uint8 out: requantized for the next int8 layer.
        bool byteInput = x.Element == TensorElement.UInt8;
        var requant = Requant.Of(k);
        if (byteInput || requant is not null) k.Helpers.Add("Requantize");
        if (!byteInput) k.Helpers.Add(pointwise ? "QuantizeInterleave4" : "QuantizeU8");

        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)} in int8: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w[{m}, {cpg}, {kernel[0]}, {kernel[1]}] + b; window {kernel[0]}x{kernel[1]}, stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, group {group}{k.ActName()}.");
        string quantized = byteInput ? $"x, uint8 as the layer before wrote it (scale {scale}, zero point {zero})," : $"x quantized to uint8 (scale {scale}, zero point {zero})";
        if (pointwise) w.Line($"// {quantized} straight into the patch matrix [{k4}·4 channels, {cols} pixels], four channels a pixel's 32 bits;");
        else w.Line($"// {quantized} into a plane with zero-point borders; per group a uint8 patch matrix [{k4}·4 taps, {cols} pixels]");
        w.Line($"// times int8 weights [{mpg}, {row}] (kernel rows padded to {kwp} taps with zero weights) in int32: acc = Σ + bias[m], bias[m] = round(b[m] / multiplier[m]) − {zero}·Σq[m];");
        w.Line(requant is null ? $"// y = acc·multiplier[m]{k.ActName()}." : $"// {requant.Describe().Replace("[j]", "[m]")}.");
        using var method = k.OpenMethod();
        bool untyped = Untyped(k);
        string biasLength = untyped ? $"{MM}.AsBytes(bias).Length < {m * (k.Inputs[2].CSharpType == "short" ? 2 : 4)}" : $"bias.Length < {m}";
        string multipliersLength = untyped ? $"{MM}.AsBytes(multipliers).Length < {m * (k.Inputs[3].CSharpType == "ushort" ? 2 : 4)}" : $"multipliers.Length < {m}";
        w.Line($"if (x.Length < {x.ElementCount} || w.Length < {wt.ElementCount} || {biasLength} || {multipliersLength} || y.Length < {y.ElementCount} || y1.Length * 4L < {planeBytes} || y2.Length * 4L < {patchBytes}) throw new ArgumentException(\"buffer too short\");");
        if (!pointwise)
        {
            w.Line($"Span<byte> plane = {MM}.AsBytes(y1).Slice(0, {planeBytes});");
            w.Line($"ref byte rplane = ref {MM}.GetReference(plane);");
        }
        else w.Line($"ref {(byteInput ? "byte" : "float")} rx = ref {MM}.GetReference(x);");
        w.Line($"ref byte rp = ref {MM}.GetReference({MM}.AsBytes(y2));");
        w.Line($"ref sbyte rw = ref {MM}.GetReference(w);");
        w.Line($"ref {(requant is null ? "float" : "byte")} ry = ref {MM}.GetReference(y);");
        // The vector loops read each channel's bias and multiplier from memory: kept in registers across the pixel loop,
        // they took the 16 registers a VEX vpdpbusd can name, and the JIT moved every sum in and out of the others.
        w.Line($"Span<int> constants = stackalloc int[{2 * BlockRows}];");
        w.Line($"ref int bc = ref {MM}.GetReference(constants);");
        if (WidensWeights(k, row))
        {
            // AVX2 without VNNI: each block's weights widened to int16 once (per block, not per 4 taps and 8 pixels), so the
            // inner loop broadcasts 4 ready int16 weights (one load) into vpmaddwd instead of widening bytes there.
            w.Line($"Span<short> wide = Avx2.IsSupported && !AvxVnni.IsSupported ? stackalloc short[{BlockRows * row}] : default;");
            w.Line($"ref short ww = ref {MM}.GetReference(wide);");
        }
        if (!pointwise)
        {
            w.Line("// Borders and the slack after the last row keep the zero point; each image rewrites the interior.");
            w.Line($"plane.Fill((byte){zero});");
        }
        var imageLoop = w.For("image", n, out string image);
        if (pointwise) { }
        else if (padded)
        {
            string from = Expr.Times(image, (long)c * h * wd);
            w.Line(byteInput ? $"x.Slice({from}, {c * h * wd}).CopyTo(plane.Slice({flatAt}, {c * h * wd}));" : $"QuantizeU8(x.Slice({from}, {c * h * wd}), plane.Slice({flatAt}, {c * h * wd}), {inverse}, {zero});");
            using (w.Block($"for (int r = 0; r < {c * h}; r++)"))
            {
                w.Line($"{U}.CopyBlockUnaligned(ref {U}.Add(ref rplane, (r / {h} * {ph} + {p[0]} + r % {h}) * {pw} + {p[1]}), ref {U}.Add(ref rplane, {flatAt} + r * {wd}), {wd});");
            }
        }
        else
        {
            string from = Expr.Times(image, (long)c * h * wd);
            w.Line(byteInput ? $"x.Slice({from}, {c * h * wd}).CopyTo(plane.Slice(0, {c * h * wd}));" : $"QuantizeU8(x.Slice({from}, {c * h * wd}), plane.Slice(0, {c * h * wd}), {inverse}, {zero});");
        }
        var groupLoop = w.For("grp", group, out string grp);
        if (pointwise)
        {
            w.Line($"// Patches: row group t is channels 4t..4t+3, quantized and interleaved (the weights of channels past the group's last are zero; they read the last).");
            using (w.Block($"for (int t = 0; t < {k4}; t++)"))
            {
                w.Line($"int first = {Expr.Plus(Expr.Times(image, c), Expr.Times(grp, cpg))};");
                w.Line(string.Join(" ", Enumerable.Range(0, 4).Select(b => $"int c{b} = first + Math.Min(4 * t + {b}, {cpg - 1});")));
                string channels = $"ref {U}.Add(ref rx, c0 * {cols}), ref {U}.Add(ref rx, c1 * {cols}), ref {U}.Add(ref rx, c2 * {cols}), ref {U}.Add(ref rx, c3 * {cols}), ref {U}.Add(ref rp, t * {colsP * 4}), {cols}";
                w.Line(byteInput ? $"Interleave4U8({channels});" : $"QuantizeInterleave4({channels}, {inverse}, {zero});");
            }
        }
        else if (kernel[0] == 1 && kernel[1] == 1)
        {
            // 1x1: row group t holds channels 4t..4t+3 (the weights of channels past the group's last are zero; they read the last).
            w.Line($"// Patches: bytes [4·(pixel) .. +3] of row group t are channels 4t..4t+3 at that output pixel.");
            using (w.Block($"for (int t = 0; t < {k4}; t++)"))
            {
                w.Line(string.Join(" ", Enumerable.Range(0, 4).Select(b => $"ref byte s{b} = ref {U}.Add(ref rplane, {Expr.Times(Expr.Plus(Expr.Times(grp, cpg), $"Math.Min({Expr.Plus("4 * t", b)}, {cpg - 1})"), ph * pw)});")));
                using (w.Block($"for (int oy = 0; oy < {oh}; oy++)"))
                {
                    w.Line($"ref byte dst = ref {U}.Add(ref rp, (t * {colsP} + oy * {ow}) * 4);");
                    using (w.Block($"for (int ox = 0; ox < {ow}; ox++)"))
                    {
                        w.Line($"int at = oy * {s[0] * pw} + ox * {s[1]};");
                        w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref dst, ox * 4), {U}.Add(ref s0, at) | {U}.Add(ref s1, at) << 8 | {U}.Add(ref s2, at) << 16 | {U}.Add(ref s3, at) << 24);");
                    }
                }
            }
        }
        else
        {
            w.Line($"// Patches: bytes [4·(pixel) .. +3] of row group t = (c, i, q) are taps j = 4q..4q+3 of kernel row i, channel c, for that output pixel.");
            using (w.Block($"for (int t = 0; t < {k4}; t++)"))
            {
                w.Line($"int ci = t / {kwp / 4}, q = t % {kwp / 4};");
                using (w.Block($"for (int oy = 0; oy < {oh}; oy++)"))
                {
                    string srcRow = Expr.Sum(Expr.Times(Expr.Plus(Expr.Times(grp, cpg), $"ci / {kernel[0]}"), ph), Expr.Times("oy", s[0]), Expr.Times($"ci % {kernel[0]}", d[0]));
                    w.Line($"ref byte src = ref {U}.Add(ref rplane, {Expr.Plus(Expr.Times(srcRow, pw), "q * 4")});");
                    w.Line($"ref byte dst = ref {U}.Add(ref rp, (t * {colsP} + oy * {ow}) * 4);");
                    w.Line("int ox = 0;");
                    if (k.Simd != SimdLevel.None && s[1] <= 4 && ow >= 4)
                    {
                        // Four pixels' taps from one 16-byte load: byte 4p + b of the result is input byte p·stride + b (pshufb / tbl).
                        string indices = string.Join(", ", Enumerable.Range(0, 16).Select(i => $"(byte){i / 4 * s[1] + i % 4}"));
                        w.Line($"if ({V128}.IsHardwareAccelerated) for (; ox <= {ow - 4}; ox += 4) {V128}.StoreUnsafe({V128}.Shuffle({V128}.LoadUnsafe(ref src, {GemmEmitter.Nuint(Expr.Times("ox", s[1]))}), {V128}.Create({indices})), ref dst, (nuint)(ox * 4));");
                    }
                    w.Line($"for (; ox < {ow}; ox++) {U}.WriteUnaligned(ref {U}.Add(ref dst, ox * 4), {U}.ReadUnaligned<int>(ref {U}.Add(ref src, {Expr.Times("ox", s[1])})));");
                }
            }
        }
        int block = BlockRows;
        int full = mpg - mpg % block;
        if (full > 0)
        {
            using (w.Block($"for (int m0 = {Expr.Times(grp, mpg)}; m0 < {Expr.Plus(Expr.Times(grp, mpg), full)}; m0 += {block})"))
            {
                EmitBlock(k, block, cols, colsP, row, image);
            }
        }
        if (mpg % block != 0)
        {
            using (w.Block())
            {
                w.Line($"int m0 = {Expr.Plus(Expr.Times(grp, mpg), full)};");
                EmitBlock(k, mpg % block, cols, colsP, row, image);
            }
        }
        groupLoop.Dispose();
        imageLoop.Dispose();
    }

    /// <summary>Output channels m0..m0+rows−1 of the current group and image, every pixel.</summary>
    /// <summary>Output channels a block computes: 6 by 16 pixels is 12 int32 sums, 12 independent vpdpbusd chains (two a
    /// cycle at a latency of 5 need 10), in the 16 registers VEX-encoded AVX-VNNI can name with the 2 patch vectors and
    /// the weights.</summary>
    const int BlockRows = 6;
    static void EmitBlock(KernelContext k, int rows, int cols, int colsP, int row, string image)
    {
        var w = k.W;
        var rs = Enumerable.Range(0, rows).ToArray();
        // Output channel m0 + r's first pixel.
        Func<int, string> yBase = r => Expr.Times(Expr.Sum(Expr.Times(image, k.Inputs[1].Shape[0]), "m0", CodeWriter.N(r)), cols);
        w.Line(string.Join(" ", rs.Select(r => $"ref sbyte w{r} = ref {U}.Add(ref rw, {Expr.Times(Expr.Plus("m0", r), row)});")));
        w.Line("// Each channel's int32 bias and float32 multiplier, once for all its pixels.");
        if (Untyped(k))
            w.Line(string.Join(" ", rs.Select(r => $"int b{r} = {UntypedBias(k, Expr.Plus("m0", r))}; float s{r} = {UntypedMultiplier(k, Expr.Plus("m0", r))};")));
        else
        {
            w.Line($"ref {k.Inputs[2].CSharpType} rb = ref {U}.Add(ref {MM}.GetReference(bias), m0); ref {k.Inputs[3].CSharpType} rm = ref {U}.Add(ref {MM}.GetReference(multipliers), m0);");
            w.Line(string.Join(" ", rs.Select(r => $"int b{r} = {Bias(k, $"{U}.Add(ref rb, {r})")}; float s{r} = {Multiplier(k, $"{U}.Add(ref rm, {r})")};")));
        }
        if (Requant.Of(k) is { } requant)
            w.Line(string.Join(" ", rs.Select(r => $"int im{r} = (int)({requant.IntegerMultiplier($"s{r}")});")));
        w.Line(string.Join(" ", rs.Select(r => $"{U}.Add(ref bc, {r}) = b{r}; {U}.Add(ref bc, {BlockRows + r}) = {(Requant.Of(k) is null ? $"BitConverter.SingleToInt32Bits(s{r})" : $"im{r}")};")));
        if (k.Simd == SimdLevel.Auto)
        {
            // AVX-VNNI: one vpdpbusd multiplies 32 uint8 patch bytes by 32 int8 weights and adds each 4 into an int32 lane.
            using (w.Block($"if (AvxVnni.IsSupported)"))
            {
                // 16 pixels a step (two vectors per channel: 12 independent chains hide vpdpbusd's latency), then 8. With an odd
                // number of 8-pixel vectors the last step takes 24 pixels (three vectors: 18 sums, in the 32 registers EVEX
                // gives AVX-512 machines) instead of a step of 8 whose 6 chains wait on vpdpbusd's latency.
                int vectorsInRow = colsP / 8;
                if (vectorsInRow % 2 == 1 && vectorsInRow >= 3)
                {
                    int last = colsP - 24;
                    if (last > 0) EmitStep(0, last, 2);
                    using (w.Block($"if (Avx512F.VL.IsSupported)"))
                    {
                        EmitStep(last, colsP, 3);
                    }
                    using (w.Block("else"))
                    {
                        EmitStep(last, colsP - 8, 2);
                        EmitStep(colsP - 8, colsP, 1);
                    }
                }
                else
                {
                    int wide = colsP / 16 * 16;
                    if (wide > 0) EmitStep(0, wide, 2);
                    if (colsP > wide) EmitStep(wide, colsP, 1);
                }

                void EmitStep(int from, int to, int vectors)
                {
                    var vs = Enumerable.Range(0, vectors).ToArray();
                    using (w.Block($"for (int col = {from}; col < {to}; col += {8 * vectors})"))
                    {
                        w.Line(string.Join(" ", rs.SelectMany(r => vs.Select(v => $"var a{r}_{v} = {V256}<int>.Zero;"))));
                        using (w.Block($"for (int t = 0; t < {row / 4}; t++)"))
                        {
                            w.Line(string.Join(" ", vs.Select(v => $"var p{v} = {V256}.LoadUnsafe(ref rp, (nuint)({Expr.Times(Expr.Sum(Expr.Times("t", colsP), "col", CodeWriter.N(8 * v)), 4)}));")));
                            foreach (int r in rs)
                            {
                                w.Line($"var q{r} = {V256}.AsSByte({V256}.Create({U}.ReadUnaligned<int>(ref {U}.As<sbyte, byte>(ref {U}.Add(ref w{r}, t * 4)))));");
                                w.Line(string.Join(" ", vs.Select(v => $"a{r}_{v} = AvxVnni.MultiplyWideningAndAdd(a{r}_{v}, p{v}, q{r});")));
                            }
                        }
                        // uint8 out, 16 whole pixels: two vectors requantized (fixed point), narrowed together, one 16-byte store.
                        // (WithUpper: one vinserti32x8; Vector512.Create(lo, hi) went through a stack slot.) The 24-pixel step runs
                        // once, on AVX-512 only: its first 16 pixels so when whole, its last 8 as the 8-pixel steps.
                        // With 48 inputs or more, in 256-bit vectors only: a 512-bit instruction in flight takes port 1 from the
                        // vector units, and with it half of vpdpbusd's rate in the sums that follow. MobileNetV2's 48→16 and 80→16
                        // layers ran 25% faster so; with fewer inputs the 512-bit requantization's fewer instructions win.
                        bool pair = Requant.Of(k) is not null && (vectors == 2 ? to <= cols : vectors == 3 && from + 16 <= cols);
                        bool ymmOnly = row >= 48;
                        if (pair)
                        {
                            var requant = Requant.Of(k)!;
                            string Pair(int r) => $"{V128}.StoreUnsafe(PackBytes16({requant.Vector($"a{r}_0 + {V256}.Create({BiasAt(r)})", $"{V256}.Create({MultiplierAt(r)})")}, {requant.Vector($"a{r}_1 + {V256}.Create({BiasAt(r)})", $"{V256}.Create({MultiplierAt(r)})")}), ref ry, (nuint)({yBase(r)} + col));";
                            if (ymmOnly)
                                foreach (int r in rs) w.Line(Pair(r));
                            else
                            {
                                using (w.BlockIf(vectors == 2, $"if (Avx512F.IsSupported)"))
                                {
                                    foreach (int r in rs)
                                        w.Line($"{V128}.StoreUnsafe({requant.Vector16($"{V512}.WithUpper({V256}.ToVector512Unsafe(a{r}_0), a{r}_1) + {V512}.Create({BiasAt(r)})", $"{V512}.Create({MultiplierAt(r)})")}, ref ry, (nuint)({yBase(r)} + col));");
                                }
                                if (vectors == 2)
                                {
                                    using (w.Block("else"))
                                    {
                                        foreach (int r in rs) w.Line(Pair(r));
                                    }
                                }
                            }
                        }
                        foreach (int v in vs.Skip(pair ? 2 : 0)) EmitVectorEpilogue(k, rs, cols, yBase, $"_{v}", 8 * v, full: to <= cols);
                    }
                }
            }
            // AVX2: 4 pixels' 16 bytes widened to 16-bit lanes, times the 4 weights (widened, repeated), pairs summed into int32 (vpmaddwd).
            // Exact: each 32-bit lane gets x0·q0 + x1·q1 with x ≤ 255, |q| ≤ 128, at most 65280 in magnitude, and the int32 sums are
            // those of the evaluator (below 2^31 for rows under 65793 taps; int32 addition in any order gives the same bits).
            bool widened = WidensWeights(k, row);
            using (w.Block($"else if (Avx2.IsSupported)"))
            {
                if (widened)
                {
                    w.Line($"// The block's {rows} weight rows widened to int16 into wide (contiguous in w: rows m0..m0+{rows - 1}).");
                    using (w.Block())
                    {
                        w.Line($"ref sbyte wb = ref {U}.Add(ref rw, m0 * {row}); int e = 0;");
                        w.Line($"for (; e <= {rows * row - 16}; e += 16) {V256}.StoreUnsafe(Avx2.ConvertToVector256Int16({V128}.LoadUnsafe(ref wb, (nuint)e)), ref ww, (nuint)e);");
                        w.Line($"for (; e < {rows * row}; e++) {U}.Add(ref ww, e) = {U}.Add(ref wb, e);");
                    }
                }
            using (w.Block($"for (int col = 0; col < {colsP}; col += 8)"))
            {
                w.Line(string.Join(" ", rs.Select(r => $"var lo{r} = {V256}<int>.Zero; var hi{r} = lo{r};")));
                using (w.Block($"for (int t = 0; t < {row / 4}; t++)"))
                {
                    w.Line($"ref byte pt = ref {U}.Add(ref rp, (t * {colsP} + col) * 4);");
                    w.Line($"var plo = Avx2.ConvertToVector256Int16({V128}.LoadUnsafe(ref pt)); var phi = Avx2.ConvertToVector256Int16({V128}.LoadUnsafe(ref pt, 16));");
                    foreach (int r in rs)
                    {
                        w.Line(widened
                            ? $"var wv{r} = {V256}.AsInt16({V256}.Create({U}.ReadUnaligned<long>(ref {U}.As<short, byte>(ref {U}.Add(ref ww, {Expr.Plus("t * 4", r * row)})))));"
                            : $"var wv{r} = Avx2.ConvertToVector256Int16({V128}.AsSByte({V128}.Create({U}.ReadUnaligned<int>(ref {U}.As<sbyte, byte>(ref {U}.Add(ref w{r}, t * 4))))));");
                        w.Line($"lo{r} += Avx2.MultiplyAddAdjacent(plo, wv{r}); hi{r} += Avx2.MultiplyAddAdjacent(phi, wv{r});");
                    }
                }
                w.Line("// Each pixel's two pair sums are neighbours: add them (per 128-bit lane), then put the pixels back in order.");
                w.Line(string.Join(" ", rs.Select(r => $"var a{r} = {V256}.AsInt32(Avx2.Permute4x64({V256}.AsInt64(Avx2.HorizontalAdd(lo{r}, hi{r})), 0xD8));")));
                EmitVectorEpilogue(k, rs, cols, yBase);
            }
            }
        }
        using (w.BlockIf(k.Simd == SimdLevel.Auto, "else"))
        {
            if (k.Simd != SimdLevel.None)
            {
                // ARM64 dot product (sdot): signed bytes only, so each patch byte less 128 (a flip of its top bit) times the
                // weights, and 128·Σq of the channel's row added back: Σ (x − 128)·q + 128·Σ q = Σ x·q, the same integers.
                // 4 pixels a vector, one sdot per 4 taps of each of the block's channels.
                using (w.Block($"if (Dp.IsSupported)"))
                {
                    w.Line(string.Join(" ", rs.Select(r => $"int rowSum{r} = 0;")));
                    using (w.Block($"for (int t = 0; t < {row}; t++)"))
                    {
                        w.Line(string.Join(" ", rs.Select(r => $"rowSum{r} += {U}.Add(ref w{r}, t);")));
                    }
                    using (w.Block($"for (int col = 0; col < {cols}; col += 4)"))
                    {
                        w.Line(string.Join(" ", rs.Select(r => $"var d{r} = {V128}.Create(128 * rowSum{r});")));
                        using (w.Block($"for (int t = 0; t < {row / 4}; t++)"))
                        {
                            w.Line($"var p = {V128}.AsSByte({V128}.LoadUnsafe(ref rp, (nuint)((t * {colsP} + col) * 4)) ^ {V128}.Create((byte)0x80));");
                            foreach (int r in rs)
                                w.Line($"d{r} = Dp.DotProduct(d{r}, p, {V128}.AsSByte({V128}.Create({U}.ReadUnaligned<int>(ref {U}.As<sbyte, byte>(ref {U}.Add(ref w{r}, t * 4))))));");
                        }
                        w.Line($"int count = Math.Min(4, {cols} - col);");
                        foreach (int r in rs)
                        {
                            using (w.Block("for (int e = 0; e < count; e++)"))
                            {
                                w.Line($"int acc = {V128}.GetElement(d{r}, e);");
                                EmitScalarStore(k, r, yBase(r) + " + col + e");
                            }
                        }
                    }
                }
                // Vector128 (SSE, ARM64 AdvSimd): 16-bit products are exact (|255·127| < 2^15), widened to int32 and summed per pixel.
                using (w.Block($"else if ({V128}.IsHardwareAccelerated)"))
                using (w.Block($"for (int col = 0; col < {cols}; col += 4)"))
                {
                    foreach (int r in rs)
                    {
                        using (w.Block())
                        {
                            w.Line($"var c0 = {V128}<int>.Zero; var c1 = c0; var c2 = c0; var c3 = c0;");
                            using (w.Block($"for (int t = 0; t < {row / 4}; t++)"))
                            {
                                w.Line($"var (p01, p23) = {V128}.Widen({V128}.LoadUnsafe(ref rp, (nuint)((t * {colsP} + col) * 4)));");
                                w.Line($"var wv = {V128}.WidenLower({V128}.AsSByte({V128}.Create({U}.ReadUnaligned<int>(ref {U}.As<sbyte, byte>(ref {U}.Add(ref w{r}, t * 4))))));");
                                w.Line($"var (e0, e1) = {V128}.Widen({V128}.AsInt16(p01) * wv); var (e2, e3) = {V128}.Widen({V128}.AsInt16(p23) * wv);");
                                w.Line("c0 += e0; c1 += e1; c2 += e2; c3 += e3;");
                            }
                            w.Line($"int count{r} = Math.Min(4, {cols} - col);");
                            using (w.Block($"for (int e = 0; e < count{r}; e++)"))
                            {
                                w.Line($"int acc = {V128}.Sum(e switch {{ 0 => c0, 1 => c1, 2 => c2, _ => c3 }});");
                                EmitScalarStore(k, r, yBase(r) + " + col + e");
                            }
                        }
                    }
                }
            }
            using (w.BlockIf(k.Simd != SimdLevel.None, "else"))
            {
                // Scalar: the same integer sums, one pixel at a time.
                using (w.Block($"for (int col = 0; col < {cols}; col++)"))
                {
                    foreach (int r in rs)
                    {
                        using (w.Block())
                        {
                            w.Line("int acc = 0;");
                            using (w.Block($"for (int t = 0; t < {row}; t++)"))
                            {
                                w.Line($"acc += {U}.Add(ref rp, (t / 4 * {colsP} + col) * 4 + t % 4) * {U}.Add(ref w{r}, t);");
                            }
                            EmitScalarStore(k, r, yBase(r) + " + col");
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Whether the AVX2 path reads weights widened to int16 once per block (a stack buffer of BlockRows rows, up to 24 KB):
    /// the automatic SIMD choice only (the AVX2 path is in no other), rows of at most 2048 taps.
    /// </summary>
    static bool WidensWeights(KernelContext k, int row) => k.Simd == SimdLevel.Auto && row <= 2048;

    /// <summary>int32 sums a{r} of 8 pixels from col → float32 outputs (vector arithmetic, the scalar's operations and rounding).</summary>
    /// <param name="full">Every step of the loop stores 8 whole pixels (no test for the last).</param>
    static void EmitVectorEpilogue(KernelContext k, int[] rs, int cols, Func<int, string> yBase, string suffix = "", int offset = 0, bool full = false)
    {
        var w = k.W;
        string? act = GemmEmitter.VectorActivation(k.Node, V256, "v", neverNaN: true);
        string col = offset > 0 ? $"col + {offset}" : "col";
        if (Requant.Of(k) is { } requant)
        {
            // uint8 out: 8 sums requantized (fixed point), 8 bytes stored.
            foreach (int r in rs)
            {
                using (w.Block())
                {
                    w.Line($"var q = {requant.Vector($"a{r}{suffix} + {V256}.Create({BiasAt(r)})", $"{V256}.Create({MultiplierAt(r)})")};");
                    string at = yBase(r);
                    if (full) w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref ry, {at} + {col}), PackBytes8(q));");
                    else
                    {
                        w.Line($"if ({col} + 8 <= {cols}) {U}.WriteUnaligned(ref {U}.Add(ref ry, {at} + {col}), PackBytes8(q));");
                        w.Line($"else for (int e = 0; {col} + e < {cols}; e++) {U}.Add(ref ry, {at} + {col} + e) = (byte){V256}.GetElement(q, e);");
                    }
                }
            }
            return;
        }
        foreach (int r in rs)
        {
            using (w.Block())
            {
                w.Line($"var v = {V256}.ConvertToSingle(a{r}{suffix} + {V256}.Create({BiasAt(r)})) * {V256}.Create({U}.As<int, float>(ref {MultiplierAt(r)}));");
                string at = yBase(r);
                if (act is not null)
                {
                    if (KernelEmitter.HasActivation(k.Node)) w.Line($"v = {act};");
                    if (full) w.Line($"{V256}.StoreUnsafe(v, ref ry, (nuint)({at} + {col}));");
                    else
                    {
                        w.Line($"if ({col} + 8 <= {cols}) {V256}.StoreUnsafe(v, ref ry, (nuint)({at} + {col}));");
                        w.Line($"else for (int e = 0; {col} + e < {cols}; e++) {U}.Add(ref ry, {at} + {col} + e) = {V256}.GetElement(v, e);");
                    }
                }
                else
                    w.Line($"for (int e = 0; e < 8 && {col} + e < {cols}; e++) {{ float s = {V256}.GetElement(v, e); {U}.Add(ref ry, {at} + {col} + e) = {k.Act("s")}; }}");
            }
        }
    }

    /// <summary>The shared helper: x quantized to uint8 as Int8Conv.Apply and QuantParams.Quantize do it.</summary>
    public static void EmitQuantizeHelper(CodeWriter w, SimdLevel simd)
    {
        w.Line("// dst[i] = clamp(round(src[i]·inverseScale) + zero, 0, 255), rounding half to even (NaN gives 0): the uint8 input of the");
        w.Line("// int8 kernels. (A multiply by the scale's reciprocal, not a divide: divides were most of the int8 depthwise kernel's time.)");
        using var helper = KernelEmitter.OpenHelper(w, "private static void QuantizeU8(ReadOnlySpan<float> src, Span<byte> dst, float inverseScale, int zero)");
        w.Line("int i = 0;");
        if (simd != SimdLevel.None)
        {
            using (w.Block("if (dst.Length >= src.Length)"))
            {
                w.Line($"ref float rs = ref {MM}.GetReference(src); ref byte rd = ref {MM}.GetReference(dst);");
                if (simd == SimdLevel.Auto)
                {
                    using (w.Block($"if (Avx512F.IsSupported)"))
                    {
                        w.Line($"var s = {V512}.Create(inverseScale); var z = {V512}.Create(zero);");
                        w.Line($"for (; i <= src.Length - 16; i += 16) {V128}.StoreUnsafe(Avx512F.ConvertToVector128ByteWithSaturation({V512}.AsUInt32({QuantizedLanes("512", $"{V512}.LoadUnsafe(ref rs, (nuint)i) * s")})), ref rd, (nuint)i);");
                    }
                    using (w.Block($"else if (Avx2.IsSupported)"))
                    {
                        w.Line($"var s = {V256}.Create(inverseScale); var z = {V256}.Create(zero);");
                        using (w.Block("for (; i <= src.Length - 16; i += 16)"))
                        {
                            w.Line($"var h = {V256}.Narrow({V256}.AsUInt32({QuantizedLanes("256", $"{V256}.LoadUnsafe(ref rs, (nuint)i) * s")}), {V256}.AsUInt32({QuantizedLanes("256", $"{V256}.LoadUnsafe(ref rs, (nuint)(i + 8)) * s")}));");
                            w.Line($"{V128}.StoreUnsafe({V128}.Narrow({V256}.GetLower(h), {V256}.GetUpper(h)), ref rd, (nuint)i);");
                        }
                    }
                }
                using (w.Block($"if (Sse41.IsSupported)"))
                {
                    w.Line($"var s = {V128}.Create(inverseScale); var z = {V128}.Create(zero);");
                    using (w.Block("for (; i <= src.Length - 16; i += 16)"))
                    {
                        for (int j = 0; j < 4; j++)
                            w.Line($"var q{j} = {V128}.AsUInt32({QuantizedLanes("128", $"{V128}.LoadUnsafe(ref rs, {GemmEmitter.Nuint(Expr.Plus("i", 4 * j))}) * s")});");
                        w.Line($"{V128}.StoreUnsafe({V128}.Narrow({V128}.Narrow(q0, q1), {V128}.Narrow(q2, q3)), ref rd, (nuint)i);");
                    }
                }
                using (w.Block($"else if ({V128}.IsHardwareAccelerated)"))
                {
                    w.Line($"var s = {V128}.Create(inverseScale); var z = {V128}.Create((float)zero); var top = {V128}.Create(255f);");
                    using (w.Block("for (; i <= src.Length - 16; i += 16)"))
                    {
                        for (int j = 0; j < 4; j++)
                            w.Line($"var q{j} = {V128}.ConvertToInt32({V128}.Min({V128}.Max({V128}.Round({V128}.LoadUnsafe(ref rs, {GemmEmitter.Nuint(Expr.Plus("i", 4 * j))}) * s) + z, {V128}<float>.Zero), top));");
                        w.Line($"{V128}.StoreUnsafe({V128}.Narrow({V128}.Narrow({V128}.AsUInt32(q0), {V128}.AsUInt32(q1)), {V128}.Narrow({V128}.AsUInt32(q2), {V128}.AsUInt32(q3))), ref rd, (nuint)i);");
                    }
                }
            }
        }
        // MathF.Round(v) rounds halves to even, as MidpointRounding.ToEven does; the overload taking the mode validates it
        // and so pulled enum formatting and reflection (about 80 KB) into NativeAOT binaries (issue 19).
        w.Line("for (; i < src.Length; i++) dst[i] = (byte)Math.Clamp(MathF.Round(src[i] * inverseScale) + zero, 0f, 255f);");
    }

    /// <summary>
    /// QuantizeU8's arithmetic on x86 vectors of products x·inverseScale, as int32 lanes 0…255, with the int32 zero point
    /// vector z: the products clamped to ±1024 first (maxps gives its second operand for a NaN, so a NaN becomes −1024,
    /// then 0), then rounded half to even by cvtps2dq (the default rounding), then the zero point and the clamp in int32.
    /// The same numbers as rounding, adding and clamping in float32, without the generic Min/Max/ConvertToInt32's NaN and
    /// overflow fix-ups (four times the instructions).
    /// </summary>
    internal static string QuantizedLanes(string bits, string products, string z = "z")
    {
        var (v, f, fi, i, i2) = bits switch
        {
            "512" => (V512, "Avx512F", "Avx512F", "Avx512F", "Avx512F"),
            "256" => (V256, "Avx", "Avx", "Avx2", "Avx2"),
            _ => (V128, "Sse", "Sse2", "Sse41", "Sse41"),
        };
        string clamped = $"{f}.Min({f}.Max({products}, {v}.Create(-1024f)), {v}.Create(1024f))";
        string rounded = bits == "512" ? $"Avx512F.ConvertToVector512Int32({clamped})" : bits == "256" ? $"Avx.ConvertToVector256Int32({clamped})" : $"Sse2.ConvertToVector128Int32({clamped})";
        return $"{i2}.Min({i}.Max({rounded} + {z}, {v}<int>.Zero), {v}.Create(255))";
    }

    /// <summary>
    /// A vector of v (Vector512, Vector256 or Vector128) of x·inverseScale quantized as QuantizeU8 does, less the zero point
    /// when <paramref name="lessZero"/>, as float32: the x86 arithmetic of <see cref="QuantizedLanes"/> where the processor
    /// has it (Vector128: SSE4.1, chosen when the JIT compiles), else the generic vector operations.
    /// </summary>
    internal static string QuantizedFloats(string v, string products, int zero, bool lessZero)
    {
        string less = lessZero ? $" - {v}.Create({zero}f)" : "";
        string bits = v.EndsWith("512", System.StringComparison.Ordinal) ? "512" : v.EndsWith("256", System.StringComparison.Ordinal) ? "256" : "128";
        string fast = $"{v}.ConvertToSingle({QuantizedLanes(bits, products, $"{v}.Create({zero})")}){less}";
        if (bits != "128") return fast;
        // (The conversion to int32 and back makes a NaN 0, as QuantizeU8 does; the generic Max keeps it.)
        string generic = $"{v}.ConvertToSingle({v}.ConvertToInt32({v}.Min({v}.Max({v}.Round({products}) + {v}.Create({zero}f), {v}<float>.Zero), {v}.Create(255f)))){less}";
        return $"(Sse41.IsSupported ? {fast} : {generic})";
    }

    /// <summary>The helper of pointwise int8 convolutions: four channel planes quantized as QuantizeU8 does and interleaved.</summary>
    public static void EmitInterleaveHelper(CodeWriter w, SimdLevel simd)
    {
        w.Line("// dst[4p + b] = clamp(round(cb[p]·inverseScale) + zero, 0, 255) for b = 0..3, p < count: four channels quantized as QuantizeU8");
        w.Line("// does and interleaved, so each int32 of dst holds one pixel's four channels (a VNNI lane of a 1x1 int8 convolution).");
        using var helper = KernelEmitter.OpenHelper(w, "private static void QuantizeInterleave4(ref float c0, ref float c1, ref float c2, ref float c3, ref byte dst, int count, float inverseScale, int zero)");
        w.Line("int p = 0;");
        SimdLadder.Cascade(w, SimdLadder.Widths(simd, widest: 256), width =>
        {
            string v = width.V;
            int lanes = width.Floats;
            w.Line($"var s = {v}.Create(inverseScale); var z = {v}.Create(zero); var zf = {v}.Create((float)zero); var top = {v}.Create(255f);");
            using (w.Block($"for (; p <= count - {lanes}; p += {lanes})"))
            {
                // x86: QuantizedLanes (Vector256 here means AVX2); elsewhere the generic operations, the same numbers.
                for (int b = 0; b < 4; b++)
                {
                    string products = $"{v}.LoadUnsafe(ref c{b}, (nuint)p) * s";
                    string generic = $"{v}.ConvertToInt32({v}.Min({v}.Max({v}.Round({products}) + zf, {v}<float>.Zero), top))";
                    w.Line(v == V256 ? $"var q{b} = {QuantizedLanes("256", products)};" : $"var q{b} = Sse41.IsSupported ? {QuantizedLanes("128", products)} : {generic};");
                }
                w.Line($"{v}.StoreUnsafe(q0 | (q1 << 8) | (q2 << 16) | (q3 << 24), ref {U}.As<byte, int>(ref dst), (nuint)p);");
            }
        });
        using (w.Block("for (; p < count; p++)"))
        {
            w.Line("int packed = 0;");
            using (w.Block("for (int b = 0; b < 4; b++)"))
            {
                w.Line("float v = b switch { 0 => " + U + ".Add(ref c0, p), 1 => " + U + ".Add(ref c1, p), 2 => " + U + ".Add(ref c2, p), _ => " + U + ".Add(ref c3, p) };");
                w.Line("packed |= (int)Math.Clamp(MathF.Round(v * inverseScale) + zero, 0f, 255f) << (8 * b);");
            }
            w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref dst, 4 * p), packed);");
        }
    }

    static void EmitScalarStore(KernelContext k, int r, string at)
    {
        k.W.Line(Int8Epilogue.Store(k, Requant.Of(k), $"{U}.Add(ref ry, {at})", $"acc + b{r}", $"s{r}", $"im{r}"));
    }

    /// <summary>Block row r's int32 bias and its multiplier (integer, or float32 bits), as EmitBlock stored them.</summary>
    static string BiasAt(int r) => $"{U}.Add(ref bc, {r})";
    static string MultiplierAt(int r) => $"{U}.Add(ref bc, {BlockRows + r})";

    /// <summary>
    /// Whether the kernel reads bias and multipliers as bytes whatever their stored type (int16 or int32 biases,
    /// float16 ratios or float32 multipliers), so nodes storing them differently can share one method (KernelSharing,
    /// when Simd names one level): the storage becomes two numbers passed, read once per block of channels.
    /// </summary>
    internal static bool Untyped(KernelContext k) =>
        KernelSharing.Applies(k.Model) && k.Inputs.Length > 3
        && (k.Inputs[2].CSharpType == "int" && k.Int8Layer.BiasShift == 0 || k.Inputs[2].CSharpType == "short")
        && (k.Inputs[3].CSharpType == "float" && k.Int8Layer.Multiplier is null || k.Inputs[3].CSharpType == "ushort" && k.Int8Layer.Multiplier is not null);

    /// <summary>Channel <paramref name="index"/>'s int32 bias read from the bytes of "bias": an int32, or an int16 shifted (shift ≥ 0).</summary>
    internal static string UntypedBias(KernelContext k, string index)
    {
        k.Helpers.Add("UntypedConstants");
        int shift = k.Inputs[2].CSharpType == "int" ? -1 : k.Int8Layer.BiasShift;
        return $"BiasOf({MM}.AsBytes(bias), {index}, {shift})";
    }

    /// <summary>Channel <paramref name="index"/>'s float32 multiplier read from the bytes of "multipliers": a float32 (layer 0), or a float16 ratio times the layer's.</summary>
    internal static string UntypedMultiplier(KernelContext k, string index)
    {
        k.Helpers.Add("UntypedConstants");
        return $"MultiplierOf({MM}.AsBytes(multipliers), {index}, {(k.Int8Layer.Multiplier is { } layer ? KernelContext.F(layer) : "0f")})";
    }

    /// <summary>The helpers of <see cref="UntypedBias"/> and <see cref="UntypedMultiplier"/>: the same arithmetic as <see cref="Bias"/> and <see cref="Multiplier"/>.</summary>
    internal static void EmitUntypedHelpers(CodeWriter w)
    {
        w.Line("// A channel's bias and multiplier from their stored bytes, whatever the storage (shared int8 kernels): the typed kernels' arithmetic.");
        w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
        w.Line($"static int BiasOf(ReadOnlySpan<byte> bias, int i, int shift) => shift < 0 ? {U}.ReadUnaligned<int>(ref {U}.Add(ref {MM}.GetReference(bias), i * 4)) : {U}.ReadUnaligned<short>(ref {U}.Add(ref {MM}.GetReference(bias), i * 2)) << shift;");
        w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
        w.Line($"static float MultiplierOf(ReadOnlySpan<byte> multipliers, int i, float layer) => layer == 0f ? {U}.ReadUnaligned<float>(ref {U}.Add(ref {MM}.GetReference(multipliers), i * 4)) : BitConverter.Int32BitsToSingle(({U}.ReadUnaligned<ushort>(ref {U}.Add(ref {MM}.GetReference(multipliers), i * 2)) << 13) + 0x38000000) * layer;");
    }

    /// <summary>A channel's int32 bias from its stored int16 element, shifted back by the node's "bias_shift" (AccumulatorBias).</summary>
    internal static string Bias(KernelContext k, string element) =>
        k.Int8Layer.BiasShift != 0 ? $"({element} << {k.Int8Layer.BiasShift})" : $"(int){element}";

    /// <summary>
    /// A channel's float32 multiplier from its stored element: as is, or with the node's "multiplier" attribute a
    /// float16 ratio times that layer-wide multiplier (the product the evaluator formed, ChannelScales). The ratio
    /// is a positive normal float16, whose float32 bits are its own shifted into place plus the exponent's change
    /// of bias (112 &lt;&lt; 23): exactly (float)Half, without the conversion's code inlined into the kernel.
    /// </summary>
    internal static string Multiplier(KernelContext k, string element) =>
        k.Int8Layer.Multiplier is { } layer ? $"(BitConverter.Int32BitsToSingle(({element} << 13) + 0x38000000) * {KernelContext.F(layer)})" : element;
}
