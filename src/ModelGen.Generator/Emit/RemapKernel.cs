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
        int[] shape = k.Ints("shape");
        int[] strides = k.Ints("strides");
        int rank = shape.Length;
        var maps = Enumerable.Range(0, rank).Select(d => k.Has("map" + d) ? k.Ints("map" + d) : null).ToArray();
        bool yStrided = k.Has("ystrides");
        int[] yStrides = yStrided ? k.Ints("ystrides") : ContiguousStrides(shape);
        int xBase = k.Int("base"), yBase = yStrided ? k.Int("ybase") : 0;
        string fill = k.Has("fill") ? KernelContext.F(k.Float("fill")) : "0f";

        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: y{CodeWriter.Shape(k.Y.Shape)} from x{CodeWriter.Shape(k.Inputs[0].Shape)}: iterate {CodeWriter.Shape(shape)},");
        w.Line($"// read x at {xBase} + Σ index·[{string.Join(", ", strides)}]{(maps.Any(m => m != null) ? " (tabled axes: " + string.Join(", ", Enumerable.Range(0, rank).Where(d => maps[d] != null)) + "; −1 reads " + fill + ")" : "")}, write y at {yBase} + Σ index·[{string.Join(", ", yStrides)}].");
        for (int d = 0; d < rank; d++)
            if (maps[d] is { } map)
                w.Line($"static global::System.ReadOnlySpan<int> {k.Name}Map{d} => new int[] {{ {string.Join(", ", map)} }};");
        k.OpenMethod();
        if (rank == 0)
        {
            w.Line($"y[{yBase}] = x[{xBase}];");
            w.Close();
            return;
        }
        string src = xBase.ToString(System.Globalization.CultureInfo.InvariantCulture), dst = yBase.ToString(System.Globalization.CultureInfo.InvariantCulture);
        int opened = 0;
        for (int d = 0; d < rank; d++)
        {
            bool last = d == rank - 1;
            bool contiguousRun = last && maps[d] == null && strides[d] == 1 && yStrides[d] == 1;
            if (contiguousRun)
            {
                w.Line($"x.Slice({src}, {shape[d]}).CopyTo(y.Slice({dst}, {shape[d]}));");
                break;
            }
            w.Open($"for (int i{d} = 0; i{d} < {shape[d]}; i{d}++)");
            opened++;
            string index = $"i{d}";
            if (maps[d] != null)
            {
                w.Line($"int m{d} = {k.Name}Map{d}[i{d}];");
                if (maps[d]!.Any(v => v < 0))
                {
                    int block = shape.Skip(d + 1).Aggregate(1, (a, b) => a * b);
                    w.Line($"if (m{d} < 0) {{ y.Slice({dst} + i{d} * {yStrides[d]}, {block}).Fill({fill}); continue; }}");
                }
                index = $"m{d}";
            }
            string s = $"{src} + {index} * {strides[d]}", t = $"{dst} + i{d} * {yStrides[d]}";
            if (last)
                w.Line($"y[{t}] = x[{s}];");
            else
            {
                w.Line($"int s{d} = {s}, t{d} = {t};");
                src = $"s{d}";
                dst = $"t{d}";
            }
        }
        for (int i = 0; i < opened; i++) w.Close();
        w.Close();
    }

    static int[] ContiguousStrides(int[] shape)
    {
        var s = new int[shape.Length];
        int stride = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = stride; stride *= shape[i]; }
        return s;
    }
}
