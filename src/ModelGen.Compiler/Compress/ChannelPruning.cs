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

    /// <summary>Most training samples the Taylor estimate reads (a few batches rank channels; more only costs time).</summary>
    public const int TaylorSamples = 1024;

    /// <summary>
    /// First-order Taylor importance (Molchanov et al. 2019) from labelled training data: for each channel, |Σ w·∂L/∂w|
    /// over its filter (or neuron's weights) and bias in every tied producer, the loss' change if they were zeroed,
    /// summed over batches of the first <see cref="TaylorSamples"/> samples. Sums in double in a fixed order.
    /// </summary>
    public static Dictionary<int, double[]> TaylorImportance(Graph graph, IReadOnlyList<ChannelGroup> groups, Training.TrainingSet data)
    {
        var model = Training.TrainableModel.Build(graph);
        var parameters = model.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        string output = graph.Outputs[0];
        bool probabilities = graph.Nodes.LastOrDefault(n => n.Outputs.Contains(output))?.OpType == "Softmax";
        var importance = groups.ToDictionary(g => g.Id, g => new double[g.Channels]);
        foreach (var chunk in Enumerable.Range(0, Math.Min(data.Count, TaylorSamples)).Chunk(64))
        {
            var feed = new Dictionary<string, Training.Tensor<float>>(StringComparer.Ordinal);
            for (int i = 0; i < graph.Inputs.Count; i++) feed[graph.Inputs[i]] = data.Batch(i, chunk);
            var pass = model.Forward(feed);
            var loss = Training.Losses.CrossEntropy(pass[output], data.BatchLabels(chunk), probabilities);
            var gradients = pass.Backward(new Dictionary<string, Training.Tensor<float>> { [output] = loss.Gradient });
            foreach (var group in groups)
            {
                var sums = new double[group.Channels];
                foreach (var producer in group.Producers)
                    foreach (var input in producer.Inputs.Skip(1).Where(i => i.Length > 0 && gradients.ContainsKey(i)))
                    {
                        var w = parameters[input].Values;
                        var g = gradients[input].Data;
                        long per = w.LongLength / group.Channels;
                        for (long i = 0; i < w.LongLength; i++) sums[i / per] += (double)w[i] * g[i];
                    }
                for (int c = 0; c < group.Channels; c++) importance[group.Id][c] += Math.Abs(sums[c]);
            }
        }
        return importance;
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
    /// <see cref="TaylorImportance"/> when <paramref name="labelled"/> data is given, else by <see cref="WeightNorms"/>; returns the dependency analysis (its groups and why the others stay whole).
    /// </summary>
    public static ChannelDependencies Prune(Graph graph, double share, Training.TrainingSet? labelled = null)
    {
        var dependencies = ChannelDependencies.Analyze(graph);
        var groups = dependencies.Groups.Where(g => g.Prunable && g.Channels > 1).ToList();
        var taylor = labelled?.Labels is null ? null : TaylorImportance(graph, groups, labelled);
        var keep = groups.ToDictionary(g => g.Id, g => Keep(taylor?[g.Id] ?? WeightNorms(graph, g), share));
        dependencies.Remove(keep);
        return dependencies;
    }

    /// <summary>"conv1 6 → 3, conv2 16 → 8": the pruned groups' channels before and after by their first producer (the first six, then how many more).</summary>
    public static string Describe(Graph pruned, ChannelDependencies dependencies)
    {
        var groups = dependencies.Groups.Where(g => g.Prunable && g.Channels > 1).ToList();
        string shown = string.Join(", ", groups.Take(6).Select(g => $"{g.Producers[0].Name} {g.Channels} → {pruned[g.Producers[0].Inputs[1]].Constant!.Shape[0]}"));
        return groups.Count > 6 ? $"{shown} and {groups.Count - 6} more" : shown;
    }
}

/// <summary>
/// Structured pruning as a stage: <paramref name="share"/> of each prunable group's channels removed at once (fine-tuning,
/// when asked, trains the smaller model after it). Its name in the report gives the multiply-adds before and after.
/// </summary>
public sealed class ChannelPruningPass(double share) : ICompressionPass
{
    string? _done;

    public string Name => _done ?? FormattableString.Invariant($"channels pruned {share * 100:0.#}% (one-shot)");

    string _importance = "weight norms";
    public CompressionStageOrder Stage => CompressionStageOrder.Structural;

    public void Apply(Graph graph, PassContext context)
    {
        // Fine-tuning without labels learns the original model's outputs, not the pruned one's.
        context.Original ??= graph.Clone();
        long before = MultiplyAdds.Total(graph);
        // With fine-tuning on labelled data, the data ranks the channels too (Taylor); else their weights' norms.
        var labelled = context.Plan.FineTune is { LabelsPath: not null } tune
            ? Training.TrainingSet.Load(tune.DataPath, tune.LabelsPath, [.. graph.Inputs.Select(i => new Data.DataInput(i, graph[i].Shape!))], CompressionReport.Classes(graph), tune.Uint8Scale)
            : null;
        if (labelled is not null) _importance = "first-order Taylor on the training data";
        var dependencies = ChannelPruning.Prune(graph, share, labelled);
        long after = MultiplyAdds.Total(graph);
        int groups = dependencies.Groups.Count(g => g.Prunable && g.Channels > 1);
        _done = FormattableString.Invariant(
            $"channels pruned {share * 100:0.#}% (one-shot, by {_importance}) in {groups} of {dependencies.Groups.Count} groups ({ChannelPruning.Describe(graph, dependencies)}); multiply-adds {before:N0} → {after:N0} ({100.0 * after / Math.Max(1, before):0.#}%)");
    }
}
