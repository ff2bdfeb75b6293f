using System.Globalization;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A compressed graph's figures against the original on the report's samples, in the report's measure: rows (or
/// decisions, or for regression samples), rows whose top-1 or decision agrees, rows right against the labels when
/// given, and the output errors.
/// </summary>
public sealed record MeasureFigures(int Samples, int Same, int? Correct, double WorstOutputError, double MeanOutputError, double Rmse)
{
    public static MeasureFigures Of(MeasureTally tally, bool labels, int evaluatedSamples) => new(
        tally.Measure.Kind == OutputMeasure.Regression ? evaluatedSamples : tally.Rows, tally.Same, labels ? tally.RightCompressed : null,
        tally.Worst, tally.Values == 0 ? 0 : tally.SumAbs / tally.Values, tally.Values == 0 ? 0 : Math.Sqrt(tally.SumSquares / tally.Values));

    public double Agreement => Samples == 0 ? 1 : (double)Same / Samples;
    public double? Accuracy => Correct is int c ? (double)c / Math.Max(1, Samples) : null;

    /// <summary>The table's columns for a measure, worded as the report's totals are (<see cref="CompressionReport.Summary"/>).</summary>
    public static (string Header, Func<MeasureFigures, string> Cell)[] Columns(OutputMeasure measure, bool labels, double outputRange)
    {
        var worst = ("worst output error", (Func<MeasureFigures, string>)(f => G3(f.WorstOutputError)));
        var accuracy = ("accuracy", (Func<MeasureFigures, string>)(f => P(f.Accuracy ?? 0)));
        return measure.Kind switch
        {
            OutputMeasure.Binary => labels ? [("decisions flipped", Flipped), accuracy, worst] : [("decisions flipped", Flipped), worst],
            OutputMeasure.Regression =>
            [
                ("worst output error", f => outputRange > 0 ? $"{G3(f.WorstOutputError)} ({P(f.WorstOutputError / outputRange)} of the range)" : G3(f.WorstOutputError)),
                ("mean absolute error", f => G3(f.MeanOutputError)), ("RMSE", f => G3(f.Rmse)),
            ],
            _ => labels ? [("top-1 agreement", f => P(f.Agreement)), accuracy, worst] : [("top-1 agreement", f => P(f.Agreement)), worst],
        };

        static string Flipped(MeasureFigures f) => string.Create(CultureInfo.InvariantCulture, $"{f.Samples - f.Same} of {f.Samples} ({P(1 - f.Agreement)})");
    }

    static string G3(double v) => v.ToString("G3", CultureInfo.InvariantCulture);
    static string P(double fraction) => (100 * fraction).ToString("F2", CultureInfo.InvariantCulture) + "%";
}

/// <summary>
/// A pipeline stage in the report: its name, the weight bytes after it and the measure after it (the last stage's
/// are the report's totals; null for a stage with no snapshot to evaluate, as the mixed search's int8 stage).
/// </summary>
public sealed record StageReport(string Name, long WeightBytes, MeasureFigures? Figures)
{
    /// <summary>What the stage trained (fine-tuning's curve), if it trained.</summary>
    public Training.TrainingResult? Training { get; init; }
}
