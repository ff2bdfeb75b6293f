namespace ModelGen.Compiler.Compress;

/// <summary>
/// Structured pruning (issue 23, item 2): whole output channels of convolutions and neurons of fully connected layers
/// removed, the graph rewritten into a smaller dense one (<see cref="ChannelDependencies"/> says what goes together).
/// </summary>
public static class ChannelPruning
{
    /// <summary>
    /// Each channel's importance in a group: the L2 norm of its filter (or neuron's weights), summed over the group's
    /// tied producers (Li et al. 2017 rank filters by their norm; a channel small in every producer adds little).
    /// </summary>
    public static double[] WeightNorms(Graph graph, ChannelGroup group)
    {
        var norms = new double[group.Channels];
        foreach (var producer in group.Producers)
        {
            var w = graph[producer.Inputs[1]].Constant!;
            long per = w.Count / group.Channels;
            for (int c = 0; c < group.Channels; c++)
            {
                double sum = 0;
                for (long i = c * per; i < (c + 1) * per; i++) sum += (double)w.Floats[i] * w.Floats[i];
                norms[c] += Math.Sqrt(sum);
            }
        }
        return norms;
    }

    /// <summary>
    /// Which channels stay: the ⌊share·channels⌋ least important go, at least one stays; ties go by position (the
    /// later channel stays), so the choice is the same on every machine.
    /// </summary>
    public static bool[] Keep(double[] importance, double share)
    {
        if (!(share >= 0 && share < 1)) throw new ArgumentOutOfRangeException(nameof(share), "the share removed is in [0, 1)");
        int remove = Math.Min((int)Math.Floor(share * importance.Length), importance.Length - 1);
        var keep = Enumerable.Repeat(true, importance.Length).ToArray();
        foreach (int c in Enumerable.Range(0, importance.Length).OrderBy(c => importance[c]).ThenBy(c => c).Take(remove)) keep[c] = false;
        return keep;
    }

    /// <summary>
    /// Removes <paramref name="share"/> of the channels of every prunable group, the least important by
    /// <see cref="WeightNorms"/>; returns the dependency analysis (its groups and why the others stay whole).
    /// </summary>
    public static ChannelDependencies Prune(Graph graph, double share)
    {
        var dependencies = ChannelDependencies.Analyze(graph);
        var keep = dependencies.Groups.Where(g => g.Prunable && g.Channels > 1).ToDictionary(g => g.Id, g => Keep(WeightNorms(graph, g), share));
        dependencies.Remove(keep);
        return dependencies;
    }

    /// <summary>"conv1 6 → 3, conv2 16 → 8": each pruned group's channels before and after, by its first producer.</summary>
    public static string Describe(Graph pruned, ChannelDependencies dependencies) => string.Join(", ",
        dependencies.Groups.Where(g => g.Prunable && g.Channels > 1)
            .Select(g => $"{g.Producers[0].Name} {g.Channels} → {pruned[g.Producers[0].Inputs[1]].Constant!.Shape[0]}"));
}

/// <summary>
/// Structured pruning as a stage: <paramref name="share"/> of each prunable group's channels removed at once (fine-tuning,
/// when asked, trains the smaller model after it). Its name in the report gives the multiply-adds before and after.
/// </summary>
public sealed class ChannelPruningPass(double share) : ICompressionPass
{
    string? _done;

    public string Name => _done ?? FormattableString.Invariant($"channels pruned {share:P0} (one-shot)");
    public CompressionStageOrder Stage => CompressionStageOrder.Structural;

    public void Apply(Graph graph, PassContext context)
    {
        // Fine-tuning without labels learns the original model's outputs, not the pruned one's.
        context.Original ??= graph.Clone();
        long before = MultiplyAdds.Total(graph);
        var dependencies = ChannelPruning.Prune(graph, share);
        long after = MultiplyAdds.Total(graph);
        int groups = dependencies.Groups.Count(g => g.Prunable && g.Channels > 1);
        _done = FormattableString.Invariant(
            $"channels pruned {share:P0} (one-shot) in {groups} of {dependencies.Groups.Count} groups ({ChannelPruning.Describe(graph, dependencies)}); multiply-adds {before:N0} → {after:N0} ({(double)after / Math.Max(1, before):P1})");
    }
}
