namespace ModelGen.Compiler.Compress;

/// <summary>
/// A prunable weight read as [Rows, Columns], as <see cref="SparseWeights"/> reads it: rows are the outputs (neurons
/// or output channels), columns the flattened inputs in ONNX order (input channels × kernel positions).
/// </summary>
public sealed record PrunableLayer(Node Node, string Weight, int Rows, int Columns, bool Depthwise)
{
    /// <summary>
    /// N:M applies to a layer with at least M columns that is not depthwise: a depthwise filter has a handful of taps
    /// (3×3: 9) and is a small share of the weights, so it stays dense.
    /// </summary>
    public bool TakesNOfM(int m) => !Depthwise && Columns >= m;

    public static IReadOnlyList<PrunableLayer> Of(Graph graph) =>
        [.. MagnitudePruning.PrunableWeights(graph).Select(p =>
        {
            var shape = graph[p.Weight].Constant!.Shape;
            int columns = shape.Skip(1).Aggregate(1, (a, b) => a * b);
            bool depthwise = p.Node.OpType == "Conv" && p.Node.Int("group", 1) > 1 && shape.Length > 1 && shape[1] == 1;
            return new PrunableLayer(p.Node, p.Weight, shape[0], columns, depthwise);
        })];
}

/// <summary>
/// What a pruning pass removes: the kind, the overall share, and with unstructured-sensitive each layer's share (by
/// weight name). <see cref="Masks"/> gives the keep-masks at a step of the gradual schedule (the last step: the target).
/// </summary>
public sealed record PruningTarget(PruningKind Kind, double Sparsity, IReadOnlyDictionary<string, double>? LayerSparsities = null)
{
    /// <summary>Steps of the gradual schedule: up to <paramref name="most"/> for unstructured; M − N for N:M (one group member fewer a step).</summary>
    public int Steps(int most) => Math.Max(1, Math.Min(most, Kind.Pattern == PruningPattern.NOfM ? Kind.M - Kind.N : most));

    /// <summary>
    /// The keep-masks of the layers' current <paramref name="values"/> after step <paramref name="step"/> of
    /// <paramref name="steps"/>. Unstructured: Zhu and Gupta's cubic schedule towards the overall share (one global
    /// threshold) or towards each layer's share. N:M: each group keeps M − ⌈(M − N)·step/steps⌉, so with M − N steps one
    /// weight fewer a step (2:4: 3:4, then 2:4). A pruned weight is zero, the smallest magnitude, so later steps keep it
    /// pruned. Layers N:M does not apply to are left out (dense).
    /// </summary>
    public Dictionary<string, bool[]> Masks(IReadOnlyList<(PrunableLayer Layer, float[] Values)> values, int step = 1, int steps = 1)
    {
        if (Kind.Pattern == PruningPattern.NOfM)
        {
            int n = Kind.M - (int)Math.Ceiling((Kind.M - Kind.N) * (double)step / steps);
            return values.Where(v => v.Layer.TakesNOfM(Kind.M)).ToDictionary(v => v.Layer.Weight,
                v => PruningMasks.NOfM(v.Values, v.Layer.Rows, v.Layer.Columns, n, Kind.M), StringComparer.Ordinal);
        }
        if (LayerSparsities is null)
            return MagnitudePruning.GlobalMasks([.. values.Select(v => (v.Layer.Weight, v.Values))], MagnitudePruning.CubicSchedule(0, Sparsity, step, steps));
        return values.ToDictionary(v => v.Layer.Weight, v => MagnitudePruning.GlobalMasks([(v.Layer.Weight, v.Values)],
            MagnitudePruning.CubicSchedule(0, LayerSparsities.GetValueOrDefault(v.Layer.Weight), step, steps))[v.Layer.Weight], StringComparer.Ordinal);
    }

}

/// <summary>Keep-masks of one layer.</summary>
public static class PruningMasks
{
    /// <summary>
    /// N:M keep-mask of <paramref name="weights"/> ([rows, columns] row-major): in each row, each group of
    /// <paramref name="m"/> consecutive columns keeps its <paramref name="n"/> largest magnitudes (of equal magnitudes,
    /// the first columns), a last group shorter than M keeps min(N, its length). So every group holds at most N
    /// nonzero values, which <see cref="SparseWeights.NOfM"/> stores. N = M keeps everything.
    /// </summary>
    public static bool[] NOfM(float[] weights, int rows, int columns, int n, int m)
    {
        if (m < 1 || n < 1 || n > m) throw new ArgumentOutOfRangeException(nameof(n), "N:M needs 1 ≤ N ≤ M");
        if (weights.LongLength != (long)rows * columns) throw new ArgumentException($"weights of {weights.LongLength} values are not [{rows}, {columns}]", nameof(weights));
        var keep = new bool[weights.LongLength];
        var order = new int[m];
        for (int r = 0; r < rows; r++)
            for (int first = 0; first < columns; first += m)
            {
                int length = Math.Min(m, columns - first);
                long row = (long)r * columns + first;
                for (int i = 0; i < length; i++) order[i] = i;
                // Largest magnitude first; a stable order of positions breaks ties the same way on every machine.
                Array.Sort(order, 0, length, Comparer<int>.Create((a, b) =>
                {
                    int byMagnitude = Math.Abs(weights[row + b]).CompareTo(Math.Abs(weights[row + a]));
                    return byMagnitude != 0 ? byMagnitude : a.CompareTo(b);
                }));
                for (int i = 0; i < Math.Min(n, length); i++) keep[row + order[i]] = true;
            }
        return keep;
    }

    /// <summary>The layers' weights with the masks applied (a layer without a mask unchanged), as new constants of the graph.</summary>
    public static void Apply(Graph graph, IReadOnlyDictionary<string, bool[]> masks)
    {
        foreach (var (name, keep) in masks)
        {
            var old = graph[name].Constant!;
            var values = (float[])old.Floats.Clone();
            for (int i = 0; i < keep.Length; i++) if (!keep[i]) values[i] = 0f;
            graph[name].Constant = new TensorData(old.Shape, values);
        }
    }
}
