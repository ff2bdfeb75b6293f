using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Ir;
using Xunit;

namespace ModelGen.Tests.Pruning;

/// <summary>Layer-wise reconstruction after pruning (issue 23, item 4) and the per-layer shares from sensitivity (item 1).</summary>
public class PruningRefitTests
{
    /// <summary>
    /// A fully connected layer whose inputs are correlated (each column a mix of four sources): the refit moves the
    /// pruned weights' contribution onto the kept ones, so the layer's output error on those inputs, computed here from
    /// the weights, drops well below plain magnitude pruning's; the pruned weights stay exactly zero.
    /// </summary>
    [Fact]
    public void RefitLowersTheLayersOutputErrorAgainstMagnitudePruning()
    {
        var random = new Random(11);
        int samples = 200, k = 16, rows = 5;
        double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var x = new float[samples * k];
        for (int s = 0; s < samples; s++)
        {
            var sources = Enumerable.Range(0, 4).Select(_ => Gaussian()).ToArray();
            for (int c = 0; c < k; c++) x[s * k + c] = (float)(sources[c % 4] + 0.2 * Gaussian());
        }
        var w = Enumerable.Range(0, rows * k).Select(_ => (float)Gaussian()).ToArray();
        var layer = new PrunableLayer(new Node { Name = "fc", OpType = "Dense" }, "w", rows, k, Depthwise: false);
        var keep = PruningMasks.NOfM(w, rows, k, 2, 4);
        var grams = PruningRefit.Grams(layer, [rows, k], [new TensorData([samples, k], x)])!;
        var (refit, result) = PruningRefit.Refit(w, keep, layer, grams);

        double OutputError(Func<int, float> weight)
        {
            double sum = 0;
            for (int s = 0; s < samples; s++)
                for (int r = 0; r < rows; r++)
                {
                    double d = 0;
                    for (int c = 0; c < k; c++) d += (weight(r * k + c) - (double)w[r * k + c]) * x[s * k + c];
                    sum += d * d;
                }
            return sum;
        }
        double magnitude = OutputError(i => keep[i] ? w[i] : 0f), reconstructed = OutputError(i => refit[i]);
        Assert.True(reconstructed < 0.5 * magnitude, $"output error: magnitude {magnitude:G4}, refit {reconstructed:G4}");
        Assert.All(Enumerable.Range(0, w.Length).Where(i => !keep[i]), i => Assert.Equal(0f, refit[i]));
        Assert.True(result.RefitError < result.MagnitudeError);
        Assert.NotNull(SparseWeights.NOfM(refit, rows, k, 2, 4));
    }

    /// <summary>
    /// Two layers of 100 weights, one insensitive and one a hundred times more so: for half of all weights the greedy
    /// choice raises the first through every level while a level costs less per weight than the second's first
    /// (to 95%: 0.01 per 5 weights against 0.1 per 30), then takes the 5 weights left from the second.
    /// </summary>
    [Fact]
    public void SensitivityGivesTheInsensitiveLayerTheLargerShareAndReachesTheTarget()
    {
        double[] losses = [0.001, 0.002, 0.004, 0.006, 0.01, 0.02, 0.05];
        var shares = PruningSensitivity.Choose([new LayerSensitivity("a", 100, losses), new LayerSensitivity("b", 100, [.. losses.Select(l => l * 100)])], 0.5);
        Assert.Equal(0.95, shares["a"], 12);
        Assert.Equal(0.05, shares["b"], 12);
    }
}
