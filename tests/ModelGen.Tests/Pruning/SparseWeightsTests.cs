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
        // 4 entries × (4 value bytes) + 2 index bytes (row 0) + a count byte per row (both under 256 entries).
        Assert.Equal(4 * 4 + 2 + 2 * 1, sparse.Bytes(4));
        Assert.Equal(w, SparseWeights.Unstructured(w, 2, 41, indexBits: 8).ToDense());
        Assert.Equal(2, SparseWeights.Unstructured(w, 2, 41, indexBits: 8).Entries);
    }

    [Fact]
    public void RowsOf256EntriesOrMoreTakeTwoCountBytes()
    {
        var w = new float[2 * 300];
        for (int c = 0; c < 255; c++) w[c] = 1f; // row 0: 255 entries
        for (int c = 0; c < 256; c++) w[300 + c] = 1f; // row 1: 256
        Assert.True(SparseWeights.Unstructured(w[..300], 1, 300, 4).ByteCounts);
        var sparse = SparseWeights.Unstructured(w, 2, 300, 4);
        Assert.False(sparse.ByteCounts);
        Assert.Equal(2 * 2, sparse.CountBytes);
        Assert.Equal(511 * 4 + (128 + 128) + 2 * 2, sparse.Bytes(4));
    }

    [Fact]
    public void FiveBitIndicesAndThreeBitCodesStraddleBytesWithAByteOfSlack()
    {
        // Columns 0, 31 (a distance of 31) and 33 (2): 5-bit codes 1, 31, 2 → bits 00001 11111 00010, low bits first.
        var w = new float[40];
        w[0] = 1f; w[31] = 2f; w[33] = 3f;
        var sparse = SparseWeights.Unstructured(w, 1, 40, 5);
        Assert.Equal(new[] { 0, 31, 33 }, sparse.EntryColumns);
        Assert.Equal(new byte[] { 0b111_00001, 0b0_00010_11, 0 }, sparse.PackedIndices()); // 15 bits → 2 bytes, and the slack
        Assert.Equal(3, sparse.IndexBytes);
        // The values as 3-bit codes: 1, 2, 3 → 001 010 011 in 9 bits: 2 bytes and a byte of slack.
        Assert.Equal(new byte[] { 0b11_010_001, 0b0, 0 }, sparse.PackedValues(3));
        Assert.Equal(3 + 3 + 1, sparse.BytesWithCodes(3));
        Assert.Throws<InvalidOperationException>(() => sparse.PackedValues(1)); // 2 and 3 are not 1-bit codes
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
