namespace ModelGen.Compiler.Compress;

/// <summary>
/// Sharing across layers (issue 24, item 2): layers the user names whose weights have the same shape are tied to one
/// weight tensor, one codebook and one set of codes. The tied tensor starts as the element-wise mean of the layers'
/// weights, clustered as <see cref="WeightSharing"/> clusters one layer; every tied layer then reads that one graph
/// constant, so the codebooks' fine-tuning trains it on the sum of the tied layers' gradients (the engine adds the
/// gradients of every reader of a parameter), the weight bytes count it once, and the lowering reads one constant.
/// The layers are named rather than chosen by similarity: layers trained apart are rarely close enough for a
/// similarity measure to pick ties that cost nothing, so tying is the user's decision (repeated blocks, say).
/// </summary>
public static class WeightTying
{
    /// <summary>"conv2,conv3;fc1,fc2": groups separated by ';', node names in a group by ','; null or empty: none. MG0007 on a group of one or a name twice.</summary>
    public static IReadOnlyList<string[]> Parse(string? text, string modelPath)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var groups = text.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(g => g.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in groups)
        {
            if (group.Length < 2)
                throw Bad(modelPath, $"WeightSharingTies (--weight-sharing-ties) '{text}': the group '{string.Join(",", group)}' names one layer; a group ties two or more, e.g. \"fc1,fc2;conv2,conv3\"");
            foreach (var name in group)
                if (!seen.Add(name)) throw Bad(modelPath, $"WeightSharingTies (--weight-sharing-ties) '{text}': the layer '{name}' is named twice; a layer belongs to one group");
        }
        return groups;
    }

    static ModelGenException Bad(string modelPath, string message) => new(ErrorCodes.BadOption, modelPath, message);

    /// <summary>Ties each group's layers to one weight clustered into 2^<paramref name="bits"/> shared values (see the class); MG0007 when a named layer cannot be tied.</summary>
    public static void Apply(Graph graph, IReadOnlyList<string[]> groups, int bits)
    {
        var shareable = WeightSharing.Layers(graph).ToDictionary(n => n.Name, StringComparer.Ordinal);
        foreach (var group in groups)
        {
            var layers = group.Select(name => shareable.TryGetValue(name, out var node) ? node : throw Bad(graph.ModelPath,
                $"WeightSharingTies (--weight-sharing-ties): '{name}' is not a fully connected layer or convolution with float32 weights of its own; the layers that can be tied: {string.Join(", ", shareable.Keys)}")).ToList();
            var weights = layers.Select(n => graph[n.Inputs[1]].Constant!).ToList();
            if (weights.Any(w => !w.Shape.SequenceEqual(weights[0].Shape)))
                throw Bad(graph.ModelPath, $"WeightSharingTies (--weight-sharing-ties): tied layers need weights of one shape; {string.Join(", ", layers.Zip(weights, (n, w) => $"{n.Name} [{string.Join("x", w.Shape)}]"))}");
            // The mean, the layers added in the order named: one fixed order.
            var mean = new float[weights[0].Count];
            foreach (var w in weights)
                for (int i = 0; i < mean.Length; i++) mean[i] += w.Floats[i];
            for (int i = 0; i < mean.Length; i++) mean[i] /= weights.Count;
            int rows = weights[0].Shape[0];
            var shared = WeightSharing.Cluster(mean, rows, mean.Length / rows, bits);
            string tied = layers[0].Inputs[1];
            graph[tied].Constant = new TensorData(weights[0].Shape, shared.Values());
            var form = new SharedWeightsForm(shared);
            foreach (var node in layers)
            {
                if (node.Inputs[1] != tied) graph.Values.Remove(node.Inputs[1]); // read by this layer only (WeightSharing.Layers)
                node.Inputs[1] = tied;
                node.Form = form;
            }
        }
    }
}

/// <summary>Sharing across layers (WeightSharingTies, --weight-sharing-ties): each named group of layers tied to one weight with one codebook; before <see cref="WeightSharingPass"/>, which then leaves them alone.</summary>
public sealed class WeightTyingPass(IReadOnlyList<string[]> groups, int bits) : ICompressionPass
{
    public string Name => FormattableString.Invariant($"tied ({string.Join("; ", groups.Select(g => string.Join(" = ", g)))}; {bits}-bit codebook)");
    public CompressionStageOrder Stage => CompressionStageOrder.Sharing;
    public void Apply(Graph graph, PassContext context)
    {
        context.Original ??= graph.Clone(); // the teacher of the codebooks' fine-tuning without labels: the untied model
        WeightTying.Apply(graph, groups, bits);
    }
}
