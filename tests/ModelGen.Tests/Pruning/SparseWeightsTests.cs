using ModelGen.Compiler.Compress;
using Xunit;

namespace ModelGen.Tests.Pruning;

public class SparseWeightsTests
{
    [Fact]
    public void UnstructuredKeepsTheNonzeroValuesAndBridgesWideGapsWithPadding()
    {
        // Row 0: values at columns 0 and 40 (a gap of 40: three 4-bit paddings at 15, 30 and then 40); row 1: empty.
        var w = new float[2 * 41];
        w[0] = 1.5f; w[40] = -2f;
        var sparse = SparseWeights.Unstructured(w, 2, 41, indexBits: 4);
        Assert.Equal(new[] { 0, 15, 30, 40 }, sparse.EntryColumns);
        Assert.Equal(new[] { 1.5f, 0f, 0f, -2f }, sparse.Values);
        Assert.Equal(new[] { 0, 4, 4 }, sparse.RowStarts);
        Assert.Equal(2, sparse.Kept);
        Assert.Equal(w, sparse.ToDense());
        // 4 entries × (4 value bytes) + 2 index bytes (row 0) + 2 count bytes per row.
        Assert.Equal(4 * 4 + 2 + 2 * 2, sparse.Bytes(4));
        Assert.Equal(w, SparseWeights.Unstructured(w, 2, 41, indexBits: 8).ToDense());
        Assert.Equal(2, SparseWeights.Unstructured(w, 2, 41, indexBits: 8).Entries);
    }

    [Fact]
    public void NOfMPadsEachGroupToNAndRefusesAGroupWithMore()
    {
        // Columns 0..9 in groups 0-3, 4-7, 8-9 (a short last group): 2:4.
        float[] w = [0, 3, 0, 0, /**/ 1, 0, 0, 2, /**/ 0, 5];
        var sparse = SparseWeights.NOfM(w, 1, 10, 2, 4)!;
        Assert.Equal(new[] { 0, 1, 4, 7, 8, 9 }, sparse.EntryColumns);
        Assert.Equal(new[] { 0f, 3f, 1f, 2f, 0f, 5f }, sparse.Values);
        Assert.Equal(w, sparse.ToDense());
        Assert.Equal(6 * 4 + 2, sparse.Bytes(4)); // 6 entries, 2-bit indices: 12 bits → 2 bytes
        Assert.Null(SparseWeights.NOfM([1, 1, 1, 0], 1, 4, 2, 4));
        var oneOfEight = SparseWeights.NOfM([0, 0, 0, 0, 0, 0, 0, 7, 1], 1, 9, 1, 8)!;
        Assert.Equal(new[] { 7, 8 }, oneOfEight.EntryColumns);
        Assert.Equal(4, oneOfEight.IndexBits);
    }
}
