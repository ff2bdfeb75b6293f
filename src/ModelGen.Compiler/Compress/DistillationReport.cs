using System.Globalization;
using System.Text;
using ModelGen.Artifact;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// The teacher against the distilled student in the compression report: parameters, multiply-adds and the emitted
/// code's arena of each, and the student's held-out agreement with the teacher (training data). Weight bytes, accuracy
/// on the labels and agreement on the calibration samples are the report's own before/after figures.
/// </summary>
public sealed record DistillationReport(string Student, long TeacherParameters, long StudentParameters, long TeacherMultiplyAdds, long StudentMultiplyAdds,
    long TeacherArenaBytes, long StudentArenaBytes, double? HeldOutAgreement, int HeldOutSamples, string? Warning)
{
    public static DistillationReport Of(DistillationOutcome outcome, Graph teacher, ModelArtifact teacherArtifact, Graph student, ModelArtifact studentArtifact) =>
        new(outcome.Student, Parameters(teacher), Parameters(outcome.Trained), MultiplyAdds.Total(teacher), MultiplyAdds.Total(student),
            teacherArtifact.ScratchBytes, studentArtifact.ScratchBytes, outcome.HeldOutAgreement, outcome.HeldOutSamples, outcome.Warning);

    /// <summary>The float32 constants the nodes read, each once: a float32 graph's parameters.</summary>
    public static long Parameters(Graph graph)
    {
        var counted = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
                if (input.Length > 0 && graph[input].Constant is { Type: ElementType.Float32 } c && counted.Add(input)) total += c.Count;
        return total;
    }

    /// <summary>"; distilled into mlp.onnx (held-out agreement with the teacher 97.10%)".</summary>
    public string Summary() => HeldOutAgreement is double a
        ? string.Create(CultureInfo.InvariantCulture, $"; distilled into {Student} (held-out agreement with the teacher {a * 100:F2}% on {HeldOutSamples:N0} training samples)")
        : $"; distilled into {Student}";

    /// <summary>The side-by-side table of the Markdown report, and the warning when the agreement is low.</summary>
    public void AppendTable(StringBuilder s, CompressionReport report)
    {
        static string P(double fraction) => (100 * fraction).ToString("F2", CultureInfo.InvariantCulture) + "%";
        s.AppendLine(CultureInfo.InvariantCulture, $"Distillation: the teacher {report.Model} against the student {Student} as emitted.").AppendLine();
        if (Warning is not null) s.AppendLine($"**Warning:** {Warning}.").AppendLine();
        s.AppendLine("| | teacher | student |");
        s.AppendLine("|---|---|---|");
        s.AppendLine(CultureInfo.InvariantCulture, $"| parameters | {TeacherParameters:N0} | {StudentParameters:N0} |");
        s.AppendLine(CultureInfo.InvariantCulture, $"| weight bytes | {report.WeightBytesBefore:N0} | {report.WeightBytesAfter:N0} |");
        s.AppendLine(CultureInfo.InvariantCulture, $"| multiply-adds | {TeacherMultiplyAdds:N0} | {StudentMultiplyAdds:N0} |");
        s.AppendLine(CultureInfo.InvariantCulture, $"| arena bytes | {TeacherArenaBytes:N0} | {StudentArenaBytes:N0} |");
        if (report.CorrectOriginal is int o && report.CorrectCompressed is int c)
            s.AppendLine(CultureInfo.InvariantCulture, $"| accuracy ({report.Samples:N0} calibration samples) | {P((double)o / Math.Max(1, report.Samples))} | {P((double)c / Math.Max(1, report.Samples))} |");
        if (report.Measure.Kind != OutputMeasure.Regression)
            s.AppendLine(CultureInfo.InvariantCulture, $"| top-1 agreement with the teacher ({report.Samples:N0} calibration samples) | — | {P(report.Agreement)} |");
        if (HeldOutAgreement is double a)
            s.AppendLine(CultureInfo.InvariantCulture, $"| top-1 agreement with the teacher ({HeldOutSamples:N0} held-out training samples) | — | {P(a)} |");
        s.AppendLine().AppendLine("Latency of the generated code: `modelgen bench` times it (see docs/distillation.md).").AppendLine();
    }
}
