namespace ModelGen.Compiler.Operators;

/// <summary>
/// A data-movement plan: y[i0, …, ik] = x[Base + Σd src_d(i_d)·Strides[d]], where src_d is i_d itself
/// or Maps[d][i_d] (−1: the element is <see cref="Fill"/>). Transpose, Slice, Gather, Pad, Concat and
/// Split are all such plans; one evaluator and one kernel serve them all. Optional Y-side strides place
/// the result inside a larger output (Concat).
/// </summary>
public sealed record RemapPlan(int[] Shape, long Base, long[] Strides, int[]?[] Maps, float Fill = 0f, long YBase = 0, long[]? YStrides = null) : OperatorPlan
{
    public static long[] StridesOf(int[] shape)
    {
        var s = new long[shape.Length];
        long stride = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = stride; stride *= shape[i]; }
        return s;
    }

    public long Count => TensorData.Size(Shape);

    /// <summary>For each element of the iteration, the source offset in x (−1: fill) and the target offset in y.</summary>
    public IEnumerable<(long Source, long Target)> Offsets()
    {
        long count = Count;
        var yStrides = YStrides ?? StridesOf(Shape);
        var index = new int[Shape.Length];
        for (long flat = 0; flat < count; flat++)
        {
            long rem = flat, src = Base, dst = YBase;
            bool fill = false;
            for (int d = Shape.Length - 1; d >= 0; d--)
            {
                index[d] = (int)(rem % Shape[d]);
                rem /= Shape[d];
            }
            for (int d = 0; d < Shape.Length; d++)
            {
                int s = Maps[d] is { } map ? map[index[d]] : index[d];
                if (s < 0) fill = true;
                src += (long)s * Strides[d];
                dst += index[d] * yStrides[d];
            }
            yield return (fill ? -1 : src, dst);
        }
    }

    /// <summary>Applies the plan to constant data of either element type.</summary>
    public TensorData Apply(TensorData x, int[] outShape)
    {
        if (x.Type == ElementType.Float32)
        {
            var y = new float[TensorData.Size(outShape)];
            foreach (var (s, t) in Offsets()) y[t] = s < 0 ? Fill : x.Floats[s];
            return new TensorData(outShape, y);
        }
        var yi = new long[TensorData.Size(outShape)];
        foreach (var (s, t) in Offsets()) yi[t] = s < 0 ? (long)Fill : x.Ints[s];
        return new TensorData(outShape, yi);
    }

    /// <summary>Writes the plan as artifact attributes of a Remap kernel.</summary>
    public void WriteTo(Artifact.ArtifactNode node)
    {
        bool fills = Maps.Any(m => m is not null && m.Any(v => v < 0));
        static int[] Ints(long[] v) => Array.ConvertAll(v, e => checked((int)e));
        node.SetRemap(new Artifact.RemapAttributes(Shape, checked((int)Base), Ints(Strides), Maps, fills ? Fill : null, checked((int)YBase), YStrides is null ? null : Ints(YStrides)));
    }
}
