using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A pruned convolution whose weights are emitted sparse: each output channel (a row of <see cref="Weights"/>) sums
/// only its kept taps. The graph keeps the float weights they stand for (<see cref="SparseWeights.ToDense"/>), so the
/// evaluator computes the layer as it always does; the kernel reads <see cref="Weights"/> alone.
/// </summary>
public sealed record SparseConvForm(SparseWeights Weights) : LayerForm;

/// <summary>
/// Which pruned convolutions are stored and computed sparse (issue 23, item 5), and in which format: the smallest of
/// unstructured with 4- or 8-bit relative indices and N:M with the smallest N the weights allow (M of 4 or 8).
/// <para>
/// The rule: sparse where it is smaller and faster. Smaller: <see cref="SparseWeights.Bytes"/> below the dense float32
/// bytes. Faster: the sparse kernel (SparseConvEmitter) does one load of input per multiply-add, where the dense
/// kernels' register tiles share each load between 4 to 6 output channels, so a kept weight costs it 1.5 to 1.8 times
/// what a dense weight costs the dense kernel. On the AMD EPYC (Zen 3, AVX2) it drew level with the dense implicit GEMM
/// on LeNet-5's conv2 shape at about 56% of the weights kept (1.14x faster at 50%, 0.91x at 60%), and with the dense GEMM of a pointwise convolution (the
/// CNN's pw2 shape) at about 75-80% (SparseConvBench; docs/implementation-notes.md): a layer goes sparse at
/// <see cref="MaxKeptShare"/> kept or less, <see cref="MaxKeptSharePointwise"/> for a kernel of one tap. N:M layers are
/// costed by their own kernel (offsets decoded once per row, input on 64-byte lines): a stored entry costs
/// <see cref="NOfMEntryCost"/> dense weights, so N:M goes sparse while its entries cost less than the dense weights
/// (2:4, 4:8 and 1:4 do; 3:4 and 5:8 do not). Depthwise convolutions stay dense (a filter of 9 taps
/// has little to skip, and their kernels are bound by memory, not arithmetic), and so do horizontal strides other
/// than 1 (the sparse kernel's vectors are contiguous output columns, which then read strided input).
/// </para>
/// </summary>
public static class SparseConvStorage
{
    /// <summary>Kept share (nonzero weights over all) at or below which the sparse kernel is faster than the dense one, for kernels of more than one tap.</summary>
    public const double MaxKeptShare = 0.56;

    /// <summary>As <see cref="MaxKeptShare"/>, for 1x1 kernels (the dense GEMM over a pointwise convolution's input reuses less).</summary>
    public const double MaxKeptSharePointwise = 0.75;

    /// <summary>
    /// What a stored N:M entry costs the N:M kernel, in weights of the dense kernel: measured 1.5 (LeNet-5's conv1 and
    /// conv2) to 1.8 (the CNN's pw3, 64→128 over 7x7) at 2:4 on the AMD EPYC (Zen 3, AVX2), SparseConvBench and
    /// docs/implementation-notes.md; an N:M layer is sparse while entries × this stays below the dense weights.
    /// </summary>
    public const double NOfMEntryCost = 1.65;

    /// <summary>Entries a row of unstructured storage may hold: its count is an int16.</summary>
    const int MaxRowEntries = short.MaxValue;

    /// <summary>The sparse weights of <paramref name="node"/> if it should be emitted sparse; null to keep it dense.</summary>
    public static SparseWeights? Choose(Graph graph, Node node, double? maxKeptShare = null)
    {
        if (node.OpType != "Conv" || node.Form is not Float32Form || !node.HasInput(1) || graph[node.Inputs[1]].Constant is not { Type: ElementType.Float32 } weight) return null;
        var x = graph[node.Inputs[0]].Shape;
        if (x is null || x.Length is not (3 or 4) || weight.Shape.Length != x.Length) return null;
        int group = (int)node.Int("group", 1);
        var geo = ConvOperator.Geometry(node, x, weight.Shape);
        bool depthwise = weight.Shape[1] == 1 && group > 1;
        if (depthwise || geo.StrideW != 1) return null;
        int rows = weight.Shape[0], columns = (int)(weight.Count / rows);
        var best = Candidates(weight.Floats, rows, columns).MinBy(s => s.Bytes(4));
        double limit = maxKeptShare ?? (geo.KernelH * geo.KernelW == 1 ? MaxKeptSharePointwise : MaxKeptShare);
        if (best is null || best.Entries == 0 || best.Bytes(4) >= weight.Count * 4L) return null;
        bool faster = best.Pattern == SparsePattern.NOfM && maxKeptShare is null ? best.Entries * NOfMEntryCost < weight.Count : best.Kept <= limit * weight.Count;
        if (!faster) return null;
        return best;
    }

    /// <summary>The formats the weights fit: unstructured (4- and 8-bit indices), and N:M for M = 4 and 8 with the smallest N the groups allow.</summary>
    static IEnumerable<SparseWeights> Candidates(float[] w, int rows, int columns)
    {
        foreach (int bits in new[] { 4, 8 })
        {
            var unstructured = SparseWeights.Unstructured(w, rows, columns, bits);
            bool countsFit = true;
            for (int r = 0; r < rows && countsFit; r++) countsFit = unstructured.RowStarts[r + 1] - unstructured.RowStarts[r] <= MaxRowEntries;
            if (countsFit) yield return unstructured;
        }
        foreach (int m in new[] { 4, 8 })
        {
            int n = Math.Max(1, MostInAGroup(w, rows, columns, m));
            if (n < m && SparseWeights.NOfM(w, rows, columns, n, m) is { } nOfM) yield return nOfM;
        }
    }

    /// <summary>The most nonzero weights any group of <paramref name="m"/> consecutive columns of a row holds.</summary>
    static int MostInAGroup(float[] w, int rows, int columns, int m)
    {
        int most = 0;
        for (int r = 0; r < rows; r++)
            for (int first = 0; first < columns; first += m)
            {
                int count = 0;
                for (int c = first; c < Math.Min(columns, first + m); c++) if (w[(long)r * columns + c] != 0f) count++;
                most = Math.Max(most, count);
            }
        return most;
    }

    /// <summary>
    /// The index stream the sparse kernels read: per row, each entry's index in <see cref="SparseWeights.IndexBits"/> bits
    /// (unstructured: its distance from the previous entry's column, the first's from −1; N:M: its position in its group),
    /// packed from the low bits of each byte up, every row starting on a byte (<see cref="SparseWeights.IndexBytes"/> bytes).
    /// </summary>
    public static byte[] IndexStream(SparseWeights w) => w.PackedIndices();

    /// <summary>The node's sparse weights, if a <see cref="SparseConvStoragePass"/> chose them.</summary>
    public static SparseWeights? Of(Node node) => (node.Form as SparseConvForm)?.Weights;
}

/// <summary>
/// The last stage when the plan prunes: pruned convolutions in float32 go sparse where <see cref="SparseConvStorage.Choose"/>
/// says it pays (<paramref name="maxKeptShare"/>: one limit for every layer instead, for the measurement that sets the defaults).
/// </summary>
public sealed class SparseConvStoragePass(double? maxKeptShare = null) : ICompressionPass
{
    public string Name => "sparse storage (convolutions)";
    public CompressionStageOrder Stage => CompressionStageOrder.SparseStorage;

    public void Apply(Graph graph, PassContext context)
    {
        foreach (var node in graph.Nodes)
            if (SparseConvStorage.Choose(graph, node, maxKeptShare) is { } sparse) node.Form = new SparseConvForm(sparse);
    }
}
