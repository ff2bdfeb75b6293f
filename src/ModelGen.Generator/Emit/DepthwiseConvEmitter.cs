using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Depthwise Conv (one filter per channel): per channel and output row, the interior columns (every tap
/// inside the input) a vector at a time, each tap one fused multiply-add of a broadcast weight and a
/// run of input (stride 1: a plain load; stride 2: the even lanes of two loads); the edge columns, whose
/// taps reach into the padding, one by one.
/// </summary>
internal static class DepthwiseConvEmitter
{
    const string U = "Unsafe";

    public static void Emit(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor[] outputs, SimdLevel simd)
    {
        if (outputs.Length == 3)
        {
            EmitPlane(w, node, name, sig, inputs, outputs, simd);
            return;
        }
        if (DepthwiseRowsEmitter.TryEmit(w, node, name, sig, inputs, outputs, simd)) return;
        var y = outputs[0];
        var x = inputs[0]; var wt = inputs[1];
        bool hasBias = inputs.Length > 2;
        int[] k = KernelEmitter.Window(node).Kernel, s = KernelEmitter.Window(node).Strides, d = KernelEmitter.Window(node).Dilations, p = KernelEmitter.Window(node).Pads;
        int n = x.Shape[0], c = x.Shape[1];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = y.Shape.Length == 4 ? y.Shape[2] : 1, ow = y.Shape[y.Shape.Length - 1];
        int taps = k[0] * k[1];
        // Interior columns [first, last): ox·sW − pL ≥ 0 and ox·sW + (kW−1)·dW − pL ≤ W − 1.
        int first = Math.Min(ow, (p[1] + s[1] - 1) / s[1]);
        int last = Math.Max(first, Math.Min(ow, (wd - 1 + p[1] - (k[1] - 1) * d[1]) / s[1] + 1));
        // Stride 2 reads one element past the last tap of the last column (the odd lane of the pair).
        int lastVector = s[1] == 2 ? Math.Max(first, Math.Min(last, (wd - 2 + p[1] - (k[1] - 1) * d[1]) / 2 + 1)) : last;
        bool vectorizable = s[1] is 1 or 2 && simd != SimdLevel.None;
        w.Line($"// Conv (depthwise): y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w{CodeWriter.Shape(wt.Shape)}{(hasBias ? " + b" : "")}, one {k[0]}x{k[1]} filter per channel; stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}{KernelEmitter.ActName(node)}.");
        w.Line(vectorizable
            ? $"// Columns {first}..{lastVector - 1} of each output row a vector at a time ({taps} fused multiply-adds each); the others one by one."
            : "// Every output one by one (a horizontal stride other than 1 or 2).");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        var lengths = new List<(string, long)> { ("x", x.ElementCount), ("w", wt.ElementCount), ("y", y.ElementCount) };
        if (hasBias) lengths.Add(("b", c));
        KernelEmitter.CheckedRefs(w, lengths.ToArray(), ("rx", "x"), ("rw", "w"), ("ry", "y"));
        using (w.Block($"for (int plane = 0; plane < {n * c}; plane++)"))
        {
            w.Line($"int ch = plane % {c};");
            w.Line($"ref float xp = ref {U}.Add(ref rx, plane * {h * wd});");
            w.Line($"ref float wp = ref {U}.Add(ref rw, ch * {taps});");
            w.Line($"float bias = {(hasBias ? "b[ch]" : "0f")};");
            using (w.Block($"for (int oy = 0; oy < {oh}; oy++)"))
            {
                w.Line($"ref float yrow = ref {U}.Add(ref ry, (plane * {oh} + oy) * {ow});");
                w.Line($"int iy = oy * {s[0]} - {p[0]};");
                w.Line($"int ox = {first};");
                if (vectorizable && lastVector > first)
                {
                    SimdLadder.Cascade(w, SimdLadder.Widths(simd).Where(x => lastVector - first >= x.Floats), sw =>
                    {
                        string v = sw.V;
                        int width = sw.Floats;
                        bool fused = sw.Fused;
                        using (w.Block($"for (; ox <= {lastVector - width}; ox += {width})"))
                        {
                            w.Line($"{v}<float> acc = {v}.Create(bias);");
                            for (int kh = 0; kh < k[0]; kh++)
                            {
                                string ih = $"iy + {kh * d[0]}";
                                bool rowAlwaysInside = p[0] == 0 && (oh - 1) * s[0] + (k[0] - 1) * d[0] < h;
                                using (rowAlwaysInside ? w.Block() : w.Block($"if ((uint)({ih}) < {h}u)"))
                                {
                                    w.Line($"ref float row = ref {U}.Add(ref xp, ({ih}) * {wd});");
                                    for (int kw = 0; kw < k[1]; kw++)
                                    {
                                        string at = $"ox * {s[1]} + {kw * d[1] - p[1]}";
                                        string load = s[1] == 1
                                            ? $"{v}.LoadUnsafe(ref row, (nuint)({at}))"
                                            : KernelEmitter.EvenLanes(v, width, $"{v}.LoadUnsafe(ref row, (nuint)({at}))", $"{v}.LoadUnsafe(ref row, (nuint)({at} + {width}))");
                                        string weight = $"{v}.Create({U}.Add(ref wp, {kh * k[1] + kw}))";
                                        w.Line(fused ? $"acc = {v}.FusedMultiplyAdd({weight}, {load}, acc);" : $"acc += {weight} * {load};");
                                    }
                                }
                            }
                            if (GemmEmitter.VectorActivation(node, v, "acc") is { } value) w.Line($"{v}.StoreUnsafe({value}, ref yrow, (nuint)ox);");
                            else
                            {
                                w.Line($"{v}.StoreUnsafe(acc, ref yrow, (nuint)ox);");
                                w.Line($"for (int e = 0; e < {width}; e++) {{ float v = {U}.Add(ref yrow, ox + e); {U}.Add(ref yrow, ox + e) = {KernelEmitter.Act(node)}; }}");
                            }
                        }
                    });
                }
                w.Line("// The other columns: edges (taps in the padding) and what no vector covered.");
                using (w.Block($"for (int col = 0; col < {ow}; col++)"))
                {
                    w.Line($"if (col >= {first} && col < ox) continue;");
                    w.Line("float sum = bias;");
                    using (w.Block($"for (int kh = 0; kh < {k[0]}; kh++)"))
                    {
                        w.Line($"int ih = iy + kh * {d[0]};");
                        w.Line($"if ((uint)ih >= {h}u) continue;");
                        using (w.Block($"for (int kw = 0; kw < {k[1]}; kw++)"))
                        {
                            w.Line($"int iw = col * {s[1]} + kw * {d[1]} - {p[1]};");
                            w.Line($"if ((uint)iw < {wd}u) sum += {U}.Add(ref wp, kh * {k[1]} + kw) * {U}.Add(ref xp, ih * {wd} + iw);");
                        }
                    }
                    w.Line("float v = sum;");
                    w.Line($"{U}.Add(ref yrow, col) = {KernelEmitter.Act(node)};");
                }
            }
        }
    }

    /// <summary>
    /// acc = init + Σ taps weight{t}·(the plane rp at stride·j + offset{t}), for one vector of the wide
    /// output at j. One accumulator per kernel row, summed at the end: a single chain of 9 dependent FMAs
    /// made these kernels latency-bound (a plane has only a few vectors to overlap).
    /// </summary>
    internal static void WideTaps(CodeWriter w, string v, int width, bool fused, string init, string weight, int[] kernel, int stride, List<int> offsets)
    {
        int chains = Math.Min(kernel[0], 3);
        w.Line($"{v}<float> acc = {init}{string.Concat(Enumerable.Range(1, chains - 1).Select(r => $", acc{r} = {v}<float>.Zero"))};");
        for (int t = 0; t < offsets.Count; t++)
        {
            string at = stride == 1 ? $"j + {offsets[t]}" : $"2 * j + {offsets[t]}";
            string load = stride == 1
                ? $"{v}.LoadUnsafe(ref rp, (nuint)({at}))"
                : KernelEmitter.EvenLanes(v, width, $"{v}.LoadUnsafe(ref rp, (nuint)({at}))", $"{v}.LoadUnsafe(ref rp, (nuint)({at} + {width}))");
            int chain = t / kernel[1] % chains;
            string acc = chain == 0 ? "acc" : "acc" + chain;
            w.Line(fused ? $"{acc} = {v}.FusedMultiplyAdd({weight}{t}, {load}, {acc});" : $"{acc} += {weight}{t} * {load};");
        }
        if (chains > 1) w.Line($"acc += {string.Join(" + ", Enumerable.Range(1, chains - 1).Select(r => "acc" + r))};");
    }

    /// <summary>
    /// Equal strides of 1 or 2: each input plane is copied into a zero-padded plane (y1, width Wp), and the
    /// output computed as a wide plane (y2) where output (oy, ox) is element j = oy·Wp + ox. Tap (kh, kw)
    /// then reads padded element stride·j + kh·dH·Wp + kw·dW for every j: one run of memory (stride 1)
    /// or its even elements (stride 2), so the whole plane is a few long vector loops, whatever its
    /// width. The columns past OW are computed and dropped when the rows are copied out.
    /// </summary>
    static void EmitPlane(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor[] outputs, SimdLevel simd)
    {
        var x = inputs[0]; var wt = inputs[1]; var y = outputs[0];
        bool hasBias = inputs.Length > 2;
        int[] k = KernelEmitter.Window(node).Kernel, s = KernelEmitter.Window(node).Strides, d = KernelEmitter.Window(node).Dilations, p = KernelEmitter.Window(node).Pads;
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3], oh = y.Shape[2], ow = y.Shape[3];
        int rows = outputs[1].Shape[0], pw = outputs[1].Shape[1], wide = (int)outputs[2].ElementCount, stride = s[1];
        int taps = k[0] * k[1];
        w.Line($"// Conv (depthwise): y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w{CodeWriter.Shape(wt.Shape)}{(hasBias ? " + b" : "")}, one {k[0]}x{k[1]} filter per channel; stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}{KernelEmitter.ActName(node)}.");
        w.Line($"// Per channel: the plane copied into y1 ({rows}x{pw}, zero padding), {wide} outputs computed as a wide plane in y2");
        w.Line($"// (output (oy, ox) at oy·{pw} + ox; tap (kh, kw) reads y1 at {stride}·j + kh·{d[0] * pw} + kw·{d[1]}), then {ow} columns per row copied out.");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        var lengths = new List<(string, long)> { ("x", x.ElementCount), ("w", wt.ElementCount), ("y", y.ElementCount), ("y1", (long)rows * pw), ("y2", wide) };
        if (hasBias) lengths.Add(("b", c));
        KernelEmitter.CheckedRefs(w, lengths.ToArray(), ("rx", "x"), ("rw", "w"), ("ry", "y"), ("rp", "y1"), ("rq", "y2"));
        w.Line("y1.Slice(0, " + (rows * pw) + ").Clear(); // the padding, which the planes copied in never touch");
        using (w.Block($"for (int plane = 0; plane < {n * c}; plane++)"))
        {
            w.Line($"int ch = plane % {c};");
            w.Line($"ref float wp = ref {U}.Add(ref rw, ch * {taps});");
            w.Line($"float bias = {(hasBias ? "b[ch]" : "0f")};");
            using (w.Block($"for (int r = 0; r < {h}; r++)"))
            {
                w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref rp, (r + {p[0]}) * {pw} + {p[1]})), ref {U}.As<float, byte>(ref {U}.Add(ref rx, (plane * {h} + r) * {wd})), {wd * 4});");
            }
            var offsets = new List<int>();
            for (int kh = 0; kh < k[0]; kh++)
                for (int kw = 0; kw < k[1]; kw++) offsets.Add(kh * d[0] * pw + kw * d[1]);
            bool vectorActivation = GemmEmitter.VectorActivation(node, "V", "acc") is not null;
            SimdLadder.Chain(w, SimdLadder.Widths(simd), sw =>
            {
                string v = sw.V;
                int width = sw.Floats;
                bool fused = sw.Fused;
                w.Line(string.Join(" ", Enumerable.Range(0, taps).Select(t => $"var w{t} = {v}.Create({U}.Add(ref wp, {t}));")));
                using (w.Block($"for (int j = 0; j < {wide}; j += {width})"))
                {
                    WideTaps(w, v, width, fused, $"{v}.Create(bias)", "w", k, stride, offsets);
                    w.Line($"{v}.StoreUnsafe({GemmEmitter.VectorActivation(node, v, "acc") ?? "acc"}, ref rq, (nuint)j);");
                }
            }, () =>
            {
                using (w.Block($"for (int j = 0; j < {wide}; j++)"))
                {
                    w.Line("float sum = bias;");
                    for (int t = 0; t < taps; t++) w.Line($"sum += {U}.Add(ref wp, {t}) * {U}.Add(ref rp, {stride} * j + {offsets[t]});");
                    w.Line("float v = sum;");
                    w.Line($"{U}.Add(ref rq, j) = {(vectorActivation ? KernelEmitter.Act(node) : "v")};");
                }
            });
            using (w.Block($"for (int oy = 0; oy < {oh}; oy++)"))
            {
                w.Line($"ref float row = ref {U}.Add(ref ry, (plane * {oh} + oy) * {ow});");
                w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref row), ref {U}.As<float, byte>(ref {U}.Add(ref rq, oy * {pw})), {ow * 4});");
                if (KernelEmitter.HasActivation(node) && !vectorActivation)
                    w.Line($"for (int ox = 0; ox < {ow}; ox++) {{ float v = {U}.Add(ref row, ox); {U}.Add(ref row, ox) = {KernelEmitter.Act(node)}; }}");
            }
        }
    }
}
