using System.Globalization;
using System.Text;
using System.Text.Json;
using ModelGen.Artifact;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>One layer of the report: its precision, its weight bytes before and after, and the weights' SQNR (infinite: exact; NaN: no weights, as a uint8 Add).</summary>
public sealed record LayerReport(string Node, string Operator, string Precision, long BytesBefore, long BytesAfter, double SqnrDb)
{
    /// <summary>When the model is pruned: the share of the layer's weights that are not zero; else null.</summary>
    public double? KeptShare { get; init; }
}

/// <summary>
/// What compression did, measured on the calibration data: per layer precision, bytes and SQNR; for the
/// model the size ratio, top-1 agreement with the original, accuracy with and without compression when
/// labels are given, and the worst output error. The reference evaluator computes both models (the
/// compressed graph is what the emitted code computes).
/// </summary>
public sealed record CompressionReport(string Model, string Compression, IReadOnlyList<LayerReport> Layers, long WeightBytesBefore, long WeightBytesAfter,
    int Samples, int SameTop1, int? CorrectOriginal, int? CorrectCompressed, double WorstOutputError, double MeanOutputError, string? Budget, bool? BudgetMet)
{
    /// <summary>Most calibration samples evaluated (the evaluator is exact, not fast).</summary>
    public const int MaxSamples = 1000;

    public double Agreement => Samples == 0 ? 1 : (double)SameTop1 / Samples;

    /// <summary>How the outputs were compared (Samples counts rows of class scores, or decisions; for regression, samples).</summary>
    public OutputMeasure Measure { get; init; } = new(OutputMeasure.Classification);

    /// <summary>Calibration samples evaluated.</summary>
    public int EvaluatedSamples { get; init; }

    /// <summary>The original outputs' range (max − min) on the data, and the root mean square output error.</summary>
    public double OutputRange { get; init; }
    public double Rmse { get; init; }

    /// <summary>What the user should check (MG0203 in the build log): uint8 data taken as 0..255.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Limits that applied (the sample cap), stated in the build log and the report.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>The compression pipeline's stages, in the order they ran, with the weight bytes and the measure after each (CompressionPipeline).</summary>
    public IReadOnlyList<StageReport> Stages { get; init; } = [];

    /// <summary>When the model is pruned: how ("2:4", "90%") and the share of the prunable weights now zero, e.g. "2:4, 49.6% of the convolution and fully connected weights zero"; else null.</summary>
    public string? Pruning { get; init; }

    /// <summary>When the model is factorized: the target and each layer's rank, e.g. "energy 0.9: f1 rank 106, f2 rank 41 (1 layer stays whole)"; else null.</summary>
    public string? LowRank { get; init; }

    /// <summary>When the model was distilled: the teacher against the student; else null.</summary>
    public DistillationReport? Distillation { get; init; }

    /// <summary>The emitted code of the compressed model (issue 19): its C# as the generator writes it, and the SIMD level it was emitted for.</summary>
    public EmittedCode? Code { get; set; }

    /// <param name="prepared">The graph <paramref name="artifact"/> was built from, if the caller has it (else prepared again).</param>
    public static CompressionReport Create(CompileOptions options, ModelArtifact artifact, string calibrationPath, string? labelsPath, string? budget, Graph? prepared = null)
    {
        var original = ModelCompiler.Prepare(options.Original);
        // Each stage's snapshot is evaluated beside the original and the compressed graph (the caller's prepared
        // graph has them when its plan kept them: the CLI's does).
        var compressed = prepared ?? ModelCompiler.Prepare(options, CompressionPlan.Parse(options) with { KeepStageGraphs = true });
        var inputs = original.Inputs.Where(i => original[i].Type == ElementType.Float32).Select(i => new DataInput(i, original[i].Shape!)).ToList();
        if (inputs.Count != original.Inputs.Count)
            throw new ModelGenException(ErrorCodes.BadOption, calibrationPath, "the model takes int64 inputs; calibration data feeds float32 inputs only");
        var data = CalibrationData.Load(calibrationPath, inputs, options.CalibrationUint8Scale);
        int batch = Math.Max(1, inputs[0].Shape.FirstOrDefault(1));
        int runs = Math.Min(data.Count / batch, Math.Max(1, MaxSamples / batch));
        if (runs == 0) throw new ModelGenException(ErrorCodes.DataFileInvalid, calibrationPath, $"the data holds {data.Count} samples; the model's batch size is {batch}");
        // Only the first runs·batch samples are evaluated; their labels are the first ones too.
        int classes = Classes(original);
        var measure = OutputMeasure.For(original, options.Measure);
        if (labelsPath is not null && measure.Kind == OutputMeasure.Regression)
            throw new ModelGenException(ErrorCodes.BadOption, labelsPath, $"labels are class indices; the output of {Path.GetFileName(options.ModelPath)} is measured as regression (one value, not computed by a Sigmoid): give no Labels, or set Measure to binary or classification");
        long[]? labels = labelsPath is null ? null : CalibrationData.LoadLabels(labelsPath, data.Count, measure.LabelClasses(classes));
        var tally = new MeasureTally(measure, classes, labels);
        var feeds = Enumerable.Range(0, runs).Select(r =>
        {
            var feed = new Dictionary<string, TensorData>(StringComparer.Ordinal);
            for (int i = 0; i < inputs.Count; i++)
            {
                long length = data.SampleLength(i) * batch;
                feed[inputs[i].Name] = new TensorData(inputs[i].Shape, data.Values[i].AsSpan((int)(r * length), (int)length).ToArray());
            }
            return feed;
        }).ToList();
        // The stages before the last, when more than one ran: the last is the compressed graph, its figures the totals.
        var stages = compressed.CompressionStages;
        var stageGraphs = stages.Count > 1 ? stages.Select(s => s.Snapshot).ToArray() : [];
        var stageTallies = stageGraphs.Select(g => g is null ? null : new MeasureTally(measure, classes, labels)).ToArray();
        // Both models (and the stages) on every run, runs in parallel; the tallies add them in order, so the figures do not depend on threads.
        var outputs = new (float[] A, float[] B, float[]?[] Stages)[runs];
        int evaluated = 0;
        Parallel.For(0, runs, r =>
        {
            outputs[r] = (ReferenceEvaluator.Run(original, feeds[r])[original.Outputs[0]].Floats, ReferenceEvaluator.Run(compressed, feeds[r])[compressed.Outputs[0]].Floats,
                [.. stageGraphs.Select(g => g is null ? null : ReferenceEvaluator.Run(g, feeds[r])[g.Outputs[0]].Floats)]);
            if (options.Progress is { } progress) lock (outputs) progress.Report(new CompileProgress("report", ++evaluated, runs)); // in order: the last says done
        });
        foreach (var (a, b, stageOutputs) in outputs)
        {
            tally.Add(a, b);
            for (int s = 0; s < stageTallies.Length; s++) stageTallies[s]?.Add(a, stageOutputs[s]!);
        }

        var pruning = Pruned(options, compressed);
        var layers = new List<LayerReport>();
        foreach (var node in compressed.Nodes.Where(n => n.OpType is "ConvTranspose" or "LSTM" or "GRU" or "MatMul" or "Gemm"))
            if (node.HasInput(1) && compressed[node.Inputs[1]].Constant is { } kept)
                layers.Add(new LayerReport(node.Name, node.OpType, "float32", kept.Count * 4L, kept.Count * 4L, double.PositiveInfinity));
        var readers = WeightSharing.Readers(compressed);
        // A distilled model's layers are the student's: compared with the student as distilled, not with the teacher's.
        var distilled = DistillationPass.Outcome(compressed);
        var layersBefore = distilled?.Trained ?? original;
        // A factorized layer's two halves are one row under the original's name (the second half carries the annotation).
        var halves = compressed.Nodes.Where(n => n.Annotations.ContainsKey(Compress.LowRank.Annotation))
            .ToDictionary(n => n, n => compressed.Nodes.Single(f => f.Outputs.Count > 0 && f.Outputs[0] == n.Inputs[0]));
        var firstHalves = halves.Values.ToHashSet();
        foreach (var node in compressed.Nodes.Where(n => n.OpType is "Conv" or DenseOperator.Name && n.HasInput(1) && compressed[n.Inputs[1]].Constant is not null))
        {
            if (firstHalves.Contains(node)) continue;
            // "f1\n784→300 rank 41" on a second half: the original layer, then how it was factorized.
            var note = halves.ContainsKey(node) ? node.Annotations[Compress.LowRank.Annotation].Split('\n') : null;
            string name = note?[0] ?? node.Name, lowRank = note is null ? "" : $"low rank: {note[1]}, ";
            var before = layersBefore.Nodes.FirstOrDefault(n => n.Name == name) is { } o ? layersBefore[o.Inputs[1]].Constant : null;
            if (before is null) continue;
            // A float32 layer's bytes after are its bytes before (as the report always gave them); a factorized half's its own.
            var stored = Stored(node, note is null ? before.Count * 4L : null);
            if (halves.TryGetValue(node, out var first))
            {
                var storedFirst = Stored(first, null);
                stored = (storedFirst.Precision == stored.Precision ? stored.Precision : $"{storedFirst.Precision} then {stored.Precision}",
                    storedFirst.BytesAfter + stored.BytesAfter, Compress.LowRank.Product(storedFirst.After, stored.After), storedFirst.Kept + stored.Kept, storedFirst.Count + stored.Count);
            }
            double? kept = pruning is null ? null : stored.Kept / (double)Math.Max(1, stored.Count);
            var after = stored.After;
            double signal = 0, noise = 0;
            for (int i = 0; i < before.Count; i++)
            {
                signal += (double)before.Floats[i] * before.Floats[i];
                noise += ((double)before.Floats[i] - after.Floats[i]) * ((double)before.Floats[i] - after.Floats[i]);
            }
            double sqnr = noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal / noise);
            string stays = node.Annotations.TryGetValue(Compress.LowRank.StaysAnnotation, out var why) ? $" (low rank: stays whole, {why})" : "";
            layers.Add(new LayerReport(name, node.OpType == "Conv" ? "Conv" : node.Str("onnx_op", "Gemm"), lowRank + stored.Precision + stays, before.Count * 4L, stored.BytesAfter, sqnr) { KeptShare = kept });
        }

        // A layer's weights as stored: its precision, bytes, the weights it computes with, and its nonzero and all weights.
        (string Precision, long BytesAfter, TensorData After, long Kept, long Count) Stored(Node node, long? float32Bytes)
        {
            var q = WeightQuantization.Of(node);
            var q4 = Int4Quantization.Of(node);
            var a8 = Int8Quantization.Of(node);
            var c8 = Int8Quantization.OfConv(node);
            var after = compressed[node.Inputs[1]].Constant!;
            long nonzero = after.Floats.Count(v => v != 0), count = after.Count;
            // int8 arithmetic keeps the graph's float weights; the weights it uses are q·sw, sw = multiplier / sx.
            if (a8 is not null)
                after = new TensorData(after.Shape, [.. a8.Q.Select((v, i) => v * (a8.Multipliers[i / a8.K] / a8.Input.Scale))]);
            if (c8 is not null) after = new TensorData(after.Shape, c8.Dequantized());
            string precision = q4 is not null
                ? $"int4 weights, per-channel scales, {q4.Method}" + (double.IsNaN(q4.RoundToNearestError) ? "" : FormattableString.Invariant($" (output error on calibration: round to nearest {q4.RoundToNearestError:G3}, reconstruction {q4.ReconstructionError:G3})"))
                : (a8?.Input ?? c8?.Input) is { } input ? FormattableString.Invariant($"int8 arithmetic: uint8 input (scale {input.Scale:G4}, zero point {input.ZeroPoint}), int8 weights, int32 sums")
                : q is not null ? "int8 weights, per-channel scales"
                : node.Form is SharedWeightsForm shared ? SharedPrecision(shared.Weights, TiedTo(compressed, node))
                : ((node.Form as SparseDenseForm)?.Shared ?? (node.Form as SparseConvForm)?.Shared) is { } sparseShared ? SharedPrecision(sparseShared, null) : "float32";
            // Stored sparse (pruned): the format, and the bytes it embeds.
            precision += node.Form switch
            {
                SparseDenseForm f => $", stored sparse ({Format(f.Weights, f.Shared)})",
                SparseConvForm f => $", stored sparse ({Format(f.Weights, f.Shared)})",
                _ when options.WeightSharing is not null && node.Form is Float32Form && WeightSharing.Exclusion(compressed, node, readers) is { } why => $", not shared: {why}",
                _ => "",
            };
            var bias = node.HasInput(2) ? compressed[node.Inputs[2]].Constant?.Floats : null;
            long bytesAfter = q4 is not null ? q4.Packed.LongLength + q4.Scales.Length * 4L
                : a8 is not null ? a8.Q.LongLength + (long)a8.N * AccumulatorBias.PerChannelBytes(a8.Bias(bias), a8.MultiplierRatios)
                : c8 is not null ? c8.Q.LongLength + (long)c8.M * AccumulatorBias.PerChannelBytes(c8.Bias(bias), c8.MultiplierRatios)
                : node.Form is SparseDenseForm sd ? sd.Bytes : node.Form is SparseConvForm sc ? sc.Bytes
                : node.Form is SharedWeightsForm sw ? (TiedTo(compressed, node) is null ? sw.Weights.DenseBytes : 0) // a tied weight counts at its first layer
                : q is not null ? q.Q.LongLength + q.Scales.Length * 4L : float32Bytes ?? after.Count * 4L;
            return (precision, bytesAfter, after, nonzero, count);
        }
        // Residual Adds between int8 layers add uint8 activations (no weights).
        foreach (var node in compressed.Nodes.Where(n => n.OpType == "Add"))
            if (Int8Quantization.ByteAddOf(node) is { } add)
                layers.Add(new LayerReport(node.Name, "Add", FormattableString.Invariant(
                    $"uint8 activations added in integers: inputs (scale {add.A.Scale:G4}, zero point {add.A.ZeroPoint}) and (scale {add.B.Scale:G4}, zero point {add.B.ZeroPoint}), output (scale {add.Output.Scale:G4}, zero point {add.Output.ZeroPoint})"),
                    0, 0, double.NaN));
        var originalArtifact = ModelCompiler.Compile(options.Original);
        long Bytes(ModelArtifact m) => m.Tensors.Where(t => t.Storage == TensorStorage.Weight && t.Data is not null).Select(t => t.Data!).Distinct().Sum(d => (long)d.Length);

        var report = new CompressionReport(Path.GetFileName(options.ModelPath), options.Compression, layers, Bytes(originalArtifact), Bytes(artifact),
            measure.Kind == OutputMeasure.Regression ? runs * batch : tally.Rows, tally.Same, labels is null ? null : tally.RightOriginal, labels is null ? null : tally.RightCompressed, tally.Worst, tally.Values == 0 ? 0 : tally.SumAbs / tally.Values, budget, null)
        {
            Measure = measure, Pruning = pruning, LowRank = LowRankSummary(options, compressed, halves.Keys), Distillation = distilled is null ? null : DistillationReport.Of(distilled, original, originalArtifact, compressed, artifact), EvaluatedSamples = runs * batch, OutputRange = tally.Range, Rmse = tally.Values == 0 ? 0 : Math.Sqrt(tally.SumSquares / tally.Values),
        };
        var totals = MeasureFigures.Of(tally, labels is not null, runs * batch);
        report = report with { Stages = [.. stages.Select((s, i) => new StageReport(s.Name, s.WeightBytes, i == stages.Count - 1 ? totals : stageTallies[i] is { } t ? MeasureFigures.Of(t, labels is not null, runs * batch) : null) { Training = s.Training })], Warnings = DataWarnings(data, options.CalibrationUint8Scale), Notes = runs * batch < data.Count ? [$"evaluated on the first {runs * batch:N0} of the {data.Count:N0} calibration samples (ModelGen evaluates at most {MaxSamples:N0})"] : [] };
        return budget is null ? report : report with { BudgetMet = report.Meets(budget, options.ModelPath) };
    }

    /// <summary>"energy 0.9: f1 rank 106, f2 rank 41, f3 rank 9" (and how many layers stayed whole) when the options factorize; else null.</summary>
    static string? LowRankSummary(CompileOptions options, Graph compressed, IEnumerable<Node> secondHalves)
    {
        if (LowRankTarget.Parse(options.LowRank, options.ModelPath) is not { } target) return null;
        var ranks = secondHalves.Select(n => n.Annotations[Compress.LowRank.Annotation].Split('\n')).Select(note => $"{note[0]} {note[1][(note[1].IndexOf("rank", StringComparison.Ordinal))..]}").ToList();
        int stays = compressed.Nodes.Count(n => n.Annotations.ContainsKey(Compress.LowRank.StaysAnnotation));
        return $"{target}: " + (ranks.Count == 0 ? "no layer factorized" : string.Join(", ", ranks)) + (stays == 0 ? "" : $" ({stays} {(stays == 1 ? "layer stays" : "layers stay")} whole)");
    }

    /// <summary>A sparse layout as the report names it: "2:4" or "8-bit relative indices".</summary>
    static string Format(SparseWeights w, SharedWeights? shared) => (w.Pattern == SparsePattern.NOfM ? $"{w.N}:{w.M}" : $"{w.IndexBits}-bit relative indices")
        + (shared is null ? "" : $", {shared.Bits}-bit codes");

    /// <summary>"2:4, 49.6% of the convolution and fully connected weights zero" when the options prune; else null.</summary>
    static string? Pruned(CompileOptions options, Graph compressed)
    {
        if (options.Pruning is null && string.IsNullOrWhiteSpace(options.PruningKind)) return null;
        var plan = CompressionPlan.Parse(options);
        if (plan.Pruning is not double sparsity) return null;
        if (plan.PruningKind.Pattern == PruningPattern.Channels)
            return FormattableString.Invariant($"{sparsity * 100:0.#}% of the channels pruned, {MultiplyAdds.Total(compressed):N0} multiply-adds");
        var weights = MagnitudePruning.PrunableWeights(compressed).Select(w => compressed[w.Weight].Constant!.Floats).ToList();
        double zero = weights.Sum(w => (long)w.Count(v => v == 0)) / (double)Math.Max(1, weights.Sum(w => (long)w.Length));
        return FormattableString.Invariant($"{PruningPass.Describe(plan.PruningKind, sparsity)}, {zero * 100:F1}% of the convolution and fully connected weights zero");
    }

    /// <summary>uint8 data taken as 0..255: right for a model trained on raw pixels, ruinous for one trained on 0..1.</summary>
    static string[] DataWarnings(DataSet data, float uint8Scale) =>
        uint8Scale == 1 && data.RawUint8Inputs.Count > 0
            ? [$"the calibration data of input {string.Join(", ", data.RawUint8Inputs.Select(i => $"'{i}'"))} is uint8, taken as 0..255; if the model was trained on values scaled to 0..1, set CalibrationScale=\"255\" (--calibration-scale 255), else the int8 ranges are calibrated on values it never sees"]
            : [];

    /// <summary>
    /// The budget: "0.5%" is the most top-1 may drop (accuracy against the labels when given, else
    /// agreement with the original); a plain number is the largest output error allowed.
    /// </summary>
    bool Meets(string budget, string modelPath)
    {
        var (percent, limit) = ParseBudget(budget, modelPath);
        return percent ? Drop <= limit + 1e-11 : WorstOutputError <= limit;
    }

    /// <summary>
    /// What a budget in percent bounds, as a fraction: the top-1 or decision drop (accuracy against the labels, or
    /// disagreement with the original), or for regression the worst output error relative to the original outputs' range.
    /// </summary>
    public double Drop => Measure.Kind == OutputMeasure.Regression
        ? (OutputRange > 0 ? WorstOutputError / OutputRange : WorstOutputError > 0 ? double.PositiveInfinity : 0)
        : TopOneDrop;

    /// <summary>
    /// An AccuracyBudget: a top-1 drop in percent, 0% to 100% (returned as a fraction), or an output
    /// error bound, finite and at least 0. Anything else (200%, NaN, Infinity, 1e400, -1) is MG0007.
    /// </summary>
    public static (bool TopOne, double Limit) ParseBudget(string budget, string file)
    {
        string b = budget.Trim();
        bool topOne = b.EndsWith('%');
        if (double.TryParse(topOne ? b[..^1] : b, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= 0 && (!topOne || v <= 100))
            return (topOne, topOne ? v / 100 : v);
        throw new ModelGenException(ErrorCodes.BadOption, file,
            $"AccuracyBudget '{budget}' is out of range: give a top-1 drop in percent from 0% to 100% (\"0.5%\") or an output error bound, a finite number from 0 (\"0.01\")");
    }

    /// <summary>The top-1 loss as a fraction: accuracy lost against the labels, or disagreement with the original.</summary>
    public double TopOneDrop => CorrectOriginal is int o && CorrectCompressed is int c ? (double)(o - c) / Math.Max(1, Samples) : 1 - Agreement;

    /// <summary>Classes of the model: the last axis of its first output.</summary>
    public static int Classes(Graph graph) => Math.Max(1, graph[graph.Outputs[0]].Shape!.LastOrDefault(1));

    static string P(double fraction) => (100 * fraction).ToString("F2", CultureInfo.InvariantCulture) + "%";

    /// <summary>The report as lines for the build log.</summary>
    public string Summary()
    {
        var s = new StringBuilder();
        string what = (Pruning is null ? $"compression {Compression}" : Compression == "none" ? $"pruned {Pruning}" : $"compression {Compression}, pruned {Pruning}")
            + (LowRank is null ? "" : $", low rank {LowRank}");
        s.Append(CultureInfo.InvariantCulture, $"{Model}: {what}: weights {WeightBytesBefore:N0} → {WeightBytesAfter:N0} bytes ({P((double)WeightBytesAfter / Math.Max(1, WeightBytesBefore))}); ");
        string accuracy = CorrectOriginal is int o && CorrectCompressed is int c ? $", accuracy {P((double)c / Math.Max(1, Samples))} (original {P((double)o / Math.Max(1, Samples))})" : "";
        switch (Measure.Kind)
        {
            case OutputMeasure.Binary:
                s.Append(CultureInfo.InvariantCulture, $"on {EvaluatedSamples} calibration samples (binary, threshold {Measure.Threshold:G}) {Samples - SameTop1} of {Samples} decisions flip ({P(1 - Agreement)}){accuracy}, worst output error {WorstOutputError:G3}");
                break;
            case OutputMeasure.Regression:
                s.Append(CultureInfo.InvariantCulture, $"on {EvaluatedSamples} calibration samples (regression) worst output error {WorstOutputError:G3} ({P(Drop)} of the original outputs' range {OutputRange:G3}), mean absolute error {MeanOutputError:G3}, RMSE {Rmse:G3}");
                break;
            default:
                s.Append(CultureInfo.InvariantCulture, $"on {Samples} calibration samples top-1 agrees with the original on {SameTop1} ({P(Agreement)}){accuracy}, worst output error {WorstOutputError:G3}");
                break;
        }
        if (Distillation is { } d) s.Append(d.Summary());
        if (Budget is not null) s.Append(CultureInfo.InvariantCulture, $"; budget {Budget}: {(BudgetMet == true ? "met" : "MISSED")}");
        return s.ToString();
    }

    /// <summary>The first layer reading <paramref name="node"/>'s weight when that is another (layers tied by weight sharing), else null.</summary>
    static Node? TiedTo(Graph graph, Node node) => graph.Nodes.First(n => n.HasInput(1) && n.Inputs[1] == node.Inputs[1]) is var first && first != node ? first : null;

    static string SharedPrecision(SharedWeights w, Node? tiedTo) =>
        $"shared weights: {w.Bits}-bit codes into a codebook of {w.Codebook.Length} float32 values{(w.ZeroCode ? " (code 0: the pruned zeros)" : "")}{(tiedTo is null ? "" : $", tied to {tiedTo.Name}")}";

    public string Markdown()
    {
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"# ModelGen compression report: {Model}");
        s.AppendLine();
        s.AppendLine(Summary());
        s.AppendLine();
        foreach (var w in Warnings) s.AppendLine($"**Warning:** {w}.").AppendLine();
        foreach (var n in Notes) s.AppendLine($"Note: {n}.").AppendLine();
        if (Code is { } code) s.AppendLine(CultureInfo.InvariantCulture, $"Emitted code: {code.Describe()}; weights {WeightBytesAfter:N0} bytes.").AppendLine();
        Distillation?.AppendTable(s, this);
        if (Stages.Count > 0)
        {
            var columns = MeasureFigures.Columns(Measure, CorrectCompressed is not null, OutputRange);
            s.AppendLine($"| stage | weight bytes after it |{string.Concat(columns.Select(c => $" {c.Header} after it |"))}");
            s.AppendLine($"|---|---|{string.Concat(columns.Select(_ => "---|"))}");
            foreach (var stage in Stages)
                s.AppendLine(CultureInfo.InvariantCulture, $"| {stage.Name} | {stage.WeightBytes:N0} |{string.Concat(columns.Select(c => $" {(stage.Figures is { } f ? c.Cell(f) : "—")} |"))}");
            s.AppendLine();
        }
        foreach (var stage in Stages)
            if (stage.Training is { } training) AppendTrainingCurve(s, stage.Name, training);
        // The kept share only for a pruned model, so other reports read as before.
        bool pruned = Pruning is not null;
        s.AppendLine($"| layer | operator | precision |{(pruned ? " weights kept |" : "")} bytes before | bytes after | weight SQNR (dB) |");
        s.AppendLine($"|---|---|---|{(pruned ? "---|" : "")}---|---|---|");
        foreach (var l in Layers)
            s.AppendLine(CultureInfo.InvariantCulture, $"| {l.Node.Replace("|", "\\|")} | {l.Operator} | {l.Precision} |{(pruned ? $" {(l.KeptShare is double k ? P(k) : "—")} |" : "")} {l.BytesBefore:N0} | {l.BytesAfter:N0} | {(double.IsNaN(l.SqnrDb) ? "—" : double.IsInfinity(l.SqnrDb) ? "exact" : l.SqnrDb.ToString("F1", CultureInfo.InvariantCulture))} |");
        return s.ToString();
    }

    /// <summary>A training stage's curve: the figures before training (epoch 0) and after each epoch.</summary>
    static void AppendTrainingCurve(StringBuilder s, string stage, Training.TrainingResult r)
    {
        string measure = r.AccuracyIsAgreement ? "held-out agreement with the original" : "held-out accuracy";
        s.AppendLine(CultureInfo.InvariantCulture, $"Training ({stage}): {Training.TrainingSummary.Summary(r)}.").AppendLine();
        s.AppendLine($"| epoch | training loss | learning rate | held-out loss | {measure} | seconds |");
        s.AppendLine("|---|---|---|---|---|---|");
        static string Cell(double? v, string format) => v is double d && !double.IsNaN(d) ? d.ToString(format, CultureInfo.InvariantCulture) : "—";
        foreach (var e in (r.Before is { } b ? [b] : Array.Empty<Training.EpochResult>()).Concat(r.Epochs))
            s.AppendLine(CultureInfo.InvariantCulture, $"| {e.Epoch}{(e.Epoch == r.BestEpoch ? " (kept)" : "")} | {Cell(e.TrainLoss, "G4")} | {Cell(e.LearningRate == 0 ? null : e.LearningRate, "G3")} | {Cell(e.HeldOutLoss, "G4")} | {Cell(e.HeldOutAccuracy * 100, "F2")}{(e.HeldOutAccuracy is null ? "" : "%")} | {e.Elapsed.TotalSeconds:F1} |");
        s.AppendLine();
    }

    public string Json() => JsonSerializer.Serialize(new
    {
        model = Model, compression = Compression, pruning = Pruning, lowRank = LowRank, measure = Measure.Kind, threshold = Measure.Kind == OutputMeasure.Binary ? (double?)Measure.Threshold : null,
        evaluatedSamples = EvaluatedSamples, decisionsFlipped = Measure.Kind == OutputMeasure.Binary ? (int?)(Samples - SameTop1) : null,
        outputRange = OutputRange, rmse = Rmse, weightBytesBefore = WeightBytesBefore, weightBytesAfter = WeightBytesAfter, samples = Samples,
        top1Agreement = Measure.Kind == OutputMeasure.Regression ? (double?)null : Agreement, accuracyOriginal = CorrectOriginal is int o ? (double?)o / Math.Max(1, Samples) : null,
        accuracyCompressed = CorrectCompressed is int c ? (double?)c / Math.Max(1, Samples) : null, worstOutputError = WorstOutputError, meanOutputError = MeanOutputError,
        budget = Budget, budgetMet = BudgetMet, warnings = Warnings, notes = Notes, stages = Stages.Select(t => new
        {
            name = t.Name, weightBytes = t.WeightBytes,
            top1Agreement = Measure.Kind == OutputMeasure.Regression ? null : t.Figures?.Agreement, decisionsFlipped = Measure.Kind == OutputMeasure.Binary ? t.Figures?.Samples - t.Figures?.Same : null,
            accuracyCompressed = t.Figures?.Accuracy, worstOutputError = t.Figures?.WorstOutputError, meanOutputError = t.Figures?.MeanOutputError, rmse = t.Figures?.Rmse,
            training = t.Training is { } r ? new
            {
                summary = Training.TrainingSummary.Summary(r), bestEpoch = r.BestEpoch, stopped = r.Stopped.ToString(), why = r.Why, seconds = r.Time.TotalSeconds,
                trainSamples = r.TrainSamples, heldOutSamples = r.HeldOutSamples, heldOutIsAgreement = r.AccuracyIsAgreement,
                epochs = (r.Before is { } b ? [b] : Array.Empty<Training.EpochResult>()).Concat(r.Epochs).Select(e => new
                {
                    epoch = e.Epoch, trainLoss = double.IsNaN(e.TrainLoss) ? (double?)null : e.TrainLoss, learningRate = e.LearningRate,
                    heldOutLoss = e.HeldOutLoss, heldOutAccuracy = e.HeldOutAccuracy, seconds = e.Elapsed.TotalSeconds,
                }),
            } : null,
        }),
        distillation = Distillation is { } d ? new
        {
            student = d.Student, heldOutAgreement = d.HeldOutAgreement, heldOutSamples = d.HeldOutSamples, warning = d.Warning,
            teacherParameters = d.TeacherParameters, studentParameters = d.StudentParameters, teacherMultiplyAdds = d.TeacherMultiplyAdds,
            studentMultiplyAdds = d.StudentMultiplyAdds, teacherArenaBytes = d.TeacherArenaBytes, studentArenaBytes = d.StudentArenaBytes,
        } : null,
        code = Code is { } code ? new { csharpCharacters = code.Characters, csharpLines = code.Lines, weightLiteralCharacters = code.WeightCharacters, kernels = code.Kernels, simd = code.Simd, arenaBytes = code.ArenaBytes } : null,
        layers = Layers.Select(l => new { node = l.Node, op = l.Operator, precision = l.Precision, keptShare = l.KeptShare, bytesBefore = l.BytesBefore, bytesAfter = l.BytesAfter, sqnrDb = double.IsInfinity(l.SqnrDb) || double.IsNaN(l.SqnrDb) ? (double?)null : l.SqnrDb }),
    }, new JsonSerializerOptions { WriteIndented = true });
}

/// <summary>
/// The size of a model's emitted code as the compile step can measure it: characters and lines of the C#
/// the generator writes (the same text), without the class that holds the weights' literals (counted apart:
/// they are data, and their bytes are the weights). The IL and native bytes the code becomes depend on the
/// C# compiler and on NativeAOT's instruction set; tests measure those (docs/implementation-notes.md).
/// </summary>
public sealed record EmittedCode(long Characters, long Lines, long WeightCharacters, int Kernels, string Simd, long ArenaBytes)
{
    public static EmittedCode Of(string source, ModelGen.Artifact.ModelArtifact artifact)
    {
        // The weights are the class's last member, `static class Weights` (ModelEmitter); without one, all is code.
        var weights = System.Text.RegularExpressions.Regex.Match(source, @"^[ \t]*static class Weights\b", System.Text.RegularExpressions.RegexOptions.Multiline);
        int split = weights.Success ? weights.Index : source.Length;
        return new(split, source.AsSpan(0, split).Count('\n'), source.Length - split, artifact.Nodes.Count, artifact.Simd.ToText(), artifact.ScratchBytes);
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Characters:N0} characters of C# ({Lines:N0} lines, {Kernels:N0} kernels, Simd {Simd}; the weights' literals {WeightCharacters:N0} characters more); arena {ArenaBytes:N0} bytes");
}
