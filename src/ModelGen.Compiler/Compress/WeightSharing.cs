using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A layer's weights drawn from a codebook of 2^<see cref="Bits"/> float32 values (issue 24, item 1): weight i is
/// Codebook[Codes[i]]. The weight tensor is read as [rows, columns] as <see cref="SparseWeights"/> reads it (a
/// convolution's output channels by its flattened input channels × kernel positions). When the layer was pruned,
/// code 0 is reserved for exact zero (<see cref="ZeroCode"/>) and the other 2^Bits − 1 entries are the clusters of
/// the kept weights, so pruning's zeros stay zeros and sparse storage can pad with code 0.
/// <see cref="Codes"/> holds one code per byte; the emitters pack them <see cref="Bits"/> to a code as their kernels read them.
/// </summary>
public sealed record SharedWeights(int Bits, float[] Codebook, byte[] Codes, int Rows, int Columns, bool ZeroCode)
{
    /// <summary>The float weights the codes stand for (exact: what the graph and the evaluator compute with).</summary>
    public float[] Values()
    {
        var w = new float[Codes.Length];
        for (long i = 0; i < w.LongLength; i++) w[i] = Codebook[Codes[i]];
        return w;
    }

    /// <summary>Bytes embedded when stored dense: each row's codes packed <see cref="Bits"/> each, rows starting on a byte, and the codebook.</summary>
    public long DenseBytes => Rows * (((long)Columns * Bits + 7) / 8) + CodebookBytes;

    /// <summary>The codebook's bytes (float32 entries).</summary>
    public long CodebookBytes => 4L * Codebook.Length;

    /// <summary>The bytes of one row's codes packed <see cref="Bits"/> each.</summary>
    public int RowBytes => ModelGen.Artifact.CodebookCodes.RowBytes(Columns, Bits);

    /// <summary>
    /// The codes as the dense kernel reads them (DenseLayout.Codebook, ModelGen.Artifact.CodebookCodes): each row's packed
    /// <see cref="Bits"/> each, each row from a byte: [Rows, <see cref="RowBytes"/>].
    /// </summary>
    public byte[] PackedCodes()
    {
        var packed = new byte[(long)Rows * RowBytes];
        for (int c = 0; c < Columns; c++)
        {
            var (at, shift) = ModelGen.Artifact.CodebookCodes.Place(c, Columns, Bits);
            for (int r = 0; r < Rows; r++)
            {
                long start = (long)r * RowBytes + at;
                int code = Codes[(long)r * Columns + c] << shift;
                packed[start] |= (byte)code;
                if (code > 0xFF) packed[start + 1] |= (byte)(code >> 8);
            }
        }
        return packed;
    }
}

/// <summary>
/// Weight sharing by k-means in one dimension, as Deep Compression clusters a layer (Han, Mao and Dally 2016): the
/// centroids start spread evenly over [min, max] (linear initialisation, which they found keeps the rare large
/// weights that matter most), then Lloyd's iterations move each to the mean of its weights until nothing changes.
/// In one dimension the clusters are runs of the sorted weights split at the midpoints between neighbouring centroids,
/// so an iteration costs a binary search per centroid over prefix sums, and everything is exact scalar arithmetic in
/// a fixed order: the same codebook on every machine.
/// </summary>
public static class WeightSharing
{
    /// <summary>Codebook sizes allowed: 2^2 to 2^8 entries.</summary>
    public const int MinBits = 2, MaxBits = 8;

    /// <summary>Most Lloyd iterations (they usually settle within a few dozen).</summary>
    public const int MaxIterations = 100;

    /// <summary>The shared form of [rows, columns] weights in a codebook of 2^<paramref name="bits"/> entries.</summary>
    public static SharedWeights Cluster(float[] weights, int rows, int columns, int bits)
    {
        if (bits is < MinBits or > MaxBits) throw new ArgumentOutOfRangeException(nameof(bits), bits, $"between {MinBits} and {MaxBits}");
        bool zeroCode = Array.IndexOf(weights, 0f) >= 0;
        int first = zeroCode ? 1 : 0, clusters = (1 << bits) - first;
        var sorted = zeroCode ? weights.Where(w => w != 0f).ToArray() : (float[])weights.Clone();
        Array.Sort(sorted);
        var centroids = Centroids(sorted, clusters);
        var codebook = new float[1 << bits];
        for (int c = 0; c < centroids.Length; c++) codebook[first + c] = (float)centroids[c];
        codebook = Stored(codebook, bits);
        var codes = new byte[weights.Length];
        for (long i = 0; i < weights.LongLength; i++)
            codes[i] = zeroCode && weights[i] == 0f ? (byte)0 : (byte)(first + Nearest(centroids, weights[i]));
        return new SharedWeights(bits, codebook, codes, rows, columns, zeroCode);
    }

    /// <summary>
    /// The codebook as stored: a 4-bit codebook's entries rounded to bfloat16 (float32 whose low 16 bits are zero; to
    /// nearest, ties to even), the form the AVX2 kernel builds each weight from with two byte tables
    /// (ModelGen.Artifact.CodebookCodes). A centroid moves by at most 2^-8 of its value; 0 stays 0. Other widths are
    /// kept as they are.
    /// </summary>
    public static float[] Stored(float[] codebook, int bits)
    {
        if (bits != 4) return codebook;
        var stored = new float[codebook.Length];
        for (int i = 0; i < stored.Length; i++)
        {
            uint b = BitConverter.SingleToUInt32Bits(codebook[i]);
            stored[i] = BitConverter.UInt32BitsToSingle((b + 0x7FFFu + ((b >> 16) & 1)) & 0xFFFF0000u);
        }
        return stored;
    }

    /// <summary>Lloyd's k-means over sorted values: <paramref name="clusters"/> centroids in ascending order.</summary>
    static double[] Centroids(float[] sorted, int clusters)
    {
        var centroids = new double[clusters];
        if (sorted.Length == 0) return centroids;
        double min = sorted[0], max = sorted[^1];
        for (int c = 0; c < clusters; c++) centroids[c] = clusters == 1 ? (min + max) / 2 : min + (max - min) * c / (clusters - 1);
        var prefix = new double[sorted.Length + 1];
        for (int i = 0; i < sorted.Length; i++) prefix[i + 1] = prefix[i] + sorted[i];
        for (int iteration = 0; iteration < MaxIterations; iteration++)
        {
            bool moved = false;
            int start = 0;
            for (int c = 0; c < clusters; c++)
            {
                // Cluster c holds the values up to the midpoint with the next centroid (a value on it goes to the lower one).
                int end = c == clusters - 1 ? sorted.Length : UpperBound(sorted, start, (centroids[c] + centroids[c + 1]) / 2);
                if (end > start)
                {
                    double mean = (prefix[end] - prefix[start]) / (end - start);
                    if (mean != centroids[c]) { centroids[c] = mean; moved = true; }
                }
                start = end;
            }
            if (!moved) break;
        }
        // The codebook is float32: the assignment below uses the centroids as they will be stored.
        for (int c = 0; c < clusters; c++) centroids[c] = (float)centroids[c];
        return centroids;
    }

    /// <summary>The first index at or after <paramref name="start"/> whose value is above <paramref name="limit"/>.</summary>
    static int UpperBound(float[] sorted, int start, double limit)
    {
        int lo = start, hi = sorted.Length;
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            if (sorted[mid] <= limit) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>The centroid nearest <paramref name="w"/> (on a midpoint, the lower one), by binary search over the ascending centroids.</summary>
    static int Nearest(double[] centroids, float w)
    {
        int lo = 0, hi = centroids.Length - 1;
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            if (w <= (centroids[mid] + centroids[mid + 1]) / 2) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    /// <summary>
    /// The layers sharing clusters: those whose kernels have a codebook form (<see cref="Exclusion"/> is null), that is
    /// fully connected layers on one row whose weight is a float32 constant only they read, and pruned convolutions
    /// sparse storage will take.
    /// </summary>
    public static IEnumerable<Node> Layers(Graph graph)
    {
        var readers = Readers(graph);
        return graph.Nodes.Where(n => n.OpType is DenseOperator.Name or "Conv" && Exclusion(graph, n, readers) is null);
    }

    /// <summary>How many nodes read each value.</summary>
    public static Dictionary<string, int> Readers(Graph graph) =>
        graph.Nodes.SelectMany(n => n.Inputs).Where(i => i.Length > 0).GroupBy(i => i, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    /// <summary>Why a fully connected layer or convolution keeps float32 weights under weight sharing (null: it shares them).</summary>
    public static string? Exclusion(Graph graph, Node node, Dictionary<string, int> readers)
    {
        // A convolution's codebook kernel is the sparse one (its codes looked up per kept weight): only a pruned
        // convolution that sparse storage will take shares; dense convolutions have no codebook kernel yet.
        if (node.OpType == "Conv")
            return node.Form is Float32Form && readers[node.Inputs[1]] == 1 && SparseConvStorage.Choose(graph, node) is not null ? null
                : "convolution: only pruned convolutions stored sparse have a codebook kernel";
        if (!node.HasInput(1) || graph[node.Inputs[1]].Constant is not { Shape.Length: 2 } weight) return "weights not a constant matrix";
        if (node.Form is not Float32Form) return "already in another form";
        if (readers[node.Inputs[1]] != 1) return "weights read by other nodes too";
        bool oneRow = TensorData.Size(graph[node.Outputs[0]].Shape!) == weight.Shape[0] && node.Int("transA", 0) == 0;
        return oneRow ? null : "several rows (batch above 1): the GEMM has no codebook form";
    }

    /// <summary>
    /// Clusters each of <paramref name="layers"/>' weights into 2^<paramref name="bits"/> shared values: the graph's
    /// weight becomes the values the codes stand for (so the evaluator computes what the kernels will) and the node's
    /// form a <see cref="SharedWeightsForm"/>.
    /// </summary>
    public static void Apply(Graph graph, IEnumerable<Node> layers, int bits)
    {
        foreach (var node in layers.ToList())
        {
            var weight = graph[node.Inputs[1]].Constant!;
            int rows = weight.Shape[0], columns = (int)(weight.Count / rows);
            var shared = Cluster(weight.Floats, rows, columns, bits);
            graph[node.Inputs[1]].Constant = new TensorData(weight.Shape, shared.Values());
            node.Form = new SharedWeightsForm(shared);
        }
    }
}

/// <summary>A fully connected layer or convolution whose weights share a codebook (<see cref="WeightSharing"/>); the graph keeps the float values the codes stand for.</summary>
public sealed record SharedWeightsForm(SharedWeights Weights) : LayerForm;

/// <summary>Weight sharing (WeightSharing, --weight-sharing BITS): every fully connected layer's and convolution's weights clustered into a codebook of 2^bits values.</summary>
public sealed class WeightSharingPass(int bits) : ICompressionPass
{
    public string Name => FormattableString.Invariant($"shared ({bits}-bit codebooks)");
    public CompressionStageOrder Stage => CompressionStageOrder.Sharing;
    public void Apply(Graph graph, PassContext context)
    {
        context.Original ??= graph.Clone(); // the codebooks' fine-tuning learns from the unshared model when there are no labels
        WeightSharing.Apply(graph, WeightSharing.Layers(graph), bits);
    }
}
