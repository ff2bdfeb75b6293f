using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A binary element-wise operator with numpy broadcasting. The output's axes are walked as loops with constant
/// bounds, after merging neighbouring axes that both operands walk alike (contiguous, or both repeated), so the
/// innermost loop is one run in which each operand is either contiguous or one repeated value: that run is
/// vectorized (Add, Sub, Mul, Div, and the fused activation when it has a vector form), no index is divided.
/// Vector additions, products and quotients round as scalar ones do, so every path gives the same bits.
/// </summary>
internal sealed class BinaryKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Binary;

    public string InputName(ArtifactNode node, int i) => new[] { "a", "b" }[i];

    /// <summary>The operators whose vector form is the C# operator on vectors.</summary>
    static readonly Dictionary<string, string> VectorOperators = new() { ["Add"] = "+", ["Sub"] = "-", ["Mul"] = "*", ["Div"] = "/" };

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var (a, b, y) = (k.Inputs[0], k.Inputs[1], k.Y);
        var binary = k.Node.Binary ?? throw new FormatException($"Binary '{k.Node.Name}' has no op");
        string op = binary.Op;
        // Opsets 1-6 line B up with A's axes from a given axis: "bshape" is B's shape so aligned.
        int[] bShape = binary.BShape ?? b.Shape;
        var loops = Loops(y.Shape, a.Shape, bShape);
        var (run, runA, runB) = loops[loops.Count - 1];
        var outer = loops.Take(loops.Count - 1).ToList();

        w.Line($"// {op}: y{CodeWriter.Shape(y.Shape)} = {Activations.BinaryExpression(op, "a", "b")} for a{CodeWriter.Shape(a.Shape)}, b{CodeWriter.Shape(b.Shape)} (numpy broadcasting){k.ActName()}.");
        if (outer.Count > 0 || runA == 0 || runB == 0)
            w.Line($"// Runs of {run} outputs{Reads("a", runA)}{Reads("b", runB)}.");
        using var method = k.OpenMethod();
        KernelEmitter.CheckedRefs(w, [("a", a.ElementCount), ("b", b.ElementCount), ("y", y.ElementCount)], ("ra", "a"), ("rb", "b"), ("ry", "y"));
        using (var nest = w.Nest())
        {
            // Each outer loop's counter times each tensor's stride along it (y's from the sizes inside it).
            string oa = "0", ob = "0", oy = "0";
            long strideY = run;
            var strideYs = new long[outer.Count];
            for (int i = outer.Count - 1; i >= 0; i--) { strideYs[i] = strideY; strideY *= outer[i].Size; }
            for (int i = 0; i < outer.Count; i++)
            {
                nest.For("i" + i, outer[i].Size, out string at);
                oa = Expr.Plus(oa, Expr.Times(at, outer[i].StrideA));
                ob = Expr.Plus(ob, Expr.Times(at, outer[i].StrideB));
                oy = Expr.Plus(oy, Expr.Times(at, strideYs[i]));
            }
            string? vectorOp = VectorOperators.TryGetValue(op, out var o) ? o : null;
            var widths = SimdLadder.Widths(k.Simd);
            bool vector = vectorOp is not null && widths.Count > 0 && run >= widths[widths.Count - 1].Floats
                && (!KernelEmitter.HasActivation(k.Node) || GemmEmitter.VectorActivation(k.Node, "Vector128", "v") is not null);
            w.Line("int j = 0;");
            if (vector)
            {
                SimdLadder.Chain(w, widths.Where(x => run >= x.Floats).ToList(), x =>
                {
                    string v = x.V;
                    string Operand(string r, string o, long stride, string name) =>
                        stride == 0 ? $"var {name} = {v}.Create({Unsafe(r, o)});" : "";
                    string Load(string r, string o, long stride, string name) =>
                        stride == 0 ? name : $"{v}.LoadUnsafe(ref {r}, (nuint)({Expr.Plus(o, "j")}))";
                    foreach (string line in new[] { Operand("ra", oa, runA, "va"), Operand("rb", ob, runB, "vb") }.Where(l => l.Length > 0)) w.Line(line);
                    using (w.Block($"for (; j <= {run - x.Floats}; j += {x.Floats})"))
                    {
                        w.Line($"var v = {Load("ra", oa, runA, "va")} {vectorOp} {Load("rb", ob, runB, "vb")};");
                        w.Line($"{v}.StoreUnsafe({GemmEmitter.VectorActivation(k.Node, v, "v")}, ref ry, (nuint)({Expr.Plus(oy, "j")}));");
                    }
                }, guard: x => x.Accelerated);
            }
            using (w.Block($"for (; j < {run}; j++)"))
            {
                w.Line($"float left = {Unsafe("ra", Expr.Plus(oa, runA == 0 ? "0" : "j"))}, right = {Unsafe("rb", Expr.Plus(ob, runB == 0 ? "0" : "j"))};");
                w.Line($"float v = {Activations.BinaryExpression(op, "left", "right")};");
                w.Line($"{Unsafe("ry", Expr.Plus(oy, "j"))} = {k.Act()};");
            }
        }
    }

    static string Reads(string operand, long stride) => stride == 0 ? $", {operand} one value a run" : $", {operand} contiguous";

    static string Unsafe(string r, string offset) => $"Unsafe.Add(ref {r}, {offset})";

    /// <summary>
    /// The loops over the output: (size, stride of a, stride of b) from the outermost to the innermost, after merging
    /// neighbouring axes each operand walks alike. The innermost's strides are 1 or 0 (contiguous or repeated).
    /// </summary>
    internal static List<(long Size, long StrideA, long StrideB)> Loops(int[] y, int[] a, int[] b)
    {
        long[] sa = Strides(a, y), sb = Strides(b, y);
        var loops = new List<(long Size, long StrideA, long StrideB)>();
        for (int i = 0; i < y.Length; i++)
        {
            if (y[i] == 1) continue;
            loops.Add((y[i], sa[i], sb[i]));
        }
        if (loops.Count == 0) return [(1, 0, 0)];
        // Merge an axis into the one inside it when each operand steps over the inner axis's whole extent (contiguous) or repeats on both.
        var merged = new List<(long Size, long StrideA, long StrideB)> { loops[loops.Count - 1] };
        for (int i = loops.Count - 2; i >= 0; i--)
        {
            var inner = merged[0];
            var (size, ai, bi) = loops[i];
            bool Joins(long outerStride, long innerStride) => outerStride == innerStride * inner.Size;
            if (Joins(ai, inner.StrideA) && Joins(bi, inner.StrideB)) merged[0] = (size * inner.Size, inner.StrideA, inner.StrideB);
            else merged.Insert(0, loops[i]);
        }
        // The innermost run: an operand whose stride there is neither 1 nor 0 (it cannot be: its last axis is contiguous
        // or repeated) would need a gather; guard anyway with a loop of its own.
        var last = merged[merged.Count - 1];
        if (last.StrideA is not (0 or 1) || last.StrideB is not (0 or 1)) merged.Add((1, 0, 0));
        return merged;
    }

    /// <summary>An operand's stride along each axis of the output (0 where it is repeated).</summary>
    static long[] Strides(int[] operand, int[] y)
    {
        var strides = new long[y.Length];
        long stride = 1;
        for (int i = y.Length - 1; i >= 0; i--)
        {
            int j = i - (y.Length - operand.Length);
            int dim = j >= 0 ? operand[j] : 1;
            strides[i] = dim == 1 ? 0 : stride;
            stride *= dim;
        }
        return strides;
    }
}
