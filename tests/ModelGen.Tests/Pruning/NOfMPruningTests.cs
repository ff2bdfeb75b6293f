using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Pruning;

/// <summary>N:M masks (issue 23, item 3): the largest magnitudes of each group kept, in the layout SparseWeights stores.</summary>
public class NOfMPruningTests
{
    [Fact]
    public void EachGroupKeepsItsNLargestMagnitudesAndTiesGoToTheFirstColumns()
    {
        // One row of 10 columns in groups 0-3, 4-7 and a short last group 8-9.
        float[] w = [0.1f, -0.5f, 0.3f, 0.2f, /**/ 0.7f, -0.7f, 0.7f, 0.1f, /**/ 0.9f, -0.05f];
        // 2:4: |−0.5| and 0.3; three magnitudes of 0.7 tie, the first two columns win; the short group keeps both.
        Assert.Equal([false, true, true, false, true, true, false, false, true, true], PruningMasks.NOfM(w, 1, 10, 2, 4));
        // 1:4: the largest of each group, of the short group too (min(N, 2) = 1).
        Assert.Equal([false, true, false, false, true, false, false, false, true, false], PruningMasks.NOfM(w, 1, 10, 1, 4));
        // 4:8 over two rows of 5 (each row one group of 5 and no more: a short group keeps min(4, 5) = 4).
        Assert.Equal([true, true, true, true, false, /**/ true, true, true, false, true],
            PruningMasks.NOfM([5, -4, 3, 2, 1, /**/ 0.7f, -0.7f, 0.7f, 0.1f, 0.9f], 2, 5, 4, 8));
    }

    [Theory]
    [InlineData(2, 4)]
    [InlineData(1, 4)]
    [InlineData(4, 8)]
    public void TheMaskedWeightsAreWhatSparseWeightsStoresAsNOfM(int n, int m)
    {
        var random = new Random(3);
        int rows = 7, columns = 37; // a short last group
        var w = Enumerable.Range(0, rows * columns).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var keep = PruningMasks.NOfM(w, rows, columns, n, m);
        var masked = w.Select((v, i) => keep[i] ? v : 0f).ToArray();
        var sparse = SparseWeights.NOfM(masked, rows, columns, n, m);
        Assert.NotNull(sparse);
        Assert.Equal(masked, sparse!.ToDense());
        int tail = columns % m, perRow = columns / m * n + Math.Min(n, tail);
        Assert.Equal(rows * perRow, keep.Count(k => k));
    }

    /// <summary>On the depthwise-separable test CNN, 2:4 prunes the full and pointwise convolutions and the Dense layer, and leaves the depthwise ones dense.</summary>
    [Fact]
    public void TwoOfFourOneShotLeavesDepthwiseLayersDense()
    {
        string path = Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", "dwsep.onnx");
        var original = ModelCompiler.Prepare(new CompileOptions { ModelPath = path });
        var pruned = ModelCompiler.Prepare(new CompileOptions { ModelPath = path, PruningKind = "2:4" });
        Assert.Contains(pruned.CompressionStages, s => s.Name == "pruned 2:4 (one-shot)");
        var layers = PrunableLayer.Of(pruned);
        Assert.Contains(layers, l => l.Depthwise);
        Assert.Contains(layers, l => !l.Depthwise);
        foreach (var layer in layers)
        {
            var weights = pruned[layer.Weight].Constant!.Floats;
            if (!layer.TakesNOfM(4)) Assert.Equal(original[layer.Weight].Constant!.Floats, weights);
            else Assert.NotNull(SparseWeights.NOfM(weights, layer.Rows, layer.Columns, 2, 4));
        }
    }
}
