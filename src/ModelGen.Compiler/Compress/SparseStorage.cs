using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// Sparse storage of pruned fully connected layers (issue 23, item 5): the last compression stage looks at each
/// one-row Dense node's weights as every other stage left them (pruning's zeros, fine-tuning's kept masks, int8
/// weight codes) and stores them as <see cref="SparseWeights"/> when that is smaller and faster than dense. The
/// graph keeps its float weights (with the zeros), so the reference evaluator is unchanged: only the storage and
/// the kernel change, and the kernel multiplies the same numbers in another order.
/// <para>
/// The format: N:M where every group of the layer qualifies (1:4, 2:4, 4:8), or unstructured with 4- or 8-bit
/// relative indices (the smallest); the one that pays (<see cref="Pays"/>: fewer bytes, and an estimated time below
/// dense's from the measured cost of an entry in its kernel) and is fastest by that estimate.
/// </para>
/// </summary>
public static class SparseStorage
{
    /// <summary>
    /// What a stored entry costs the sparse kernel, in units of what one weight costs the dense kernel (float32 or
    /// int8 alike), measured at batch 1 on a 300×784 layer (docs/implementation-notes.md, "Sparse fully connected
    /// layers"): unstructured, one entry at a time (break-even near 15% of the weights stored); N:M with M = 2N, 8
    /// kept values per AVX2 step (2:4 at 50% ran 1.35 times the dense time); other N:M (1:4), the scalar form.
    /// </summary>
    public const double UnstructuredEntryCost = 6.0, VectorNOfMEntryCost = 2.7, ScalarNOfMEntryCost = 12.0;

    /// <summary>The relative index widths unstructured storage tries (the fewest bytes wins: 5 and 6 bits pad less than 4 and cost less than 8).</summary>
    public static readonly int[] UnstructuredIndexBits = [4, 5, 6, 8];

    /// <summary>N:M patterns tried, the fewest bytes first (1:4 keeps a quarter, 2:4 and 4:8 half).</summary>
    static readonly (int N, int M)[] NOfMPatterns = [(1, 4), (2, 4), (4, 8)];

    /// <summary>Gives every one-row Dense layer whose sparse form pays a <see cref="SparseDenseForm"/>.</summary>
    public static void Apply(Graph graph)
    {
        var readers = graph.Nodes.SelectMany(n => n.Inputs).Where(i => i.Length > 0).GroupBy(i => i, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            if (node.OpType != DenseOperator.Name || !node.HasInput(1) || graph[node.Inputs[1]].Constant is not { Shape.Length: 2 } weight) continue;
            // Batch 1 only (the kernel is a matrix-vector product), and weights no other node reads.
            int rows = weight.Shape[0], columns = weight.Shape[1];
            if (graph[node.Outputs[0]].Shape is not { } shape || TensorData.Size(shape) != rows || node.Int("transA", 0) != 0 || readers[node.Inputs[1]] != 1) continue;
            var int8 = WeightQuantization.Of(node);
            if (node.Form is SharedWeightsForm { Weights: var shared })
            {
                // Shared weights: their codes stored sparse (code 0 is the pruned zeros) when that is smaller than the codes dense.
                if (shared.ZeroCode && Choose(CodeValues(shared), rows, columns, s => new SparseDenseForm(s, null, shared).Bytes, shared.DenseBytes) is { } coded)
                    node.Form = new SparseDenseForm(coded, null, shared);
                continue;
            }
            if (node.Form is not Float32Form && int8 is null) continue; // int4, int8 arithmetic: left as they are
            float[] values = int8 is null ? weight.Floats : [.. int8.Q.Select(q => (float)q)];
            if (Choose(values, rows, columns, int8 is null ? 4 : 1) is { } sparse) node.Form = new SparseDenseForm(sparse, int8);
        }
    }

    /// <summary>
    /// A shared layer's codes as the values sparse storage keeps (whole numbers, exact in float): with
    /// <see cref="SharedWeights.ZeroCode"/>, nonzero exactly where the weight is, so the kept entries are the kept weights.
    /// </summary>
    public static float[] CodeValues(SharedWeights shared) => [.. shared.Codes.Select(c => (float)c)];

    /// <summary>
    /// The sparse form of [rows, columns] weights with values of <paramref name="valueBytes"/> bytes that pays, the
    /// fastest by <see cref="Cost"/> (N:M tried first), or null: stay dense. The candidates: each N:M pattern every
    /// group fits, and unstructured with 4-, 5-, 6- or 8-bit relative indices, the fewest bytes.
    /// </summary>
    public static SparseWeights? Choose(float[] weights, int rows, int columns, int valueBytes) =>
        Choose(weights, rows, columns, s => s.Bytes(valueBytes), (long)rows * columns * valueBytes);

    /// <summary>
    /// As <see cref="Choose(float[], int, int, int)"/> with the bytes of a candidate given by <paramref name="bytes"/> and
    /// dense storage's by <paramref name="denseBytes"/> (codebook codes: both count the codes in bits and the codebook).
    /// </summary>
    public static SparseWeights? Choose(float[] weights, int rows, int columns, Func<SparseWeights, long> bytes, long denseBytes)
    {
        var candidates = NOfMPatterns.Select(p => SparseWeights.NOfM(weights, rows, columns, p.N, p.M)).OfType<SparseWeights>().ToList();
        candidates.Add(UnstructuredIndexBits.Select(bits => SparseWeights.Unstructured(weights, rows, columns, bits)).MinBy(bytes)!);
        return candidates.Where(s => Pays(s, bytes(s), denseBytes)).MinBy(Cost);
    }

    /// <summary>The kernel's estimated time, in dense weights: stored entries times what one costs.</summary>
    public static double Cost(SparseWeights sparse) => sparse.Entries * (sparse.Pattern == SparsePattern.Unstructured ? UnstructuredEntryCost
        : sparse.M == 2 * sparse.N ? VectorNOfMEntryCost : ScalarNOfMEntryCost);

    /// <summary>
    /// Sparse storage pays when it keeps something, takes fewer bytes than dense and its estimated time
    /// (<see cref="Cost"/>) is below dense's. Row entry counts are 16-bit, so an unstructured row holds at most 65,535 entries.
    /// </summary>
    public static bool Pays(SparseWeights sparse, int valueBytes) => Pays(sparse, sparse.Bytes(valueBytes), (long)sparse.Rows * sparse.Columns * valueBytes);

    /// <summary>As <see cref="Pays(SparseWeights, int)"/> for storage of <paramref name="bytes"/> against dense's <paramref name="denseBytes"/>.</summary>
    public static bool Pays(SparseWeights sparse, long bytes, long denseBytes)
    {
        long dense = (long)sparse.Rows * sparse.Columns;
        if (sparse.Kept == 0 || bytes >= denseBytes || Cost(sparse) >= dense) return false;
        return sparse.Pattern == SparsePattern.NOfM || Enumerable.Range(0, sparse.Rows).All(r => sparse.RowStarts[r + 1] - sparse.RowStarts[r] <= ushort.MaxValue);
    }
}

/// <summary>The last stage when the plan prunes: sparse storage of the fully connected layers where it pays (<see cref="SparseStorage"/>).</summary>
public sealed class SparseStoragePass : ICompressionPass
{
    public string Name => "sparse storage (fully connected)";
    public CompressionStageOrder Stage => CompressionStageOrder.SparseStorage;
    public void Apply(Graph graph, PassContext context) => SparseStorage.Apply(graph);
}
