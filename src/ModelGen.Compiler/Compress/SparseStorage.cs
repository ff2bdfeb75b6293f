using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// Sparse storage of pruned fully connected layers (issue 23, item 5): the last compression stage looks at each
/// one-row Dense node's weights as every other stage left them (pruning's zeros, fine-tuning's kept masks, int8
/// weight codes) and stores them as <see cref="SparseWeights"/> when that is smaller and faster than dense. The
/// graph keeps its float weights (with the zeros), so the reference evaluator is unchanged: only the storage and
/// the kernel change, and the kernel multiplies the same numbers in another order.
/// <para>
/// The format: N:M when every group of the layer qualifies (1:4, 2:4, 4:8: the smallest that fits), else
/// unstructured with 4- or 8-bit relative indices (the smaller). The rule that it pays
/// (<see cref="Pays"/>): fewer bytes, and few enough stored entries that reading them one by one beats the dense
/// kernel's vector loop (measured: docs/implementation-notes.md, "Sparse fully connected layers").
/// </para>
/// </summary>
public static class SparseStorage
{
    /// <summary>
    /// The share of the dense weights an unstructured layer may store (entries, padding included) and still run
    /// faster than the dense kernel, for float32 and for int8 weights. The dense kernels read 8 to 16 weights per
    /// vector instruction; the sparse one reads an index and a value and gathers one x per entry.
    /// </summary>
    public const double UnstructuredFloat32Share = 0.30, UnstructuredInt8Share = 0.30;

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
            if (node.Form is not Float32Form && int8 is null) continue; // int4, int8 arithmetic: left as they are
            float[] values = int8 is null ? weight.Floats : [.. int8.Q.Select(q => (float)q)];
            if (Choose(values, rows, columns, int8 is null ? 4 : 1) is { } sparse) node.Form = new SparseDenseForm(sparse, int8?.Scales);
        }
    }

    /// <summary>The sparse form of [rows, columns] weights that pays with values of <paramref name="valueBytes"/> bytes, or null (stay dense).</summary>
    public static SparseWeights? Choose(float[] weights, int rows, int columns, int valueBytes)
    {
        var nOfM = NOfMPatterns.Select(p => SparseWeights.NOfM(weights, rows, columns, p.N, p.M)).FirstOrDefault(s => s is not null);
        var candidate = nOfM ?? new[] { 4, 8 }.Select(bits => SparseWeights.Unstructured(weights, rows, columns, bits)).MinBy(s => s.Bytes(valueBytes))!;
        return Pays(candidate, valueBytes) ? candidate : null;
    }

    /// <summary>
    /// Sparse storage pays when its bytes are fewer than dense and, unstructured, its entries are at most
    /// <see cref="UnstructuredFloat32Share"/> of the dense weights (N:M kernels read vectors of kept values and keep
    /// at most half). Row entry counts are 16-bit, so an unstructured row holds at most 65,535 entries.
    /// </summary>
    public static bool Pays(SparseWeights sparse, int valueBytes)
    {
        long dense = (long)sparse.Rows * sparse.Columns;
        if (sparse.Kept == 0 || sparse.Bytes(valueBytes) >= dense * valueBytes) return false;
        if (sparse.Pattern == SparsePattern.NOfM) return true;
        double share = valueBytes == 4 ? UnstructuredFloat32Share : UnstructuredInt8Share;
        bool countsFit = Enumerable.Range(0, sparse.Rows).All(r => sparse.RowStarts[r + 1] - sparse.RowStarts[r] <= ushort.MaxValue);
        return countsFit && sparse.Entries <= share * dense;
    }
}

/// <summary>The last stage when the plan prunes: sparse storage of the fully connected layers where it pays (<see cref="SparseStorage"/>).</summary>
public sealed class SparseStoragePass : ICompressionPass
{
    public string Name => "sparse storage (fully connected)";
    public CompressionStageOrder Stage => CompressionStageOrder.SparseStorage;
    public void Apply(Graph graph, PassContext context) => SparseStorage.Apply(graph);
}
