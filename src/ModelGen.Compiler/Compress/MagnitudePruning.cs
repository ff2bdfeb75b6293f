using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// Unstructured magnitude pruning (issue 23, item 1): the weights of the fully connected layers and convolutions
/// with the smallest magnitudes become zero. One global threshold over every pruned layer (so layers share the
/// pruning by how small their weights are), and the gradual schedule of Zhu and Gupta (2017) for pruning while
/// fine-tuning.
/// </summary>
public static class MagnitudePruning
{
    /// <summary>The weights that unstructured pruning considers: Dense and Conv weights (biases and other constants stay).</summary>
    public static IReadOnlyList<(Node Node, string Weight)> PrunableWeights(Graph graph) =>
        [.. graph.Nodes.Where(n => (n.OpType is DenseOperator.Name or "Conv") && n.HasInput(1) && graph[n.Inputs[1]].Constant is { Type: ElementType.Float32 })
            .Select(n => (n, n.Inputs[1])).DistinctBy(p => p.Item2)];

    /// <summary>
    /// Keep-masks that zero the <paramref name="sparsity"/> share (0 to 1) of all the given weights with the smallest
    /// magnitudes. Ties at the threshold are broken by position (tensor order, then index), so exactly
    /// ⌊sparsity · count⌋ weights go, the same ones on every machine.
    /// </summary>
    public static Dictionary<string, bool[]> GlobalMasks(IReadOnlyList<(string Name, float[] Values)> weights, double sparsity)
    {
        if (!(sparsity >= 0 && sparsity < 1)) throw new ArgumentOutOfRangeException(nameof(sparsity), "sparsity is in [0, 1)");
        long total = weights.Sum(w => (long)w.Values.Length);
        long remove = (long)Math.Floor(sparsity * total);
        var order = new (float Magnitude, int Tensor, int Index)[total];
        long at = 0;
        for (int t = 0; t < weights.Count; t++)
            for (int i = 0; i < weights[t].Values.Length; i++) order[at++] = (Math.Abs(weights[t].Values[i]), t, i);
        Array.Sort(order, (a, b) => a.Magnitude != b.Magnitude ? a.Magnitude.CompareTo(b.Magnitude) : a.Tensor != b.Tensor ? a.Tensor.CompareTo(b.Tensor) : a.Index.CompareTo(b.Index));
        var masks = weights.ToDictionary(w => w.Name, w => Enumerable.Repeat(true, w.Values.Length).ToArray(), StringComparer.Ordinal);
        for (long r = 0; r < remove; r++) masks[weights[order[r].Tensor].Name][order[r].Index] = false;
        return masks;
    }

    /// <summary>
    /// Zhu and Gupta's gradual schedule: the sparsity after step <paramref name="step"/> of <paramref name="steps"/>,
    /// s = final + (initial − final)·(1 − step/steps)³: it prunes fast at first, while the network has redundant
    /// weights, and slowly at the end.
    /// </summary>
    public static double CubicSchedule(double initial, double final, int step, int steps)
    {
        if (steps < 1 || step < 0) throw new ArgumentOutOfRangeException(nameof(steps));
        double left = 1 - Math.Min(step, steps) / (double)steps;
        return final + (initial - final) * left * left * left;
    }
}

/// <summary>
/// One-shot pruning (no fine-tuning) to the plan's kind and share. With calibration data, layer-wise reconstruction
/// (<see cref="PruningRefit"/>) refits each layer's kept weights; without, the weights are masked as they are.
/// </summary>
public sealed class PruningPass(PruningKind kind, double sparsity, bool refit) : ICompressionPass
{
    public string Name => FormattableString.Invariant($"pruned {Describe(kind, sparsity)} (one-shot{(refit ? ", kept weights refit on the calibration data" : "")})");
    public CompressionStageOrder Stage => CompressionStageOrder.Structural;

    /// <summary>"92%", "92%, each layer's share by its sensitivity", "2:4".</summary>
    public static string Describe(PruningKind kind, double sparsity) => kind.Pattern == PruningPattern.NOfM ? kind.Name
        : FormattableString.Invariant($"{sparsity * 100:0.#}%{(kind.BySensitivity ? ", each layer's share by its sensitivity" : "")}");

    public void Apply(Graph graph, PassContext context)
    {
        var target = Target(graph, kind, sparsity, context);
        if (refit && context.Calibration(graph) is { } data) PruningRefit.PruneAndRefit(graph, target, data, context.Progress);
        else PruningMasks.Apply(graph, target.Masks([.. PrunableLayer.Of(graph).Select(l => (l, graph[l.Weight].Constant!.Floats))]));
    }

    /// <summary>The pruning target of a plan, each layer's share measured on the calibration data when the kind asks for it.</summary>
    public static PruningTarget Target(Graph graph, PruningKind kind, double sparsity, PassContext context) => kind.BySensitivity
        ? PruningSensitivity.Target(graph, kind, sparsity, context.Calibration(graph)!, context.Progress)
        : new PruningTarget(kind, sparsity);
}
