using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Training;
using Xunit;

namespace ModelGen.Tests.Training;

public class PruningTests
{
    [Fact]
    public void GlobalMasksRemoveExactlyTheSmallestShareAcrossLayers()
    {
        float[] a = [0.5f, -0.1f, 0.3f, 0.05f], b = [-0.2f, 0.4f, 0.01f, -0.6f, 0.1f, 0.7f];
        var masks = MagnitudePruning.GlobalMasks([("a", a), ("b", b)], 0.5);
        // The five smallest magnitudes of the ten: 0.01, 0.05, 0.1 (a), 0.1 (b), 0.2; the tie at 0.1 goes in tensor order.
        Assert.Equal([true, false, true, false], masks["a"]);
        Assert.Equal([false, true, false, true, false, true], masks["b"]);
        Assert.Equal(5, masks.Values.Sum(m => m.Count(k => !k)));
    }

    [Fact]
    public void TheCubicScheduleStartsAtTheInitialAndEndsAtTheFinalSparsity()
    {
        Assert.Equal(0, MagnitudePruning.CubicSchedule(0, 0.92, 0, 6), 12);
        Assert.Equal(0.92 * (1 - Math.Pow(5.0 / 6, 3)), MagnitudePruning.CubicSchedule(0, 0.92, 1, 6), 12);
        Assert.Equal(0.92, MagnitudePruning.CubicSchedule(0, 0.92, 6, 6), 12);
        Assert.Equal(0.92, MagnitudePruning.CubicSchedule(0, 0.92, 9, 6), 12);
    }

    /// <summary>Fine-tuning a masked LeNet-300-100 keeps the pruned weights at zero (the optimizer's steps do not regrow them) and recovers accuracy.</summary>
    [Fact]
    public void MaskedWeightsStayZeroThroughFineTuning()
    {
        var model = MnistTraining.Model("lenet300.onnx");
        var weights = MagnitudePruning.PrunableWeights(model.Graph).Select(w => (w.Weight, model.Parameters.Single(p => p.Name == w.Weight).Values)).ToList();
        var masks = MagnitudePruning.GlobalMasks(weights, 0.9);
        foreach (var (name, keep) in masks) model.Mask(name, keep);
        double pruned = MnistTraining.TestAccuracy(model);
        Trainer.Fit(model, MnistTraining.TrainingDigits(model, 2000), new TrainingOptions { Epochs = 2, LearningRate = 1e-3, Seed = 5 });
        double tuned = MnistTraining.TestAccuracy(model);
        foreach (var (name, keep) in masks)
        {
            var values = model.Parameters.Single(p => p.Name == name).Values;
            Assert.All(Enumerable.Range(0, keep.Length).Where(i => !keep[i]), i => Assert.Equal(0f, values[i]));
        }
        Assert.True(tuned >= pruned, $"fine-tuning the pruned model: {pruned:P2} → {tuned:P2}");
    }
}
