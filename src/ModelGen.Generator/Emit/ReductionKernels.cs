using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>ReduceMean/Sum/Max and the global pools: for each kept index, a reduction over the reduced axes.</summary>
internal sealed class ReduceKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Reduce;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var reduce = k.Node.Reduce ?? throw new System.FormatException($"Reduce '{k.Node.Name}' has no op and sizes");
        string op = reduce.Op;
        int[] kept = reduce.Kept, keptStrides = reduce.KeptStrides, reduced = reduce.Reduced, reducedStrides = reduce.ReducedStrides;
        long count = reduced.Aggregate(1L, (a, b) => a * b);
        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: y{CodeWriter.Shape(k.Y.Shape)} = {op.ToLowerInvariant()} of x{CodeWriter.Shape(k.Inputs[0].Shape)} over {count} values each (reduced sizes {CodeWriter.Shape(reduced)}).");
        using var method = k.OpenMethod();
        // The reduced values of each output one contiguous run (global pooling, a reduction over the last
        // axes): a vector sum or maximum over the run.
        bool contiguous = reduced.Length > 0 && Enumerable.Range(0, reduced.Length).All(d => reducedStrides[d] == reduced.Skip(d + 1).Aggregate(1, (a, b) => a * b))
            && Enumerable.Range(0, kept.Length).All(d => keptStrides[d] == count * kept.Skip(d + 1).Aggregate(1, (a, b) => a * b));
        if (contiguous && k.Simd != SimdLevel.None && count >= 8)
        {
            long outputs = kept.Aggregate(1L, (a, b) => a * b);
            const string U = "Unsafe";
            KernelEmitter.CheckedRefs(w, [("x", k.Inputs[0].ElementCount), ("y", k.Y.ElementCount)], ("rx", "x"));
            using (w.For("o", outputs, out string o))
            {
                w.Line($"ref float run = ref {KernelEmitter.At(U, "rx", o, count)};");
                w.Line("int i = 0;");
                w.Line(op == "Max" ? "float acc = float.NegativeInfinity;" : "float acc = 0f;");
                // One width, at most Vector256: this kernel has no Vector512 path.
                var sw = SimdLadder.Widths(k.Simd, widest: 256)[0];
                string v = sw.V;
                int width = sw.Floats;
                if (count >= width)
                {
                    using (w.Block($"if ({sw.Accelerated})"))
                    {
                        w.Line($"var vacc = {(op == "Max" ? $"{v}.Create(float.NegativeInfinity)" : $"{v}<float>.Zero")};");
                        w.Line($"for (; i <= {count - width}; i += {width}) vacc = {(op == "Max" ? $"{v}.Max(vacc, {v}.LoadUnsafe(ref run, (nuint)i))" : $"vacc + {v}.LoadUnsafe(ref run, (nuint)i)")};");
                        w.Line(op == "Max" ? $"for (int e = 0; e < {width}; e++) {{ float lane = {v}.GetElement(vacc, e); if (lane > acc || float.IsNaN(lane)) acc = lane; }}" : $"acc = {v}.Sum(vacc);");
                    }
                }
                w.Line(op == "Max" ? $"for (; i < {count}; i++) {{ float v = {U}.Add(ref run, i); if (v > acc || float.IsNaN(v)) acc = v; }}" : $"for (; i < {count}; i++) acc += {U}.Add(ref run, i);");
                w.Line(op == "Mean" ? $"y[{o}] = acc / {count};" : $"y[{o}] = acc;");
            }
            return;
        }
        using var outer = w.Nest();
        string offset = "0";
        var target = new List<string>();
        for (int d = 0; d < kept.Length; d++)
        {
            outer.For($"o{d}", kept[d], out string at);
            offset = w.IntLocal($"k{d}", Expr.Plus(offset, Expr.Times(at, keptStrides[d])));
            target.Add(Expr.Times(at, kept.Skip(d + 1).Aggregate(1, (a, b) => a * b)));
        }
        w.Line(op == "Max" ? "float acc = float.NegativeInfinity;" : "float acc = 0f;");
        string inner = offset;
        using (var reducedLoops = w.Nest())
        {
            for (int d = 0; d < reduced.Length; d++)
            {
                reducedLoops.For($"r{d}", reduced[d], out string at);
                inner = w.IntLocal($"q{d}", Expr.Plus(inner, Expr.Times(at, reducedStrides[d])));
            }
            w.Line(op == "Max" ? $"float v = x[{inner}]; if (v > acc || float.IsNaN(v)) acc = v;" : $"acc += x[{inner}];");
        }
        w.Line(op == "Mean" ? $"y[{Expr.Sum([.. target])}] = acc / {count};" : $"y[{Expr.Sum([.. target])}] = acc;");
    }
}

/// <summary>Softmax and LogSoftmax over one axis of length n with a stride (layout: outer, n, inner).</summary>
internal sealed class SoftmaxKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Softmax;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var softmax = k.Node.Softmax ?? throw new System.FormatException($"Softmax '{k.Node.Name}' has no layout");
        int outer = softmax.Outer, n = softmax.Length, inner = softmax.Inner;
        bool log = softmax.Log;
        const string M = "MathF";
        w.Line($"// {(log ? "LogSoftmax" : "Softmax")} over {n} values {(inner == 1 ? "in a row" : $"{inner} apart")}, {outer * inner} times: " +
            (log ? "y = x − max − ln Σ e^(x − max)." : "y = e^(x − max) / Σ e^(x − max)."));
        using var method = k.OpenMethod();
        using var rows = w.For("o", outer, out string o);
        using var columns = w.For("i", inner, out string i);
        string start = w.IntLocal("b", Expr.Plus(Expr.Times(o, (long)n * inner), i));
        string at = Expr.Plus(start, Expr.Times("a", inner));
        w.Line("float max = float.NegativeInfinity;");
        w.Line($"for (int a = 0; a < {n}; a++) max = {M}.Max(max, x[{at}]);");
        w.Line("float sum = 0f;");
        if (log)
        {
            w.Line($"for (int a = 0; a < {n}; a++) sum += {M}.Exp(x[{at}] - max);");
            w.Line($"float logSum = {M}.Log(sum);");
            w.Line($"for (int a = 0; a < {n}; a++) y[{at}] = x[{at}] - max - logSum;");
        }
        else
        {
            using (w.Block($"for (int a = 0; a < {n}; a++)"))
            {
                w.Line($"float e = {M}.Exp(x[{at}] - max);");
                w.Line($"y[{at}] = e;");
                w.Line("sum += e;");
            }
            w.Line("float scale = 1f / sum;");
            w.Line($"for (int a = 0; a < {n}; a++) y[{at}] *= scale;");
        }
    }
}

/// <summary>
/// ReduceMean/Sum/Max whose axes arrive at run time: the output shape is compiled in, but several sets of
/// axes can give it ([3,2,2] → [3,2] by axis 1 or 2), so the kernel reads the axes when it runs, checks
/// the shape they give, and reduces with strides worked out then.
/// </summary>
internal sealed class ReduceRuntimeKernel : IKernel
{
    public KernelKind Kernel => KernelKind.ReduceRuntime;

    public string InputName(ArtifactNode node, int i) => i == 0 ? "x" : "axes";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var reduce = k.Node.ReduceRuntime ?? throw new System.FormatException($"ReduceRuntime '{k.Node.Name}' has no op and input shape");
        string op = reduce.Op;
        int[] input = reduce.In;
        string parameter = k.Model.Inputs.FirstOrDefault(b => b.Tensor == k.Node.Inputs[1])?.Parameter ?? "axes";
        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: y{CodeWriter.Shape(k.Y.Shape)} = {op.ToLowerInvariant()} of x{CodeWriter.Shape(input)} over the axes given at run time in '{parameter}'.");
        using var method = k.OpenMethod();
        string Ints(int[] v) => v.Length == 0 ? "ReadOnlySpan<int>.Empty" : $"stackalloc int[] {{ {string.Join(", ", v)} }}";
        int opCode = op == "Max" ? 2 : op == "Mean" ? 1 : 0;
        w.Line($"RuntimeReduce.Reduce(x, y, axes, {Ints(input)}, {Ints(k.Y.Shape)}, {(reduce.KeepDims ? "true" : "false")}, {(reduce.Noop ? "true" : "false")}, {opCode}, \"{parameter}\");");
        k.Helpers.Add("ShapeChecks");
        k.Helpers.Add("RuntimeReduce");
    }

    public const string HelperSource = @"/// <summary>A reduction over axes given at run time (checked to give the compiled output shape).</summary>
static class RuntimeReduce
{
    /// <param name=""op"">0 sum, 1 mean, 2 max.</param>
    public static void Reduce(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<long> axes, ReadOnlySpan<int> dims,
        ReadOnlySpan<int> outDims, bool keepDims, bool noop, int op, string parameter)
    {
        ShapeChecks.Axes(axes, ShapeChecks.Rule.Reduce, dims, outDims, keepDims, noop, parameter);
        int rank = dims.Length;
        Span<bool> marked = stackalloc bool[rank];
        if (axes.Length == 0 && !noop) marked.Fill(true);
        foreach (long a in axes) marked[(int)(a < 0 ? a + rank : a)] = true;
        // Kept and reduced axes as (size, stride) lists, innermost last.
        Span<int> keptSize = stackalloc int[rank], keptStride = stackalloc int[rank], redSize = stackalloc int[rank], redStride = stackalloc int[rank];
        int kept = 0, red = 0, stride = 1, keptCount = 1, redCount = 1;
        for (int d = rank - 1; d >= 0; d--)
        {
            if (marked[d]) { redSize[red] = dims[d]; redStride[red++] = stride; redCount *= dims[d]; }
            else { keptSize[kept] = dims[d]; keptStride[kept++] = stride; keptCount *= dims[d]; }
            stride *= dims[d];
        }
        for (int o = 0; o < keptCount; o++)
        {
            int baseOffset = 0;
            for (int d = 0, rest = o; d < kept; d++) { baseOffset += rest % keptSize[d] * keptStride[d]; rest /= keptSize[d]; }
            float acc = op == 2 ? float.NegativeInfinity : 0f;
            for (int r = 0; r < redCount; r++)
            {
                int offset = baseOffset;
                for (int d = 0, rest = r; d < red; d++) { offset += rest % redSize[d] * redStride[d]; rest /= redSize[d]; }
                float v = x[offset];
                if (op != 2) acc += v;
                else if (v > acc || float.IsNaN(v)) acc = v;
            }
            y[o] = op == 1 ? acc / redCount : acc;
        }
    }
}";
}
