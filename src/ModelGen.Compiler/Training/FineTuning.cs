using System.Globalization;

namespace ModelGen.Compiler.Training;

/// <summary>The training options of a compile (<see cref="CompileOptions"/>): checked once, before any work.</summary>
public static class FineTuning
{
    /// <summary>"90s", "10m", "1.5h" or a number of seconds; null or empty: no limit. Anything else is MG0007.</summary>
    public static TimeSpan? ParseTimeLimit(string? text, string modelPath)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        string t = text.Trim().ToLowerInvariant();
        double unit = t.EndsWith('h') ? 3600 : t.EndsWith('m') ? 60 : 1;
        if (t.EndsWith('h') || t.EndsWith('m') || t.EndsWith('s')) t = t[..^1];
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value > 0) || value * unit > TimeSpan.MaxValue.TotalSeconds / 2)
            throw new ModelGenException(ErrorCodes.BadOption, modelPath, $"the training time limit '{text}' is not a duration such as 90s, 10m or 1h (above zero)");
        return TimeSpan.FromSeconds(value * unit);
    }

    /// <summary>"shift:2", "noise:0.05" or "shift:2,noise:0.05" (shifts in pixels on the last two axes, Gaussian noise's standard deviation); null or empty: none.</summary>
    public static Augmentation ParseAugmentation(string? text, string modelPath)
    {
        var augmentation = new Augmentation();
        if (string.IsNullOrWhiteSpace(text)) return augmentation;
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = part.Split(':', 2, StringSplitOptions.TrimEntries);
            string name = kv[0].ToLowerInvariant(), value = kv.Length == 2 ? kv[1] : "";
            bool ok = false;
            if (name == "shift" && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int shift) && shift is >= 1 and <= 64)
                (augmentation, ok) = (augmentation with { MaxShift = shift }, true);
            else if (name == "noise" && float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out float noise) && noise > 0 && noise <= 100)
                (augmentation, ok) = (augmentation with { NoiseStdDev = noise }, true);
            if (!ok)
                throw new ModelGenException(ErrorCodes.BadOption, modelPath, $"TrainingAugmentation (--augment) '{text}': '{part}' is not shift:<pixels, 1 to 64> or noise:<standard deviation above 0>; e.g. \"shift:2,noise:0.05\"");
        }
        return augmentation;
    }

    /// <summary>MG0007 for training options that cannot work together, before the model is read.</summary>
    public static void Validate(CompileOptions options)
    {
        void Bad(string message) => throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, message);
        if (options.FineTune && options.TrainingDataPath is null)
            Bad("FineTune (--fine-tune) needs TrainingData (--training-data): the samples to train on");
        if (options.TrainingLabelsPath is not null && options.TrainingDataPath is null)
            Bad("TrainingLabels (--training-labels) are the labels of TrainingData (--training-data), which is not given");
        if (options.TrainingDataPath is not null && !options.FineTune && string.IsNullOrWhiteSpace(options.Student))
            Bad("TrainingData (--training-data) is given but nothing trains on it: add FineTune=\"true\" (--fine-tune) or a Student (--student)");
        if (options.Epochs < 1 || options.Epochs > 100_000)
            Bad($"Epochs (--epochs) must be from 1 to 100000, not {options.Epochs}");
        if (options.LearningRate is float rate && !(rate > 0 && rate < 10 && float.IsFinite(rate)))
            Bad($"LearningRate (--learning-rate) must be above 0 and below 10, not {rate.ToString(CultureInfo.InvariantCulture)}");
        ParseAugmentation(options.TrainingAugmentation, options.ModelPath);
    }
}

/// <summary>The fine-tuning a compile asks for (<see cref="CompileOptions"/>' training options), for <see cref="FineTunePass"/>.</summary>
public sealed record FineTuneSettings(string DataPath, string? LabelsPath, float Uint8Scale, int Epochs, double LearningRate, int Seed,
    TimeSpan? TimeLimit, Augmentation Augmentation, CancellationToken Cancellation)
{
    /// <summary>Adam's rate for fine-tuning a trained model: a tenth of the 1e-3 that trains one from scratch.</summary>
    public const double DefaultLearningRate = 1e-4;

    /// <summary>Epochs without a better held-out loss before training stops early.</summary>
    public const int Patience = 3;

    public static FineTuneSettings From(CompileOptions options) =>
        new(options.TrainingDataPath!, options.TrainingLabelsPath, options.CalibrationUint8Scale, options.Epochs,
            options.LearningRate ?? DefaultLearningRate, options.Seed, options.TrainingTimeLimit,
            FineTuning.ParseAugmentation(options.TrainingAugmentation, options.ModelPath), options.Cancellation);
}

/// <summary>
/// Fine-tuning as a stage of the compression pipeline: trains the float32 weights on the training data (labels, or the
/// original model's outputs without them), quantization-aware for the stages after it (<see cref="QuantizationAwareTraining"/>),
/// and puts the best weights back into the graph for those stages to compress. A cancelled compile throws
/// <see cref="OperationCanceledException"/>, so nothing is written.
/// </summary>
public sealed class FineTunePass(FineTuneSettings settings) : Compress.ICompressionPass
{
    public string Name => "fine-tuned";
    public Compress.CompressionStageOrder Stage => Compress.CompressionStageOrder.FineTune;

    public void Apply(Graph graph, Compress.PassContext context)
    {
        var model = TrainableModel.Build(graph);
        var quantized = QuantizationAwareTraining.Attach(model, context.Plan);
        var (data, teacher, options, progress) = Prepare(graph, context.Original ?? graph, settings, context, quantized.Count > 0 ? "quantization-aware training" : "fine-tuning");
        var result = context.Plan.Pruning is double sparsity && context.Plan.PruningKind.Pattern != Compress.PruningPattern.Channels
            ? PruneGradually(model, Compress.PruningPass.Target(graph, context.Plan.PruningKind, sparsity, context), data, options, teacher, progress)
            : Trainer.Fit(model, data, options, teacher, progress, settings.Cancellation);
        settings.Cancellation.ThrowIfCancellationRequested();
        StoreParameters(graph, model);
        context.Trained = result;
    }

    /// <summary>
    /// What a fine-tuning stage trains with (this pass and <see cref="SharedFineTunePass"/>): the training data, the
    /// teacher when there are no labels, the options (epochs, rate, seed, time limit, early stopping) and the progress
    /// reported as <paramref name="activity"/>.
    /// </summary>
    internal static (TrainingSet Data, Teacher? Teacher, TrainingOptions Options, IProgress<TrainingProgress>? Progress) Prepare(
        Graph graph, Graph teacherGraph, FineTuneSettings settings, Compress.PassContext context, string activity)
    {
        var inputs = graph.Inputs.Select(i => new Data.DataInput(i, graph[i].Shape!)).ToArray();
        var data = TrainingSet.Load(settings.DataPath, settings.LabelsPath, inputs, Compress.CompressionReport.Classes(graph), settings.Uint8Scale);
        // The teacher graph is the teacher when there are no labels: its outputs computed once, before training changes
        // anything; with augmentation it runs on each augmented batch (a model built now keeps the original weights).
        var teacher = data.Labels is not null ? null
            : settings.Augmentation.IsOff ? TeacherOutputs(teacherGraph, data) : Teacher.FromModel(TrainableModel.Build(teacherGraph));
        var options = new TrainingOptions
        {
            Epochs = settings.Epochs, LearningRate = settings.LearningRate, Seed = (ulong)settings.Seed, TimeLimit = settings.TimeLimit,
            Patience = FineTuneSettings.Patience, Augmentation = settings.Augmentation,
        };
        return (data, teacher, options, context.Progress is { } sink ? new Progress(sink, activity) : null);
    }

    /// <summary>The trained parameters back into the graph's constants (copies: the model may train on).</summary>
    internal static void StoreParameters(Graph graph, TrainableModel model)
    {
        foreach (var p in model.Parameters) graph[p.Name].Constant = new TensorData(p.Shape, (float[])p.Values.Clone());
    }

    /// <summary>Most pruning steps of the gradual schedule.</summary>
    const int PruningSteps = 6;

    /// <summary>
    /// Iterative pruning (issue 23): each step prunes the smallest weights of the prunable layers to the step's target
    /// (masks kept through training) and then fine-tunes its share of the epochs. Unstructured: up to six steps of Zhu
    /// and Gupta's cubic schedule (to one global share, or each layer to its own share with unstructured-sensitive).
    /// N:M: M − N steps, each group giving up one more weight a step (2:4: 3:4, then 2:4; 4:8: 7:8 … 4:8) chosen by
    /// magnitude among the weights fine-tuning has just moved: removing half of a layer's weights at once costs more
    /// than the network recovers in a step, and each intermediate pattern is itself N:M, so the final mask is too.
    /// </summary>
    TrainingResult PruneGradually(TrainableModel model, Compress.PruningTarget target, TrainingSet data, TrainingOptions options, Teacher? teacher, IProgress<TrainingProgress>? progress)
    {
        int steps = target.Steps(Math.Min(PruningSteps, options.Epochs)), epochs = Math.Max(1, options.Epochs / steps);
        var layers = Compress.PrunableLayer.Of(model.Graph).Select(l => (l, model.Parameters.Single(p => p.Name == l.Weight))).ToList();
        TrainingResult? result = null;
        for (int step = 1; step <= steps && !settings.Cancellation.IsCancellationRequested; step++)
        {
            foreach (var (name, keep) in target.Masks([.. layers.Select(l => (l.Item1, l.Item2.Values))], step, steps)) model.Mask(name, keep);
            // Each step keeps its best epoch, the pruned weights before it counting as epoch 0.
            result = Trainer.Fit(model, data, options with { Epochs = epochs, Patience = 0 }, teacher, progress, settings.Cancellation);
        }
        string amount = target.Kind.Pattern == Compress.PruningPattern.NOfM ? target.Kind.Name : FormattableString.Invariant($"{target.Sparsity * 100:0.#}%");
        return result! with { Why = FormattableString.Invariant($"pruned to {amount} in {steps} steps of {epochs} epochs; last step: {result.Why}") };
    }

    internal static Teacher TeacherOutputs(Graph graph, TrainingSet data)
    {
        var original = TrainableModel.Build(graph);
        var shape = graph[graph.Outputs[0]].Shape![1..];
        int perSample = shape.Aggregate(1, (a, b) => a * b);
        var outputs = new float[(long)data.Count * perSample];
        foreach (var chunk in Enumerable.Range(0, data.Count).Chunk(256))
        {
            var feed = new Dictionary<string, Tensor<float>>(StringComparer.Ordinal);
            for (int i = 0; i < graph.Inputs.Count; i++) feed[graph.Inputs[i]] = data.Batch(i, chunk);
            original.Forward(feed)[graph.Outputs[0]].Data.CopyTo(outputs, (long)chunk[0] * perSample);
        }
        return Teacher.FromOutputs(outputs, shape);
    }

    /// <summary>Training's progress as the compile reports it: one step a batch, the epoch, loss and held-out accuracy beside it.</summary>
    internal sealed class Progress(IProgress<CompileProgress> sink, string activity) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            string accuracy = p.HeldOutAccuracy is double a ? FormattableString.Invariant($", held-out {a * 100:F1}%") : "";
            string left = p.Remaining is { } r ? FormattableString.Invariant($", about {r.TotalSeconds:F0} s left") : "";
            sink.Report(new CompileProgress(activity,
                (p.Epoch - 1) * p.Batches + p.Batch, p.Epochs * p.Batches,
                FormattableString.Invariant($"epoch {p.Epoch} of {p.Epochs}, loss {p.Loss:G4}{accuracy}{left}")));
        }
    }
}

/// <summary>How a training run reads in the build log and the report.</summary>
public static class TrainingSummary
{
    /// <summary>"8 epochs in 41 s (best: epoch 6; …why it stopped), held-out accuracy 96.9% → 97.8% (800 samples)".</summary>
    public static string Summary(this TrainingResult r)
    {
        var best = r.Epochs.FirstOrDefault(e => e.Epoch == r.BestEpoch);
        string measure = r.AccuracyIsAgreement ? "held-out agreement with the original" : "held-out accuracy";
        string figures = r.Before?.HeldOutAccuracy is double before
            ? FormattableString.Invariant($", {measure} {before * 100:F2}% → {(best?.HeldOutAccuracy ?? before) * 100:F2}% ({r.HeldOutSamples:N0} samples)")
            : "";
        string kept = r.BestEpoch == 0 ? "no epoch beat the weights it started from, which are kept" : $"the weights of epoch {r.BestEpoch} are kept";
        return FormattableString.Invariant($"{r.Epochs.Count} epoch{(r.Epochs.Count == 1 ? "" : "s")} on {r.TrainSamples:N0} samples in {r.Time.TotalSeconds:F1} s ({r.Why}; {kept}){figures}");
    }
}
