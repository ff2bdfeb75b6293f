using System.Globalization;

namespace ModelGen.Compiler.Compress;

/// <summary>What WeightSharingTies asks for: groups of layers named by the user, or ties chosen by similarity (<see cref="Similarity"/> the threshold).</summary>
public sealed record LayerTies(IReadOnlyList<string[]> Named, double? Similarity)
{
    public static readonly LayerTies None = new([], null);

    /// <summary>Any tie asked for.</summary>
    public bool Any => Named.Count > 0 || Similarity is not null;
}

/// <summary>A group tied by similarity, and the least similarity of two of its layers.</summary>
public sealed record TiedBySimilarity(string[] Layers, double Similarity);

/// <summary>
/// Sharing across layers (issue 24, item 2): layers whose weights have the same shape are tied to one weight tensor,
/// one codebook and one set of codes. The tied tensor starts as the element-wise mean of the layers' weights,
/// clustered as <see cref="WeightSharing"/> clusters one layer; every tied layer then reads that one graph constant,
/// so the codebooks' fine-tuning trains it on the sum of the tied layers' gradients (the engine adds the gradients of
/// every reader of a parameter), the weight bytes count it once, and the lowering reads one constant.
/// The layers are named by the user ("fc1,fc2": repeated blocks, say) or chosen by similarity ("auto:0.9",
/// <see cref="Choose"/>): layers trained apart are rarely close, so "auto" ties only what costs little and says so.
/// </summary>
public static class WeightTying
{
    /// <summary>The similarity threshold of a bare "auto": each tied layer moves by at most 5% of its norm (see <see cref="Similarity"/>).</summary>
    public const double DefaultSimilarity = 0.9;

    /// <summary>
    /// "conv2,conv3;fc1,fc2": groups separated by ';', node names in a group by ','; "auto" or "auto:0.9": ties chosen by
    /// similarity at that threshold (above 0, at most 1); null or empty: none. MG0007 on a group of one, a name twice or a bad threshold.
    /// </summary>
    public static LayerTies Parse(string? text, string modelPath)
    {
        if (string.IsNullOrWhiteSpace(text)) return LayerTies.None;
        string t = text.Trim();
        if (t.StartsWith("auto", StringComparison.OrdinalIgnoreCase) && (t.Length == 4 || t[4] == ':'))
        {
            if (t.Length == 4) return new([], DefaultSimilarity);
            return double.TryParse(t[5..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double threshold) && threshold > 0 && threshold <= 1
                ? new([], threshold)
                : throw Bad(modelPath, $"WeightSharingTies (--weight-sharing-ties) '{t}': the similarity threshold after 'auto:' is a number above 0 and at most 1 "
                    + "(1 − ‖A − B‖ / max(‖A‖, ‖B‖) of two layers' weights; auto:0.9 ties layers within 10% of each other, auto alone means 0.9)");
        }
        var groups = t.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(g => g.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in groups)
        {
            if (group.Length < 2)
                throw Bad(modelPath, $"WeightSharingTies (--weight-sharing-ties) '{text}': the group '{string.Join(",", group)}' names one layer; a group ties two or more, e.g. \"fc1,fc2;conv2,conv3\", or write \"auto\" to tie layers by similarity");
            foreach (var name in group)
                if (!seen.Add(name)) throw Bad(modelPath, $"WeightSharingTies (--weight-sharing-ties) '{text}': the layer '{name}' is named twice; a layer belongs to one group");
        }
        return new(groups, null);
    }

    /// <summary>
    /// How alike two weights of one shape are: 1 − ‖A − B‖ / max(‖A‖, ‖B‖), Frobenius norms (1: equal; 0.9: the
    /// difference is a tenth of the larger). Not the cosine: tying replaces both by their mean, which moves each by
    /// ‖A − B‖ / 2 whatever their directions, so two layers alike in direction but twice apart in scale are not alike
    /// here. Sums in double, in element order: the same value on every machine.
    /// </summary>
    public static double Similarity(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double aa = 0, bb = 0, dd = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
            dd += d * d;
        }
        double larger = Math.Sqrt(Math.Max(aa, bb));
        return larger == 0 ? 1 : 1 - Math.Sqrt(dd) / larger;
    }

    /// <summary>
    /// The groups to tie at <paramref name="threshold"/>: among the layers that can be tied (<see cref="WeightSharing.Layers"/>)
    /// with weights of one shape, every pair at or above the threshold, most similar first (equal ones: graph order),
    /// joins its two groups when every pair across them is at or above it too (so every two layers of a group are).
    /// <paramref name="closest"/>: the most similar pair of one shape, whatever the threshold (null: no two of one shape).
    /// </summary>
    public static IReadOnlyList<TiedBySimilarity> Choose(Graph graph, double threshold, out (string A, string B, double Similarity)? closest)
    {
        var layers = WeightSharing.Layers(graph).ToList();
        var weights = layers.Select(n => graph[n.Inputs[1]].Constant!).ToList();
        var pairs = new List<(int A, int B, double Similarity)>();
        for (int a = 0; a < layers.Count; a++)
            for (int b = a + 1; b < layers.Count; b++)
                if (weights[a].Shape.SequenceEqual(weights[b].Shape))
                    pairs.Add((a, b, Similarity(weights[a].Floats, weights[b].Floats)));
        var ordered = pairs.OrderByDescending(p => p.Similarity).ThenBy(p => p.A).ThenBy(p => p.B).ToList();
        closest = ordered.Count == 0 ? null : (layers[ordered[0].A].Name, layers[ordered[0].B].Name, ordered[0].Similarity);
        var similarity = pairs.ToDictionary(p => (p.A, p.B), p => p.Similarity);
        var group = Enumerable.Range(0, layers.Count).Select(i => new List<int> { i }).ToArray();
        foreach (var (a, b, s) in ordered)
        {
            if (s < threshold) break;
            if (group[a] == group[b] || group[a].Any(i => group[b].Any(j => similarity[(Math.Min(i, j), Math.Max(i, j))] < threshold))) continue;
            var joined = group[a].Concat(group[b]).Order().ToList();
            foreach (int i in joined) group[i] = joined;
        }
        return [.. group.Distinct().Where(g => g.Count > 1).OrderBy(g => g[0]).Select(g => new TiedBySimilarity([.. g.Select(i => layers[i].Name)],
            g.SelectMany(i => g.Where(j => j > i).Select(j => similarity[(i, j)])).Min()))];
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

/// <summary>
/// Sharing across layers (WeightSharingTies, --weight-sharing-ties): each named group of layers, or each group chosen by
/// similarity, tied to one weight with one codebook; before <see cref="WeightSharingPass"/>, which then leaves them alone.
/// </summary>
public sealed class WeightTyingPass(LayerTies ties, int bits) : ICompressionPass
{
    IReadOnlyList<string[]> _groups = ties.Named;
    string _chosen = "";

    public WeightTyingPass(IReadOnlyList<string[]> groups, int bits) : this(new LayerTies(groups, null), bits) { }

    /// <summary>Named: "tied (fc1 = fc2; 4-bit codebook)". By similarity (read after Apply): the groups and their similarity, or why none.</summary>
    public string Name => ties.Similarity is double threshold
        ? FormattableString.Invariant($"tied by similarity ≥ {threshold:0.###} ({_chosen}; {bits}-bit codebook)")
        : FormattableString.Invariant($"tied ({string.Join("; ", _groups.Select(g => string.Join(" = ", g)))}; {bits}-bit codebook)");

    public CompressionStageOrder Stage => CompressionStageOrder.Sharing;

    public void Apply(Graph graph, PassContext context)
    {
        context.Original ??= graph.Clone(); // the teacher of the codebooks' fine-tuning without labels: the untied model
        if (ties.Similarity is double threshold)
        {
            var chosen = WeightTying.Choose(graph, threshold, out var closest);
            _groups = [.. chosen.Select(g => g.Layers)];
            _chosen = chosen.Count > 0
                ? string.Join("; ", chosen.Select(g => FormattableString.Invariant($"{string.Join(" = ", g.Layers)}, similarity {g.Similarity:0.###}")))
                : closest is var (a, b, s)
                    ? FormattableString.Invariant($"no layers tied: the most similar of one shape, {a} and {b}, {s:0.###}")
                    : "no layers tied: no two layers that can be tied have weights of one shape";
        }
        WeightTying.Apply(graph, _groups, bits);
    }
}
