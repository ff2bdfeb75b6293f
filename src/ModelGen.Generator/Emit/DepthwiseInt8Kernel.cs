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
/// gathering patches.
/// </summary>
internal sealed class DepthwiseInt8Kernel : IKernel
{
    const string U = "global::System.Runtime.CompilerServices.Unsafe";

    public string Kernel => "DepthwiseInt8";

    public string InputName(int i) => new[] { "x", "w", "bias", "multipliers" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0]; var y = k.Y;
        int[] kernel = k.Ints("kernel"), s = k.Ints("strides"), d = k.Ints("dilations"), p = k.Ints("pads");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3], oh = y.Shape[2], ow = y.Shape[3];
        int[] planeShape = k.Ints("plane");
        int rows = planeShape[0], pw = planeShape[1], planeLength = (int)k.Outputs[1].ElementCount, wide = (int)k.Outputs[2].ElementCount, stride = s[1];
        int taps = kernel[0] * kernel[1];
        if (k.Inputs[1].ElementCount != (long)c * taps || s[0] != s[1] || stride is not (1 or 2))
            throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': weights must be [{c}, {taps}] and strides equal, 1 or 2");
        string scale = KernelContext.F(k.Float("scale")), inverse = KernelContext.F(1f / k.Float("scale"));
        int zero = k.Int("zero");
        w.Line($"// Conv (depthwise) in int8: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ q[{c}, {kernel[0]}x{kernel[1]}], one filter per channel; stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}{k.ActName()}.");
        w.Line($"// Per channel: the plane copied into y1 ({rows}x{pw}, zeros in the padding), then all of it quantized to uint8 values (scale {scale},");
        w.Line($"// zero point {zero}; a padding 0 becomes the zero point) held as float32 in y3;");
        w.Line($"// sum = Σ taps xq·q over a wide plane in y2 (exact in float32: every sum is an integer below 2^24), y = (sum + bias[c])·multiplier[c]; then {ow} columns per row copied out.");
        k.OpenMethod();
        if (planeLength < rows * pw || planeLength % 16 != 0 || k.Outputs[3].ElementCount < planeLength)
            throw new FormatException($"DepthwiseInt8 '{k.Node.Name}': the planes must hold {rows}x{pw} floats in whole vectors");
        KernelEmitter.CheckedRefs(w, [("x", x.ElementCount), ("w", k.Inputs[1].ElementCount), ("bias", c), ("multipliers", c), ("y", y.ElementCount), ("y1", planeLength), ("y2", wide), ("y3", planeLength)],
            ("rx", "x"), ("ry", "y"), ("rr", "y1"), ("rq", "y2"), ("rp", "y3"));
        w.Line("ref sbyte rw = ref global::System.Runtime.InteropServices.MemoryMarshal.GetReference(w);");
        w.Line($"y1.Slice(0, {planeLength}).Clear(); // the padding, which the planes copied in never touch");
        w.Open($"for (int plane = 0; plane < {n * c}; plane++)");
        w.Line($"int ch = plane % {c};");
        w.Line("int b = bias[ch];");
        w.Line("float m = multipliers[ch];");
        w.Line(string.Join(" ", Enumerable.Range(0, taps).Select(t => $"float w{t} = {U}.Add(ref rw, ch * {taps} + {t});")));
        w.Open($"for (int r = 0; r < {h}; r++)");
        w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref rr, (r + {p[0]}) * {pw} + {p[1]})), ref {U}.As<float, byte>(ref {U}.Add(ref rx, (plane * {h} + r) * {wd})), {wd * 4});");
        w.Close();
        Quantize(w, k.Simd, planeLength, inverse, zero);
        var offsets = new List<int>();
        for (int kh = 0; kh < kernel[0]; kh++)
            for (int kw = 0; kw < kernel[1]; kw++) offsets.Add(kh * d[0] * pw + kw * d[1]);
        string? vectorAct = GemmEmitter.VectorActivation(k.Node, "V", "v");
        var levels = new List<(string V, int Width)>();
        if (k.Simd == "auto") { levels.Add(("global::System.Runtime.Intrinsics.Vector512", 16)); levels.Add(("global::System.Runtime.Intrinsics.Vector256", 8)); }
        if (k.Simd != "none") levels.Add(("global::System.Runtime.Intrinsics.Vector128", 4));
        for (int l = 0; l < levels.Count; l++)
        {
            var (v, width) = levels[l];
            w.Open($"{(l == 0 ? "if" : "else if")} ({v}.IsHardwareAccelerated)");
            w.Line(string.Join(" ", Enumerable.Range(0, taps).Select(t => $"var v{t} = {v}.Create(w{t});")));
            w.Line($"var vb = {v}.Create(b); var vm = {v}.Create(m);");
            w.Open($"for (int j = 0; j < {wide}; j += {width})");
            DepthwiseConvEmitter.WideTaps(w, v, width, true, $"{v}<float>.Zero", "v", kernel, stride, offsets);
            w.Line($"var v = {v}.ConvertToSingle({v}.ConvertToInt32(acc) + vb) * vm;");
            w.Line($"{v}.StoreUnsafe({(vectorAct is null ? "v" : GemmEmitter.VectorActivation(k.Node, v, "v"))}, ref rq, (nuint)j);");
            w.Close();
            w.Close();
        }
        if (levels.Count > 0) w.Open("else");
        w.Open($"for (int j = 0; j < {wide}; j++)");
        w.Line("float sum = 0f;");
        for (int t = 0; t < taps; t++) w.Line($"sum += w{t} * {U}.Add(ref rp, {stride} * j + {offsets[t]});");
        w.Line("float v = ((int)sum + b) * m;");
        w.Line($"{U}.Add(ref rq, j) = {(vectorAct is null ? "v" : k.Act())};");
        w.Close();
        if (levels.Count > 0) w.Close();
        w.Open($"for (int oy = 0; oy < {oh}; oy++)");
        if (vectorAct is null)
        {
            // An activation with no vector form: applied here, once per output.
            w.Line($"for (int ox = 0; ox < {ow}; ox++) {{ float v = {U}.Add(ref rq, oy * {pw} + ox); {U}.Add(ref ry, (plane * {oh} + oy) * {ow} + ox) = {k.Act()}; }}");
        }
        else
            w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref ry, (plane * {oh} + oy) * {ow})), ref {U}.As<float, byte>(ref {U}.Add(ref rq, oy * {pw})), {ow * 4});");
        w.Close();
        w.Close();
        w.Close();
    }

    /// <summary>y3 = clamp(round(y1·inverseScale) + zero, 0, 255) over the whole plane, the arithmetic of QuantizeU8.</summary>
    static void Quantize(CodeWriter w, string simd, int length, string inverse, int zero)
    {
        w.Line("int i = 0;");
        var levels = new List<(string V, int Width)>();
        if (simd == "auto") { levels.Add(("global::System.Runtime.Intrinsics.Vector512", 16)); levels.Add(("global::System.Runtime.Intrinsics.Vector256", 8)); }
        if (simd != "none") levels.Add(("global::System.Runtime.Intrinsics.Vector128", 4));
        for (int l = 0; l < levels.Count; l++)
        {
            var (v, width) = levels[l];
            w.Open($"{(l == 0 ? "if" : "else if")} ({v}.IsHardwareAccelerated)");
            w.Line($"var s = {v}.Create({inverse}); var z = {v}.Create({zero}f); var top = {v}.Create(255f);");
            w.Line($"for (; i < {length}; i += {width}) {v}.StoreUnsafe({v}.Min({v}.Max({v}.Round({v}.LoadUnsafe(ref rr, (nuint)i) * s) + z, {v}<float>.Zero), top), ref rp, (nuint)i);");
            w.Close();
        }
        w.Line($"for (; i < {length}; i++) {U}.Add(ref rp, i) = global::System.Math.Clamp(global::System.MathF.Round({U}.Add(ref rr, i) * {inverse}, global::System.MidpointRounding.ToEven) + {zero}f, 0f, 255f);");
    }
}
