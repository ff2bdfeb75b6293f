using System.Diagnostics;
using System.Security.Cryptography;
using ModelGen.Compiler.Training;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Training;

/// <summary>
/// The training loop on LeNet-300-100 (Gemm and Relu only) and the MNIST training digits: the labels are the
/// oracle of accuracy. Small subsets keep each test to a few seconds.
/// </summary>
public class TrainerTests(ITestOutputHelper output)
{
    static TrainableModel LeNet300() => MnistTraining.Model("lenet300.onnx");

    static TrainingSet Digits(int count) => MnistTraining.TrainingDigits(LeNet300(), count);

    static double TestAccuracy(TrainableModel model) => MnistTraining.TestAccuracy(model);

    /// <summary>LeNet-300 with its last layer (100 → 10) drawn again, uniform in ±1/√100 (PyTorch's default for Linear), seeded.</summary>
    static TrainableModel LeNet300WithNewLastLayer(ulong seed = 42)
    {
        var model = LeNet300();
        var random = new SeededRandom(seed);
        foreach (var p in model.Parameters.Where(p => p.Shape[0] == 10))
            for (int i = 0; i < p.Values.Length; i++) p.Values[i] = (random.NextFloat() * 2 - 1) * 0.1f;
        Assert.Equal(2, model.Parameters.Count(p => p.Shape[0] == 10)); // the weight [10, 100] and the bias [10]
        return model;
    }

    static string Hash(TrainableModel model)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var p in model.Parameters) sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Values.AsSpan()));
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    [Fact]
    public void RetrainsANewLastLayerOfLeNet300()
    {
        var model = LeNet300WithNewLastLayer();
        double before = TestAccuracy(model);
        var result = Trainer.Fit(model, Digits(2000), new TrainingOptions { Epochs = 2, LearningRate = 1e-3 });
        double after = TestAccuracy(model);
        output.WriteLine($"test accuracy {before:P2} -> {after:P2}; held-out {result.Before!.HeldOutAccuracy:P2} -> {string.Join(", ", result.Epochs.Select(e => e.HeldOutAccuracy?.ToString("P2")))}; {result.Time.TotalSeconds:0.0} s");

        Assert.InRange(before, 0, 0.3); // a random last layer: about chance
        Assert.True(after >= 0.90, $"test accuracy after training {after:P2} (before {before:P2}); the trained model has 95.20%");
        Assert.Equal(StopReason.Completed, result.Stopped);
        Assert.Equal(2, result.Epochs.Count);
        Assert.Equal((1800, 200), (result.TrainSamples, result.HeldOutSamples));
        Assert.True(result.Epochs[^1].HeldOutAccuracy >= 0.85, $"held-out accuracy {result.Epochs[^1].HeldOutAccuracy:P2}");
        Assert.True(result.Before!.HeldOutAccuracy < 0.3);
        Assert.True(result.Epochs[^1].TrainLoss < result.Epochs[0].TrainLoss);
    }

    [Fact]
    public void LabelFreeDistillationRecoversTheTeacher()
    {
        // The teacher is the trained model; the student's last layer is new; no labels: the accuracy against the labels still rises.
        var teacher = Teacher.FromModel(LeNet300());
        var student = LeNet300WithNewLastLayer();
        var unlabeled = new TrainingSet(Digits(2000).Data);
        var result = Trainer.Fit(student, unlabeled, new TrainingOptions { Epochs = 2, LearningRate = 2e-3 }, teacher);
        output.WriteLine($"agreement {result.Epochs[^1].HeldOutAccuracy:P2}, test accuracy {TestAccuracy(student):P2}");
        Assert.True(result.AccuracyIsAgreement);
        Assert.True(result.Epochs[^1].HeldOutAccuracy >= 0.90, $"agreement with the teacher {result.Epochs[^1].HeldOutAccuracy:P2}");
        Assert.True(TestAccuracy(student) >= 0.90, $"test accuracy {TestAccuracy(student):P2}");
    }

    static TrainingOptions Short(ulong seed) => new() { Epochs = 1, Seed = seed, Optimizer = OptimizerKind.AdamW, WeightDecay = 0.01,
        Schedule = new LearningRateSchedule(ScheduleKind.Cosine), Augmentation = new Augmentation(MaxShift: 1, NoiseStdDev: 0.05f) };

    [Fact]
    public void SameSeedSameWeightsOtherSeedOtherWeights()
    {
        var data = Digits(400);
        string Run(ulong seed)
        {
            var model = LeNet300WithNewLastLayer();
            Trainer.Fit(model, data, Short(seed));
            return Hash(model);
        }
        string first = Run(1);
        Assert.Equal(first, Run(1));
        Assert.NotEqual(first, Run(2));
        Assert.NotEqual(Hash(LeNet300WithNewLastLayer()), first);
    }

    /// <summary>Reports progress synchronously (Progress&lt;T&gt; posts to the thread pool) and cancels at a given batch.</summary>
    sealed class CancelAt(int epoch, int batch, CancellationTokenSource source) : IProgress<TrainingProgress>
    {
        public Stopwatch? SinceCancel;
        public int Reports;
        public void Report(TrainingProgress value)
        {
            Reports++;
            if (value.Epoch == epoch && value.Batch == batch && SinceCancel is null) { source.Cancel(); SinceCancel = Stopwatch.StartNew(); }
        }
    }

    [Fact]
    public void CancellationInTheFirstEpochLeavesTheWeightsUntouched()
    {
        var model = LeNet300WithNewLastLayer();
        string untouched = Hash(model);
        using var source = new CancellationTokenSource();
        var progress = new CancelAt(1, 3, source);
        var result = Trainer.Fit(model, Digits(2000), new TrainingOptions { Epochs = 3 }, null, progress, source.Token);
        Assert.True(progress.SinceCancel!.Elapsed < TimeSpan.FromSeconds(1), $"stopped {progress.SinceCancel.Elapsed} after the cancel");
        Assert.Equal(StopReason.Cancelled, result.Stopped);
        Assert.Empty(result.Epochs);
        Assert.Equal(3, progress.Reports);
        Assert.Equal(untouched, Hash(model));
    }

    [Fact]
    public void CancellationLaterKeepsTheBestEpoch()
    {
        // Cancelled in epoch 2: the model holds epoch 1's weights, the same as a run of one epoch.
        var data = Digits(600);
        var options = new TrainingOptions { Epochs = 3, Seed = 5 };
        var once = LeNet300WithNewLastLayer();
        Trainer.Fit(once, data, options with { Epochs = 1 });

        var model = LeNet300WithNewLastLayer();
        using var source = new CancellationTokenSource();
        var result = Trainer.Fit(model, data, options, null, new CancelAt(2, 2, source), source.Token);
        Assert.Equal(StopReason.Cancelled, result.Stopped);
        Assert.Equal(1, result.BestEpoch);
        Assert.Equal(Hash(once), Hash(model));
    }

    [Fact]
    public void EarlyStoppingRestoresTheBestEpoch()
    {
        // Three epochs at 1e-3, then the rate steps up 300 times: Adam at 0.3 wrecks the model, the held-out loss
        // rises, and training stops after `Patience` epochs without improvement, back at the best epoch's weights.
        var data = Digits(600);
        var options = new TrainingOptions { Epochs = 8, Seed = 3, Patience = 2,
            Schedule = new LearningRateSchedule(ScheduleKind.Step, StepEpochs: 3, Gamma: 300) };
        var model = LeNet300WithNewLastLayer();
        var result = Trainer.Fit(model, data, options);

        Assert.Equal(StopReason.EarlyStopping, result.Stopped);
        Assert.InRange(result.BestEpoch, 1, 3);
        Assert.Equal(result.BestEpoch + options.Patience, result.Epochs.Count);
        var bestLoss = result.Epochs[result.BestEpoch - 1].HeldOutLoss!.Value;
        Assert.All(result.Epochs.Skip(result.BestEpoch), e => Assert.True(e.HeldOutLoss >= bestLoss));

        // The same run cut at the best epoch holds the same weights.
        var reference = LeNet300WithNewLastLayer();
        Trainer.Fit(reference, data, options with { Epochs = result.BestEpoch, Patience = 0 });
        Assert.Equal(Hash(reference), Hash(model));
    }

    [Fact]
    public void TimeLimitStopsAndKeepsTheWeights()
    {
        var model = LeNet300WithNewLastLayer();
        string untouched = Hash(model);
        var result = Trainer.Fit(model, Digits(300), new TrainingOptions { Epochs = 2, TimeLimit = TimeSpan.Zero });
        Assert.Equal(StopReason.TimeLimit, result.Stopped);
        Assert.Equal(0, result.BestEpoch);
        Assert.Equal(untouched, Hash(model));
    }

    sealed class Recorder : IProgress<TrainingProgress>
    {
        public List<TrainingProgress> Reports { get; } = [];
        public void Report(TrainingProgress value) => Reports.Add(value);
    }

    [Fact]
    public void ProgressReportsEveryBatchAndTheTimeLeft()
    {
        var progress = new Recorder();
        // 300 samples, 30 held out: 270 in batches of 64 are 5 batches (the last of 14).
        var result = Trainer.Fit(LeNet300WithNewLastLayer(), Digits(300), new TrainingOptions { Epochs = 2 }, null, progress);
        var reports = progress.Reports;
        Assert.Equal(2 * (5 + 1), reports.Count); // every batch, and each epoch's end with its held-out accuracy
        Assert.All(reports, r => Assert.Equal((2, 5), (r.Epochs, r.Batches)));
        Assert.Equal([1, 2, 3, 4, 5, 5], reports.Take(6).Select(r => r.Batch));
        Assert.All(reports, r => Assert.True(double.IsFinite(r.Loss) && r.Loss > 0));
        Assert.Equal(result.Before!.HeldOutAccuracy, reports[0].HeldOutAccuracy);
        Assert.Equal(result.Epochs[0].HeldOutAccuracy, reports[5].HeldOutAccuracy);
        Assert.All(reports.Take(10), r => Assert.True(r.Remaining > TimeSpan.Zero)); // before the last batch
        Assert.Equal(TimeSpan.Zero, reports[^1].Remaining);
    }

    [Fact]
    public void LabelsAreRequiredForCrossEntropy()
    {
        var unlabeled = new TrainingSet(Digits(100).Data);
        var error = Assert.Throws<ArgumentException>(() => Trainer.Fit(LeNet300(), unlabeled, new TrainingOptions { Loss = LossMix.Labels }));
        Assert.Contains("no labels", error.Message);
    }
}
