using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>ReduceMean/Sum/Max and the global pools: for each kept index, a reduction over the reduced axes.</summary>
internal sealed class ReduceKernel : IKernel
{
    public string Kernel => "Reduce";

    public string InputName(int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        string op = k.Attr("op");
        int[] kept = k.Ints("kept"), keptStrides = k.Ints("keptstrides"), reduced = k.Ints("reduced"), reducedStrides = k.Ints("reducedstrides");
        long count = reduced.Aggregate(1L, (a, b) => a * b);
        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: y{CodeWriter.Shape(k.Y.Shape)} = {op.ToLowerInvariant()} of x{CodeWriter.Shape(k.Inputs[0].Shape)} over {count} values each (reduced sizes {CodeWriter.Shape(reduced)}).");
        k.OpenMethod();
        string offset = "0";
        for (int d = 0; d < kept.Length; d++)
        {
            w.Open($"for (int o{d} = 0; o{d} < {kept[d]}; o{d}++)");
            w.Line($"int k{d} = {offset} + o{d} * {keptStrides[d]};");
            offset = $"k{d}";
        }
        string target = kept.Length == 0 ? "0" : string.Join(" + ", Enumerable.Range(0, kept.Length).Select(d => $"o{d} * {kept.Skip(d + 1).Aggregate(1, (a, b) => a * b)}"));
        w.Line(op == "Max" ? "float acc = float.NegativeInfinity;" : "float acc = 0f;");
        string inner = offset;
        for (int d = 0; d < reduced.Length; d++)
        {
            w.Open($"for (int r{d} = 0; r{d} < {reduced[d]}; r{d}++)");
            w.Line($"int q{d} = {inner} + r{d} * {reducedStrides[d]};");
            inner = $"q{d}";
        }
        w.Line(op == "Max" ? $"float v = x[{inner}]; if (v > acc || float.IsNaN(v)) acc = v;" : $"acc += x[{inner}];");
        for (int d = 0; d < reduced.Length; d++) w.Close();
        w.Line(op == "Mean" ? $"y[{target}] = acc / {count};" : $"y[{target}] = acc;");
        for (int d = 0; d < kept.Length; d++) w.Close();
        w.Close();
    }
}

/// <summary>Softmax and LogSoftmax over one axis of length n with a stride (layout: outer, n, inner).</summary>
internal sealed class SoftmaxKernel : IKernel
{
    public string Kernel => "Softmax";

    public string InputName(int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        int[] layout = k.Ints("layout");
        int outer = layout[0], n = layout[1], inner = layout[2];
        bool log = k.Attr("log") == "1";
        const string M = "global::System.MathF";
        w.Line($"// {(log ? "LogSoftmax" : "Softmax")} over {n} values {(inner == 1 ? "in a row" : $"{inner} apart")}, {outer * inner} times: " +
            (log ? "y = x − max − ln Σ e^(x − max)." : "y = e^(x − max) / Σ e^(x − max)."));
        k.OpenMethod();
        w.Open($"for (int o = 0; o < {outer}; o++)");
        w.Open($"for (int i = 0; i < {inner}; i++)");
        w.Line($"int b = o * {n * inner} + i;");
        w.Line("float max = float.NegativeInfinity;");
        w.Line($"for (int a = 0; a < {n}; a++) max = {M}.Max(max, x[b + a * {inner}]);");
        w.Line("float sum = 0f;");
        if (log)
        {
            w.Line($"for (int a = 0; a < {n}; a++) sum += {M}.Exp(x[b + a * {inner}] - max);");
            w.Line($"float logSum = {M}.Log(sum);");
            w.Line($"for (int a = 0; a < {n}; a++) y[b + a * {inner}] = x[b + a * {inner}] - max - logSum;");
        }
        else
        {
            w.Open($"for (int a = 0; a < {n}; a++)");
            w.Line($"float e = {M}.Exp(x[b + a * {inner}] - max);");
            w.Line($"y[b + a * {inner}] = e;");
            w.Line("sum += e;");
            w.Close();
            w.Line("float scale = 1f / sum;");
            w.Line($"for (int a = 0; a < {n}; a++) y[b + a * {inner}] *= scale;");
        }
        w.Close();
        w.Close();
        w.Close();
    }
}
