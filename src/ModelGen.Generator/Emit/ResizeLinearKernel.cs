using System.Globalization;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Resize, linear: on every resized axis each output index reads two neighbours with weights made at
/// build time (tables below the comment); the value is the weighted sum over all their corners.
/// </summary>
internal sealed class ResizeLinearKernel : IKernel
{
    public KernelKind Kernel => KernelKind.ResizeLinear;

    public string InputName(ArtifactNode node, int i) => "x";

    /// <summary>A table's weights as float literals, as the artifact holds them.</summary>
    static string Floats(float[] weights) => string.Join(", ", weights.Select(v => ArtifactText.Float(v) + "f"));

    public void Emit(KernelContext k)
    {
        var w = k.W;
        int[] x = k.Inputs[0].Shape, y = k.Y.Shape;
        int rank = x.Length;
        var tables = k.Node.ResizeLinear ?? throw new System.FormatException($"ResizeLinear '{k.Node.Name}' has no tables");
        var resized = Enumerable.Range(0, rank).Where(d => tables.Axis(d) is { IsCubic: false }).ToArray();
        var cubic = Enumerable.Range(0, rank).Where(d => tables.Axis(d) is { IsCubic: true }).ToArray();
        var strides = new long[rank];
        long s = 1;
        for (int d = rank - 1; d >= 0; d--) { strides[d] = s; s *= x[d]; }
        w.Line(cubic.Length > 0
            ? $"// Resize (cubic): y{CodeWriter.Shape(y)} from x{CodeWriter.Shape(x)}; axes {string.Join(", ", cubic)} weigh four neighbours each (tables below)."
            : $"// Resize (linear): y{CodeWriter.Shape(y)} from x{CodeWriter.Shape(x)}; axes {string.Join(", ", resized)} interpolate between two neighbours ({1 << resized.Length} corners per value).");
        // Named after what they hold, then the kernel: a kernel's name never starts with "Tap", "Low"… (it starts with an ONNX operator).
        foreach (int d in cubic)
            for (int tap = 0; tap < 4; tap++)
            {
                w.Line($"static ReadOnlySpan<int> Tap{tap}Of{d}Of{k.Name} => new int[] {{ {ArtifactText.Ints(tables.Axes[d]!.Taps![tap])} }};");
                w.Line($"static ReadOnlySpan<float> Weight{tap}Of{d}Of{k.Name} => new float[] {{ {Floats(tables.Axes[d]!.TapWeights![tap])} }};");
            }
        foreach (int d in resized)
        {
            w.Line($"static ReadOnlySpan<int> Low{d}Of{k.Name} => new int[] {{ {ArtifactText.Ints(tables.Axes[d]!.Low!)} }};");
            w.Line($"static ReadOnlySpan<int> High{d}Of{k.Name} => new int[] {{ {ArtifactText.Ints(tables.Axes[d]!.High!)} }};");
            w.Line($"static ReadOnlySpan<float> Weight{d}Of{k.Name} => new float[] {{ {Floats(tables.Axes[d]!.Weight!)} }};");
        }
        using var method = k.OpenMethod();
        w.Line("int o = 0;");
        using var loops = w.Nest();
        var index = new string[rank];
        for (int d = 0; d < rank; d++)
        {
            // An axis read through its tables stays a loop; any other of one trip is its index 0.
            if (resized.Contains(d) || cubic.Contains(d))
            {
                loops.Block($"for (int i{d} = 0; i{d} < {y[d]}; i{d}++)");
                index[d] = $"i{d}";
            }
            else loops.For($"i{d}", y[d], out index[d]);
            if (resized.Contains(d))
                w.Line($"int lo{d} = {Expr.Times($"Low{d}Of{k.Name}[i{d}]", strides[d])}, hi{d} = {Expr.Times($"High{d}Of{k.Name}[i{d}]", strides[d])}; float f{d} = Weight{d}Of{k.Name}[i{d}];");
            if (cubic.Contains(d))
                for (int tap = 0; tap < 4; tap++)
                    w.Line($"int t{tap}x{d} = {Expr.Times($"Tap{tap}Of{d}Of{k.Name}[i{d}]", strides[d])}; float c{tap}x{d} = Weight{tap}Of{d}Of{k.Name}[i{d}];");
        }
        // The weighted sum over the corners: each resized axis contributes (1 − f)·low + f·high.
        string Sum(int at, string offset)
        {
            // Axes not resized read their own index.
            while (at < rank && !resized.Contains(at) && !cubic.Contains(at)) { offset = Expr.Plus(offset, Expr.Times(index[at], strides[at])); at++; }
            if (at == rank) return $"x[{offset}]";
            if (cubic.Contains(at))
                return "(" + string.Join(" + ", Enumerable.Range(0, 4).Select(tap => $"c{tap}x{at} * {Sum(at + 1, Expr.Plus(offset, $"t{tap}x{at}"))}")) + ")";
            return $"((1f - f{at}) * {Sum(at + 1, Expr.Plus(offset, $"lo{at}"))} + f{at} * {Sum(at + 1, Expr.Plus(offset, $"hi{at}"))})";
        }
        w.Line($"y[o++] = {Sum(0, "0")};");
    }
}
