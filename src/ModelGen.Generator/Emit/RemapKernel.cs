using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Data movement (Transpose, Slice, Gather, Pad, Concat, Split): y[i…] = x[base + Σ src_d(i_d)·stride_d],
/// src_d the index itself or a build-time table (−1: the padding value). Nested loops with literal
/// bounds; a run that is contiguous on both sides becomes one span copy.
/// </summary>
internal sealed class RemapKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Remap;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var remap = k.Node.Remap ?? throw new System.FormatException($"Remap '{k.Node.Name}' has no plan (shape, base, strides)");
        int[] shape = remap.Shape;
        int[] strides = remap.Strides;
        int rank = shape.Length;
        var maps = remap.Maps;
        int[] yStrides = remap.YStrides ?? ContiguousStrides(shape);
        int xBase = remap.Base, yBase = remap.YBase;
        string fill = remap.Fill is { } f ? KernelContext.F(f) : "0f";

        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: y{CodeWriter.Shape(k.Y.Shape)} from x{CodeWriter.Shape(k.Inputs[0].Shape)}: iterate {CodeWriter.Shape(shape)},");
        w.Line($"// read x at {xBase} + Σ index·[{string.Join(", ", strides)}]{(maps.Any(m => m != null) ? " (tabled axes: " + string.Join(", ", Enumerable.Range(0, rank).Where(d => maps[d] != null)) + "; −1 reads " + fill + ")" : "")}, write y at {yBase} + Σ index·[{string.Join(", ", yStrides)}].");
        // Named after what they hold, then the kernel: a kernel's name never starts with "Map" (it starts with an ONNX operator).
        for (int d = 0; d < rank; d++)
            if (maps[d] is { } map)
                w.Line($"static ReadOnlySpan<int> Map{d}Of{k.Name} => new int[] {{ {string.Join(", ", map)} }};");
        using var method = k.OpenMethod();
        if (rank == 0)
        {
            w.Line($"y[{yBase}] = x[{xBase}];");
            return;
        }
        string src = CodeWriter.N(xBase), dst = CodeWriter.N(yBase);
        using var loops = w.Nest();
        for (int d = 0; d < rank; d++)
        {
            bool last = d == rank - 1;
            bool contiguousRun = last && maps[d] == null && strides[d] == 1 && yStrides[d] == 1;
            if (contiguousRun)
            {
                w.Line($"x.Slice({src}, {shape[d]}).CopyTo(y.Slice({dst}, {shape[d]}));");
                break;
            }
            // A table is read at every index, so its loop stays a loop even of one trip.
            string i;
            if (maps[d] != null) { loops.Block($"for (int i{d} = 0; i{d} < {shape[d]}; i{d}++)"); i = $"i{d}"; }
            else loops.For($"i{d}", shape[d], out i);
            string index = i;
            if (maps[d] != null)
            {
                w.Line($"int m{d} = Map{d}Of{k.Name}[{i}];");
                if (maps[d]!.Any(v => v < 0))
                {
                    int block = shape.Skip(d + 1).Aggregate(1, (a, b) => a * b);
                    w.Line($"if (m{d} < 0) {{ y.Slice({Expr.Plus(dst, Expr.Times(i, yStrides[d]))}, {block}).Fill({fill}); continue; }}");
                }
                index = $"m{d}";
            }
            string s = Expr.Plus(src, Expr.Times(index, strides[d])), t = Expr.Plus(dst, Expr.Times(i, yStrides[d]));
            if (last)
                w.Line($"y[{t}] = x[{s}];");
            else
            {
                src = w.IntLocal($"s{d}", s);
                dst = w.IntLocal($"t{d}", t);
            }
        }
    }

    static int[] ContiguousStrides(int[] shape)
    {
        var s = new int[shape.Length];
        int stride = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = stride; stride *= shape[i]; }
        return s;
    }
}
