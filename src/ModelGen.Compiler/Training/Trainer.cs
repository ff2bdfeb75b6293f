using System.Diagnostics;

namespace ModelGen.Compiler.Training;

/// <summary>How <see cref="Trainer.Fit"/> trains. The defaults fine-tune a trained model: Adam at 1e-3, batch 64, 10% held out.</summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 5;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 1e-3;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    /// <summary>SGD's momentum (0: plain SGD) and whether it is Nesterov's.</summary>
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; }
    public LearningRateSchedule Schedule { get; init; } = new();
    /// <summary>L2 penalty added to the gradient (SGD, Adam) or decoupled shrinking (AdamW).</summary>
    public double WeightDecay { get; init; }
    /// <summary>Seeds the split, the shuffles and the augmentation: the same seed, data and options give the same weights, bit for bit.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>The fraction of the samples held out (after a seeded shuffle) for early stopping and the report; 0 holds none out.</summary>
    public double HeldOutFraction { get; init; } = 0.1;
    /// <summary>Stop after this many epochs without a better held-out loss (0: never stop early).</summary>
    public int Patience { get; init; }
    /// <summary>Stop after the batch that passes this much time (null: no limit).</summary>
    public TimeSpan? TimeLimit { get; init; }
    /// <summary>The loss; null: cross-entropy when there are labels, distillation to the teacher when there are not.</summary>
    public LossMix? Loss { get; init; }
    /// <summary>The distillation temperature T (Hinton et al. use 1 to 20; 2 softens a confident teacher a little).</summary>
    public double Temperature { get; init; } = 2;
    public Augmentation Augmentation { get; init; } = new();
}

/// <summary>Why training ended.</summary>
public enum StopReason { Completed, EarlyStopping, TimeLimit, Cancelled }

/// <summary>Training's state, reported after every batch.</summary>
public sealed record TrainingProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double? HeldOutAccuracy, TimeSpan Elapsed, TimeSpan? Remaining);

/// <summary>One epoch (epoch 0 is the model before training: only its held-out figures).</summary>
public sealed record EpochResult(int Epoch, double TrainLoss, double LearningRate, double? HeldOutLoss, double? HeldOutAccuracy, TimeSpan Elapsed);

/// <summary>
/// What <see cref="Trainer.Fit"/> did: the curve, the best epoch (whose weights the model holds: 0 is the
/// weights it came with), and why it stopped. The held-out accuracy is against the labels or, label-free,
/// the agreement with the teacher's top class (<see cref="AccuracyIsAgreement"/>).
/// </summary>
public sealed record TrainingResult(EpochResult? Before, IReadOnlyList<EpochResult> Epochs, int BestEpoch, StopReason Stopped, string Why,
    TimeSpan Time, int TrainSamples, int HeldOutSamples, bool AccuracyIsAgreement);

/// <summary>
/// The targets training without labels (or distilling) matches: the original model's outputs for a batch. The
/// teacher must be a separate model from the one being trained (<see cref="FromModel"/> of the untouched graph).
/// </summary>
public sealed class Teacher
{
    readonly Func<IReadOnlyDictionary<string, Tensor<float>>, int[], Tensor<float>> _outputs;

    Teacher(Func<IReadOnlyDictionary<string, Tensor<float>>, int[], Tensor<float>> outputs) => _outputs = outputs;

    /// <summary>The teacher's first output for a batch of <paramref name="inputs"/>, samples <paramref name="samples"/> of the set.</summary>
    public Tensor<float> Outputs(IReadOnlyDictionary<string, Tensor<float>> inputs, int[] samples) => _outputs(inputs, samples);

    /// <summary>Runs <paramref name="original"/> forward on each batch (augmented batches included).</summary>
    public static Teacher FromModel(TrainableModel original) =>
        new((inputs, _) => original.Forward(inputs)[original.Graph.Outputs[0]]);

    /// <summary>Any function of a batch's inputs (ONNX Runtime, the evaluator).</summary>
    public static Teacher FromFunction(Func<IReadOnlyDictionary<string, Tensor<float>>, Tensor<float>> run) => new((inputs, _) => run(inputs));

    /// <summary>
    /// Outputs computed beforehand, <paramref name="perSample"/> values per sample, stacked in the training set's
    /// order. They are the unaugmented samples' outputs: with augmentation on, use <see cref="FromModel"/>.
    /// </summary>
    public static Teacher FromOutputs(float[] outputs, int[] sampleShape)
    {
        int perSample = sampleShape.Aggregate(1, (a, b) => a * b);
        return new((_, samples) =>
        {
            var t = new Tensor<float>([samples.Length, .. sampleShape]);
            for (int s = 0; s < samples.Length; s++) outputs.AsSpan(samples[s] * perSample, perSample).CopyTo(t.Data.AsSpan(s * perSample));
            return t;
        });
    }
}

/// <summary>
/// The training loop: seeded split and shuffles, mini-batches through <see cref="TrainableModel"/>, the loss on the
/// graph's first output, the optimizer on the float32 master weights, held-out evaluation after each epoch.
/// <para>
/// The model ends holding the best weights seen, never a half-trained epoch: with a held-out split, those of the
/// epoch with the lowest held-out loss (epoch 0, the weights it came with, counts: if no epoch beats it they are
/// restored); without one, those of the last completed epoch. That holds for every ending: completion, early
/// stopping, the time limit and cancellation (checked before every batch and held-out batch, so a cancel is
/// seen within one batch's time; Fit then returns <see cref="StopReason.Cancelled"/> rather than throwing, and
/// a caller that must not use a partial result checks the token).
/// </para>
/// </summary>
public static class Trainer
{
    public static TrainingResult Fit(TrainableModel model, TrainingSet data, TrainingOptions options, Teacher? teacher = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken token = default)
    {
        var clock = Stopwatch.StartNew();
        var graph = model.Graph;
        string output = graph.Outputs[0];
        // A model ending in Softmax outputs probabilities: the losses read them as such (see Losses).
        bool probabilities = graph.Nodes.LastOrDefault(n => n.Outputs.Contains(output))?.OpType == "Softmax";
        var loss = options.Loss ?? (data.Labels is not null ? LossMix.Labels : LossMix.Distill);
        if (loss.NeedsLabels && data.Labels is null) throw new ArgumentException("the loss has a cross-entropy term but the training data has no labels; give labels, or train on the teacher's outputs (distillation, mean squared error)");
        if (loss.NeedsTeacher && teacher is null) throw new ArgumentException("the loss compares with the teacher's outputs but no teacher was given");
        if (options.Epochs < 0 || options.BatchSize < 1) throw new ArgumentException("epochs must be 0 or more and the batch size 1 or more");
        if (data.Data.Inputs.Count != graph.Inputs.Count) throw new ArgumentException($"the data has {data.Data.Inputs.Count} inputs, the model {graph.Inputs.Count}");

        var (train, heldOut) = data.Split(options.HeldOutFraction, options.Seed);
        if (train.Length == 0) throw new ArgumentException("no samples are left to train on after the held-out split");
        int batches = (train.Length + options.BatchSize - 1) / options.BatchSize;
        var optimizer = Optimizer.Create(options.Optimizer, options.WeightDecay, options.Momentum, options.Nesterov);
        var epochs = new List<EpochResult>();
        bool agreement = data.Labels is null;

        Dictionary<string, Tensor<float>> Inputs(int[] samples)
        {
            var inputs = new Dictionary<string, Tensor<float>>(StringComparer.Ordinal);
            for (int i = 0; i < graph.Inputs.Count; i++) inputs[graph.Inputs[i]] = data.Batch(i, samples);
            return inputs;
        }

        // The held-out teacher outputs do not change: computed once.
        var heldOutBatches = heldOut.Chunk(Math.Max(options.BatchSize, 256)).ToArray();
        // Needed by the loss, or (without labels) as what the held-out accuracy is measured against.
        bool useTeacher = teacher is not null && (loss.NeedsTeacher || data.Labels is null);
        var heldOutTargets = useTeacher ? heldOutBatches.Select(b => teacher!.Outputs(Inputs(b), b)).ToArray() : null;

        (double Loss, double Accuracy)? Evaluate()
        {
            if (heldOut.Length == 0) return null;
            double total = 0;
            int correct = 0;
            for (int k = 0; k < heldOutBatches.Length; k++)
            {
                if (token.IsCancellationRequested) return null;
                var samples = heldOutBatches[k];
                var y = model.Forward(Inputs(samples))[output];
                var labels = data.BatchLabels(samples);
                var target = heldOutTargets?[k];
                total += Losses.Mixed(loss, y, labels, target, options.Temperature, probabilities).Loss * samples.Length;
                var (_, classes) = Losses.Rows(y);
                for (int s = 0; s < samples.Length; s++)
                {
                    int predicted = Losses.ArgMax<float>(y.Data.AsSpan(s * classes, classes));
                    int expected = labels is not null ? (int)labels[s] : Losses.ArgMax<float>(target!.Data.AsSpan(s * classes, classes));
                    if (predicted == expected) correct++;
                }
            }
            return (total / heldOut.Length, (double)correct / heldOut.Length);
        }

        var initial = Evaluate();
        EpochResult? before = initial is { } i0 ? new EpochResult(0, double.NaN, 0, i0.Loss, i0.Accuracy, clock.Elapsed) : null;
        var best = Snapshot(model);
        double bestLoss = initial?.Loss ?? double.PositiveInfinity;
        int bestEpoch = 0, step = 0, totalBatches = options.Epochs * batches;
        double? lastAccuracy = initial?.Accuracy;
        var stop = StopReason.Completed;
        string why = $"trained {options.Epochs} epoch{(options.Epochs == 1 ? "" : "s")}";

        for (int epoch = 1; epoch <= options.Epochs && stop == StopReason.Completed; epoch++)
        {
            var order = TrainingSet.EpochOrder(train, options.Seed, epoch);
            var augmentRandom = new SeededRandom(options.Seed, TrainingSet.AugmentationStreams + (ulong)epoch);
            double epochLoss = 0, rate = options.LearningRate;
            int seen = 0;
            for (int b = 0; b < batches; b++)
            {
                if (token.IsCancellationRequested) { stop = StopReason.Cancelled; why = $"cancelled in epoch {epoch}"; break; }
                if (clock.Elapsed > options.TimeLimit) { stop = StopReason.TimeLimit; why = $"the time limit of {options.TimeLimit} was reached in epoch {epoch}"; break; }
                var samples = order.AsSpan(b * options.BatchSize, Math.Min(options.BatchSize, order.Length - b * options.BatchSize)).ToArray();
                var inputs = Inputs(samples);
                if (!options.Augmentation.IsOff)
                    foreach (var t in inputs.Values) options.Augmentation.Apply(t, augmentRandom);
                var pass = model.Forward(inputs);
                var value = Losses.Mixed(loss, pass[output], data.BatchLabels(samples), loss.NeedsTeacher ? teacher!.Outputs(inputs, samples) : null, options.Temperature, probabilities);
                var gradients = pass.Backward(new Dictionary<string, Tensor<float>>(StringComparer.Ordinal) { [output] = value.Gradient });
                rate = options.Schedule.Rate(options.LearningRate, step++, batches, options.Epochs);
                optimizer.Step(model.Trained, model.TrainedGradients(gradients), rate);
                model.ApplyConstraints();
                epochLoss += value.Loss * samples.Length;
                seen += samples.Length;
                progress?.Report(new TrainingProgress(epoch, options.Epochs, b + 1, batches, epochLoss / seen, lastAccuracy, clock.Elapsed,
                    Remaining(clock.Elapsed, step, totalBatches, options.TimeLimit)));
            }
            if (stop != StopReason.Completed) break;

            var evaluation = Evaluate();
            if (heldOut.Length > 0 && evaluation is null) { stop = StopReason.Cancelled; why = $"cancelled after epoch {epoch}"; break; }
            lastAccuracy = evaluation?.Accuracy;
            epochs.Add(new EpochResult(epoch, epochLoss / seen, rate, evaluation?.Loss, evaluation?.Accuracy, clock.Elapsed));
            progress?.Report(new TrainingProgress(epoch, options.Epochs, batches, batches, epochLoss / seen, lastAccuracy, clock.Elapsed,
                Remaining(clock.Elapsed, step, totalBatches, options.TimeLimit)));
            // Without a held-out split every completed epoch is the best so far.
            if (evaluation is null || evaluation.Value.Loss < bestLoss)
            {
                bestLoss = evaluation?.Loss ?? double.PositiveInfinity;
                bestEpoch = epoch;
                best = Snapshot(model);
            }
            else if (options.Patience > 0 && epoch - bestEpoch >= options.Patience)
            {
                stop = StopReason.EarlyStopping;
                why = $"the held-out loss did not improve for {options.Patience} epochs after epoch {bestEpoch}";
            }
        }
        Restore(model, best);
        return new TrainingResult(before, epochs, bestEpoch, stop, why, clock.Elapsed, train.Length, heldOut.Length, agreement);
    }

    static TimeSpan? Remaining(TimeSpan elapsed, int done, int total, TimeSpan? limit)
    {
        if (done == 0) return null;
        var estimate = elapsed / done * (total - done);
        return limit is { } l && l - elapsed < estimate ? (l > elapsed ? l - elapsed : TimeSpan.Zero) : estimate;
    }

    // What the optimizer trains (codebooks in place of shared weights, which follow them).
    static float[][] Snapshot(TrainableModel model) => [.. model.Trained.Select(p => (float[])p.Values.Clone())];

    static void Restore(TrainableModel model, float[][] weights)
    {
        for (int i = 0; i < weights.Length; i++) weights[i].CopyTo(model.Trained[i].Values, 0);
        model.ApplyConstraints();
    }
}
