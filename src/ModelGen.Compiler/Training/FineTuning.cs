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

    /// <summary>MG0007 for training options that cannot work together, before the model is read.</summary>
    public static void Validate(CompileOptions options)
    {
        void Bad(string message) => throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, message);
        if (options.FineTune && options.TrainingDataPath is null)
            Bad("FineTune (--fine-tune) needs TrainingData (--training-data): the samples to train on");
        if (options.TrainingLabelsPath is not null && options.TrainingDataPath is null)
            Bad("TrainingLabels (--training-labels) are the labels of TrainingData (--training-data), which is not given");
        if (options.TrainingDataPath is not null && !options.FineTune)
            Bad("TrainingData (--training-data) is given but nothing trains on it: add FineTune=\"true\" (--fine-tune)");
        if (options.Epochs < 1 || options.Epochs > 100_000)
            Bad($"Epochs (--epochs) must be from 1 to 100000, not {options.Epochs}");
        if (options.LearningRate is float rate && !(rate > 0 && rate < 10 && float.IsFinite(rate)))
            Bad($"LearningRate (--learning-rate) must be above 0 and below 10, not {rate.ToString(CultureInfo.InvariantCulture)}");
    }
}
