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

    public void Emit(KernelContext k)
    {
        var w = k.W;
        int[] x = k.Inputs[0].Shape, y = k.Y.Shape;
        int rank = x.Length;
        var resized = Enumerable.Range(0, rank).Where(d => k.Has($"i0.{d}")).ToArray();
        var cubic = Enumerable.Range(0, rank).Where(d => k.Has($"c0.{d}")).ToArray();
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
                w.Line($"static ReadOnlySpan<int> Tap{tap}Of{d}Of{k.Name} => new int[] {{ {k.Attr($"c{tap}.{d}")} }};");
                w.Line($"static ReadOnlySpan<float> Weight{tap}Of{d}Of{k.Name} => new float[] {{ {string.Join(", ", k.Attr($"cw{tap}.{d}").Split(',').Select(v => v + "f"))} }};");
            }
        foreach (int d in resized)
        {
            w.Line($"static ReadOnlySpan<int> Low{d}Of{k.Name} => new int[] {{ {k.Attr($"i0.{d}")} }};");
            w.Line($"static ReadOnlySpan<int> High{d}Of{k.Name} => new int[] {{ {k.Attr($"i1.{d}")} }};");
            w.Line($"static ReadOnlySpan<float> Weight{d}Of{k.Name} => new float[] {{ {string.Join(", ", k.Attr($"w1.{d}").Split(',').Select(v => v + "f"))} }};");
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
