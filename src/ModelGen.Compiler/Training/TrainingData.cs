using ModelGen.Compiler.Data;

namespace ModelGen.Compiler.Training;

/// <summary>
/// Simple augmentation for small image sets, off by default: each sample of a [C, H, W] input shifted by up to
/// <see cref="MaxShift"/> pixels on each axis (the uncovered border filled with zeros) and Gaussian noise of
/// standard deviation <see cref="NoiseStdDev"/> added to every element. Seeded, like the shuffle.
/// </summary>
public sealed record Augmentation(int MaxShift = 0, float NoiseStdDev = 0)
{
    public bool IsOff => MaxShift <= 0 && NoiseStdDev <= 0;

    /// <summary>Augments a batch [batch, …] in place; shifts need at least two axes after the batch (H, W last).</summary>
    public void Apply(Tensor<float> batch, SeededRandom random)
    {
        int samples = batch.Shape[0], length = batch.Count / Math.Max(1, samples);
        bool shift = MaxShift > 0 && batch.Shape.Length >= 3;
        int height = shift ? batch.Shape[^2] : 1, width = shift ? batch.Shape[^1] : 1;
        if (shift && (MaxShift >= height || MaxShift >= width))
            throw new ArgumentException($"a shift of up to {MaxShift} pixels does not fit samples of {height}x{width}");
        var scratch = new float[length];
        for (int s = 0; s < samples; s++)
        {
            var sample = batch.Data.AsSpan(s * length, length);
            if (shift)
            {
                int dy = random.NextInt(2 * MaxShift + 1) - MaxShift, dx = random.NextInt(2 * MaxShift + 1) - MaxShift;
                sample.CopyTo(scratch);
                sample.Clear();
                for (int plane = 0; plane < length; plane += height * width)
                    for (int y = Math.Max(0, dy); y < Math.Min(height, height + dy); y++)
                        scratch.AsSpan(plane + (y - dy) * width + Math.Max(0, -dx), width - Math.Abs(dx))
                            .CopyTo(sample[(plane + y * width + Math.Max(0, dx))..]);
            }
            if (NoiseStdDev > 0)
                for (int i = 0; i < sample.Length; i++) sample[i] = MathF.FusedMultiplyAdd(NoiseStdDev, random.NextGaussian(), sample[i]);
        }
    }
}

/// <summary>
/// Samples to train on: the inputs (as <see cref="CalibrationData"/> reads them: .npy, .npz, .pb, folders) and
/// optional class labels. Without labels the teacher's outputs are the targets.
/// </summary>
public sealed class TrainingSet
{
    public DataSet Data { get; }
    /// <summary>A class index per sample, or null (label-free).</summary>
    public long[]? Labels { get; }
    public int Count => Data.Count;

    public TrainingSet(DataSet data, long[]? labels = null)
    {
        if (labels is not null && labels.Length != data.Count)
            throw new ArgumentException($"{labels.Length} labels for {data.Count} samples");
        Data = data;
        Labels = labels;
    }

    /// <summary>
    /// Reads the training data for a model's <paramref name="inputs"/> and, when given, its labels (a .npy of class
    /// indices below <paramref name="classes"/>). uint8 data is divided by <paramref name="uint8Scale"/> (255 for pixels in 0..1).
    /// </summary>
    public static TrainingSet Load(string dataPath, string? labelsPath, IReadOnlyList<DataInput> inputs, int classes, float uint8Scale = 1f)
    {
        var data = CalibrationData.Load(dataPath, inputs, uint8Scale);
        return new TrainingSet(data, labelsPath is null ? null : CalibrationData.LoadLabels(labelsPath, data.Count, classes));
    }

    /// <summary>The first <paramref name="count"/> samples (tests and quick runs).</summary>
    public TrainingSet Take(int count)
    {
        count = Math.Min(count, Count);
        var values = Data.Values.Select((v, i) => v[..(int)(count * Data.SampleLength(i))]).ToArray();
        return new TrainingSet(Data with { Values = values, Count = count }, Labels?[..count]);
    }

    /// <summary>
    /// A seeded split: the samples shuffled once with <paramref name="seed"/>, the last
    /// ⌊count · <paramref name="heldOutFraction"/>⌋ held out (for early stopping and the report), the rest trained on.
    /// </summary>
    public (int[] Train, int[] HeldOut) Split(double heldOutFraction, ulong seed)
    {
        if (!(heldOutFraction >= 0 && heldOutFraction < 1)) throw new ArgumentOutOfRangeException(nameof(heldOutFraction), "the held-out fraction is in [0, 1)");
        var order = Enumerable.Range(0, Count).ToArray();
        new SeededRandom(seed, stream: SplitStream).Shuffle<int>(order);
        int heldOut = (int)(Count * heldOutFraction);
        return (order[..(Count - heldOut)], order[(Count - heldOut)..]);
    }

    /// <summary>The order of <paramref name="train"/> for epoch <paramref name="epoch"/>: its own stream of the seed.</summary>
    public static int[] EpochOrder(int[] train, ulong seed, int epoch)
    {
        var order = (int[])train.Clone();
        new SeededRandom(seed, stream: EpochStreams + (ulong)epoch).Shuffle<int>(order);
        return order;
    }

    /// <summary>Input <paramref name="input"/> of the listed samples, stacked: [samples, …the input's sample shape].</summary>
    public Tensor<float> Batch(int input, ReadOnlySpan<int> samples)
    {
        int length = (int)Data.SampleLength(input);
        var tensor = new Tensor<float>([samples.Length, .. Data.Inputs[input].Shape[1..]]);
        for (int s = 0; s < samples.Length; s++) Data.Sample(input, samples[s]).CopyTo(tensor.Data.AsSpan(s * length, length));
        return tensor;
    }

    /// <summary>The labels of the listed samples (null without labels).</summary>
    public long[]? BatchLabels(ReadOnlySpan<int> samples)
    {
        if (Labels is null) return null;
        var labels = new long[samples.Length];
        for (int s = 0; s < samples.Length; s++) labels[s] = Labels[samples[s]];
        return labels;
    }

    // Streams of the seed: one for the split, one per epoch, one for augmentation; all independent.
    internal const ulong SplitStream = 1, AugmentationStreams = 1UL << 32, EpochStreams = 2;
}
