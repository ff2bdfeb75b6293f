using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Sharing;

/// <summary>
/// Weight sharing's clustering and code packing against values worked out by hand, and which layers it selects
/// (only those whose kernels have a codebook form; the others keep float32 and say why).
/// </summary>
public sealed class WeightSharingTests
{
    [Fact]
    public void TwoSeparatedGroupsTakeTheOuterCentroidsAndTheEmptyOnesKeepTheirStart()
    {
        // 4 centroids start evenly over [-1.25, 2.25]: -1.25, -1/12, 13/12, 2.25. The midpoints (-2/3, 0.5, 5/3) put the
        // low group in cluster 0 and the high one in cluster 3, whose means are -1 and 2; the two middle clusters stay empty
        // and keep their start, and the next iteration's midpoints (-13/24, 0.5, 37/24) move nothing.
        float[] w = [-1.25f, 2f, -1f, 1.75f, -0.75f, 2.25f];
        var shared = WeightSharing.Cluster(w, 2, 3, 2);
        Assert.False(shared.ZeroCode);
        Assert.Equal([0, 3, 0, 3, 0, 3], shared.Codes.Select(c => (int)c));
        Assert.Equal(-1f, shared.Codebook[0]);
        Assert.Equal(2f, shared.Codebook[3]);
        Assert.Equal((float)(-1.0 / 12), shared.Codebook[1]);
        Assert.Equal((float)(13.0 / 12), shared.Codebook[2]);
        Assert.Equal([-1f, 2f, -1f, 2f, -1f, 2f], shared.Values());
    }

    [Fact]
    public void APrunedLayersZerosKeepCodeZero()
    {
        // Zeros present: code 0 is exactly 0, the other 3 entries cluster the nonzero {1, 1, 3, 3, 5}: they start at 1, 3, 5
        // (evenly over [1, 5]) and each is already its cluster's mean.
        float[] w = [0f, 0f, 1f, 1f, 3f, 3f, 0f, 5f];
        var shared = WeightSharing.Cluster(w, 1, 8, 2);
        Assert.True(shared.ZeroCode);
        Assert.Equal([0f, 1f, 3f, 5f], shared.Codebook);
        Assert.Equal([0, 0, 1, 1, 2, 2, 0, 3], shared.Codes.Select(c => (int)c));
        Assert.Equal(w, shared.Values());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    public void BitsOutsideTwoToEightAreRefused(int bits) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightSharing.Cluster([1f, 2f], 1, 2, bits));

    [Fact]
    public void CodesArePackedFromTheLowBitsUpEachRowFromAByte()
    {
        // 3-bit codes 5, 2, 7 in a row of 3: bits 0-2 = 101, 3-5 = 010, 6-8 = 111: byte 0 = 5 + 2·8 + (7 & 3)·64 = 213,
        // byte 1 = 7 >> 2 = 1. The second row (4, 0, 1) starts on its own byte: 4 + 0 + 1·64 = 68, then 0.
        var shared = new SharedWeights(3, new float[8], [5, 2, 7, 4, 0, 1], 2, 3, false);
        Assert.Equal(2, shared.RowBytes);
        Assert.Equal([213, 1, 68, 0], shared.PackedCodes());
        Assert.Equal(2 * 2 + 8 * 4, shared.DenseBytes);
        // 4-bit codes in a block of 32 columns: byte 8q + 2m + o holds column 16q + 8o + m low and the column 4 on high
        // (q, o in 0..1, m in 0..3). With code = column % 16: byte 0 = 0 | 4 << 4, byte 1 = 8 | 12 << 4, byte 2 = 1 | 5 << 4,
        // byte 8 = 16 % 16 | 20 % 16 << 4, byte 15 = 27 % 16 | 31 % 16 << 4; columns 32 and 33 (past the block) two a byte: 0 | 1 << 4.
        var block = new SharedWeights(4, new float[16], [.. Enumerable.Range(0, 34).Select(c => (byte)(c % 16))], 1, 34, false).PackedCodes();
        Assert.Equal(17, block.Length);
        Assert.Equal([0x40, 0xC8, 0x51, 0x40, 0xFB, 0x10], new[] { 0, 1, 2, 8, 15, 16 }.Select(t => block[t]));
        // 8-bit codes are the bytes themselves.
        Assert.Equal([9, 200], new SharedWeights(8, new float[256], [9, 200], 1, 2, false).PackedCodes());
    }

    [Fact]
    public void FourBitCodebooksAreStoredAsBfloat16RoundedToNearestEven()
    {
        // 1 + 2^-8 lies halfway between bfloat16's 1 and 1 + 2^-7: ties go to the even one, 1. 1 + 3·2^-8 is halfway
        // between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up. 1 + 2^-8 + 2^-20 is past the half: up to 1 + 2^-7.
        float[] codebook = [0f, 1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 256 + 1f / (1 << 20), -0.3f, .. Enumerable.Range(0, 11).Select(i => 0.01f * i)];
        var stored = WeightSharing.Stored(codebook, 4);
        Assert.Equal([0f, 1f, 1f + 1f / 64, 1f + 1f / 128], stored.Take(4));
        Assert.All(stored, v => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(v) & 0xFFFFu));
        Assert.All(codebook.Zip(stored), p => Assert.True(Math.Abs(p.First - p.Second) <= Math.Abs(p.First) / 256, $"{p.First} → {p.Second}"));
        // Other widths are kept as they are, and clustering at 4 bits gives a stored codebook.
        Assert.Same(codebook, WeightSharing.Stored(codebook, 3));
        var clustered = WeightSharing.Cluster([.. Enumerable.Range(0, 200).Select(i => MathF.Sin(i * 0.37f))], 10, 20, 4);
        Assert.All(clustered.Codebook, v => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(v) & 0xFFFFu));
    }

    [Fact]
    public void OnlyOneRowFullyConnectedLayersShareAndTheOthersSayWhy()
    {
        // LeNet-5: two convolutions (no codebook kernel) and its fully connected layers on one row.
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx") });
        var readers = WeightSharing.Readers(graph);
        var dense = graph.Nodes.Where(n => n.OpType == "Dense").ToList();
        Assert.NotEmpty(dense);
        Assert.Equal(dense, WeightSharing.Layers(graph));
        var convs = graph.Nodes.Where(n => n.OpType == "Conv").ToList();
        Assert.Equal(2, convs.Count);
        Assert.All(convs, n => Assert.StartsWith("convolution", WeightSharing.Exclusion(graph, n, readers)));
        // Batch 2: the GEMM reads the weights, and has no codebook form.
        var batched = ModelCompiler.Prepare(new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx"), BatchSize = 2 });
        Assert.Empty(WeightSharing.Layers(batched));
        var first = batched.Nodes.First(n => n.OpType == "Dense");
        Assert.StartsWith("several rows", WeightSharing.Exclusion(batched, first, WeightSharing.Readers(batched)));
    }

    [Fact]
    public void TheReportGivesEachLayersTechniqueAndBytesAndWhyTheOthersStayed()
    {
        string calibration = TestData.Mnist("calibration-256.npy");
        var options = new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "Shared", WeightSharing = 4, CalibrationPath = calibration, CalibrationUint8Scale = 255 };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        var report = CompressionReport.Create(options, artifact, calibration, null, null, prepared);
        // Sparse storage runs with sharing (a pruned convolution's codebook kernel is the sparse one); here it finds nothing to store sparse.
        Assert.Equal(["shared (4-bit codebooks)", "sparse storage (fully connected)", "sparse storage (convolutions)"], report.Stages.Select(s => s.Name));
        foreach (var node in prepared.Nodes.Where(n => n.OpType is "Dense" or "Conv"))
        {
            var layer = report.Layers.Single(l => l.Node == node.Name);
            var shape = prepared[node.Inputs[1]].Shape!;
            long count = shape.Aggregate(1L, (a, b) => a * b);
            Assert.Equal(4 * count, layer.BytesBefore);
            if (node.OpType == "Dense")
            {
                // N rows of K codes, two a byte (K even here), and 16 float32 entries.
                Assert.StartsWith("shared weights: 4-bit codes", layer.Precision);
                Assert.Equal(shape[0] * ((shape[1] + 1) / 2) + 64, layer.BytesAfter);
            }
            else
            {
                Assert.Contains("not shared: convolution", layer.Precision);
                Assert.Equal(layer.BytesBefore, layer.BytesAfter);
            }
        }
    }
}
