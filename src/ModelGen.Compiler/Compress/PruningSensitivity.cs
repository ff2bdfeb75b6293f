using ModelGen.Compiler.Data;

namespace ModelGen.Compiler.Compress;

/// <summary>A layer's sensitivity: the model's output error (<see cref="PruningSensitivity.Loss"/>) with it alone pruned by magnitude to each of <see cref="PruningSensitivity.Levels"/>.</summary>
public sealed record LayerSensitivity(string Weight, long Count, double[] Losses);

/// <summary>
/// Per-layer sparsities from measured sensitivity (PruningKind unstructured-sensitive; issue 23, item 1): each layer
/// is pruned alone by magnitude to a few sparsities and the model's output error on the calibration data measured;
/// then, greedily, the layer whose next level costs the least error per weight removed goes up a level, until the
/// weights removed reach the target (the last step stops exactly at it). Layers that take pruning well (wide fully
/// connected layers) give more than the global share, sensitive ones (the first convolution) less. Deterministic: ties go
/// to the earlier layer.
/// </summary>
public static class PruningSensitivity
{
    /// <summary>The sparsities each layer is measured at (0: no error).</summary>
    public static readonly double[] Levels = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98];

    /// <summary>Most calibration samples the measure runs (each layer and level runs the model from that layer on).</summary>
    public const int MaxSamples = 128;

    /// <summary>The target with each layer's share chosen by <see cref="Measure"/> and <see cref="Choose"/>.</summary>
    public static PruningTarget Target(Graph graph, PruningKind kind, double sparsity, DataSet calibration, IProgress<CompileProgress>? progress) =>
        new(kind, sparsity, Choose(Measure(graph, calibration, progress), sparsity));

    /// <summary>Relative squared output error Σ‖y − y₀‖² / Σ‖y₀‖² of the first output over the samples.</summary>
    public static double Loss(IEnumerable<(float[] Original, float[] Pruned)> outputs)
    {
        double error = 0, signal = 0;
        foreach (var (a, b) in outputs)
            for (int i = 0; i < a.Length; i++) { error += ((double)b[i] - a[i]) * ((double)b[i] - a[i]); signal += (double)a[i] * a[i]; }
        return error / Math.Max(1e-30, signal);
    }

    public static IReadOnlyList<LayerSensitivity> Measure(Graph graph, DataSet calibration, IProgress<CompileProgress>? progress = null)
    {
        var layers = PrunableLayer.Of(graph);
        var feeds = PruningRefit.Feeds(calibration, MaxSamples);
        // The original model's values once; a layer pruned alone changes only what is computed from it on.
        var original = feeds.Select(f => PruningRefit.Evaluate(graph, f, 0, graph.Nodes.Count)).ToList();
        string output = graph.Outputs[0];
        var result = new List<LayerSensitivity>();
        foreach (var layer in layers)
        {
            var weights = graph[layer.Weight].Constant!;
            int from = graph.Nodes.IndexOf(layer.Node);
            var losses = new double[Levels.Length];
            try
            {
                for (int l = 0; l < Levels.Length; l++)
                {
                    graph[layer.Weight].Constant = weights;
                    PruningMasks.Apply(graph, MagnitudePruning.GlobalMasks([(layer.Weight, weights.Floats)], Levels[l]));
                    losses[l] = Loss(original.Select(o => (o[output].Floats, PruningRefit.Evaluate(graph, o, from, graph.Nodes.Count)[output].Floats)));
                }
            }
            finally { graph[layer.Weight].Constant = weights; }
            result.Add(new LayerSensitivity(layer.Weight, weights.Count, losses));
            progress?.Report(new CompileProgress("pruning sensitivity", result.Count, layers.Count, layer.Node.Name));
        }
        return result;
    }

    /// <summary>Each layer's sparsity (by weight name) so that the weights removed are <paramref name="sparsity"/> of all, chosen greedily (see the class).</summary>
    public static Dictionary<string, double> Choose(IReadOnlyList<LayerSensitivity> layers, double sparsity)
    {
        long total = layers.Sum(l => l.Count);
        double goal = sparsity * total, removed = 0;
        var level = new int[layers.Count]; // index into Levels + 1; 0: unpruned
        double Sparsity(int layer, int at) => at == 0 ? 0 : Levels[at - 1];
        double LossAt(int layer, int at) => at == 0 ? 0 : layers[layer].Losses[at - 1];
        var shares = layers.ToDictionary(l => l.Weight, _ => 0.0, StringComparer.Ordinal);
        while (removed < goal)
        {
            int best = -1;
            double bestCost = double.PositiveInfinity;
            for (int i = 0; i < layers.Count; i++)
            {
                if (level[i] == Levels.Length) continue;
                double cost = Math.Max(0, LossAt(i, level[i] + 1) - LossAt(i, level[i])) / ((Sparsity(i, level[i] + 1) - Sparsity(i, level[i])) * layers[i].Count);
                if (cost < bestCost) (best, bestCost) = (i, cost);
            }
            if (best < 0) break; // every layer at the highest level: as close as the levels go
            double before = Sparsity(best, level[best]), after = Sparsity(best, ++level[best]);
            double step = (after - before) * layers[best].Count;
            // The last step only as far as the goal.
            shares[layers[best].Weight] = removed + step > goal ? before + (goal - removed) / layers[best].Count : after;
            removed = Math.Min(goal, removed + step);
        }
        return shares;
    }
}
