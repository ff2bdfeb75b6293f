using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx;

namespace ModelGen.Compiler.Compress;

/// <summary>One layer's choice: its sensitivity (the loss when only it is int4, or for mixed int8) and the precision kept.</summary>
public sealed record LayerChoice(string Node, double Sensitivity, string Precision);

/// <summary>
/// mixed-weights: each fully connected layer int4, int8 or float32, the fewest bytes that meet the
/// accuracy budget on the calibration data. Every layer starts in int4; each layer's sensitivity is
/// the loss when it alone is int4; the most sensitive layers move to int8, then to float32, one at a
/// time, until the budget holds (all float32 always does).
/// mixed: each layer int8 arithmetic can compute (convolutions, fully connected) int8 or float32 the same
/// way: all start in int8, the most sensitive (the loss when it alone is int8) go back to float32 first.
/// One calibration serves every trial (<see cref="Int8Quantization.SetFloat"/>). Sensitivities are measured on the
/// first <see cref="Samples"/> calibration samples; whether the budget holds, on the samples the build report
/// checks (CompressionReport.MaxSamples), so the search stops only where the report will say "met".
/// </summary>
public static class MixedPrecision
{
    /// <summary>Calibration samples each sensitivity trial evaluates (the search runs the evaluator many times).</summary>
    public const int Samples = 128;

    public static (IReadOnlyDictionary<string, string> Precisions, IReadOnlyList<LayerChoice> Choices) Choose(CompileOptions options, string budget, string? labelsPath)
    {
        bool int8 = options.Compression.Equals("mixed", StringComparison.OrdinalIgnoreCase);
        if (options.CalibrationPath is null) throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"Compression {options.Compression} needs Calibration");
        var original = ModelCompiler.Prepare(options with { Compression = "none" });
        var inputs = original.Inputs.Select(i => new DataInput(i, original[i].Shape!)).ToList();
        var data = CalibrationData.Load(options.CalibrationPath, inputs, options.CalibrationUint8Scale);
        long[]? labels = labelsPath is null ? null : CalibrationData.LoadLabels(labelsPath, data.Count, CompressionReport.Classes(original));
        int batch = Math.Max(1, inputs[0].Shape.FirstOrDefault(1));
        int runs = Math.Min(data.Count / batch, Math.Max(1, CompressionReport.MaxSamples / batch));
        int rankRuns = Math.Min(runs, Math.Max(1, Samples / batch));
        var feeds = Enumerable.Range(0, runs).Select(r => inputs.Select((input, i) =>
        {
            long length = data.SampleLength(i) * batch;
            return (input.Name, Tensor: new TensorData(input.Shape, data.Values[i].AsSpan((int)(r * length), (int)length).ToArray()));
        }).ToDictionary(p => p.Name, p => p.Tensor, StringComparer.Ordinal)).ToList();
        var reference = feeds.Select(f => ReferenceEvaluator.Run(original, f)[original.Outputs[0]].Floats).ToList();
        var (percent, limit) = CompressionReport.ParseBudget(budget, options.ModelPath);

        // The loss of a precision assignment: the top-1 drop (against the labels, else disagreement) or the worst output error.
        // mixed: every candidate quantized once; each trial only sets which layers compute in float32.
        var layers = int8
            ? Int8Quantization.Candidates(original).Select(n => n.Name).ToList()
            : original.Nodes.Where(n => n.OpType == DenseOperator.Name && n.Int("transA", 0) == 0).Select(n => n.Name).ToList();
        var quantized = int8 ? ModelCompiler.Prepare(options with { Compression = "mixed", LayerPrecisions = layers.ToDictionary(l => l, _ => "int8", StringComparer.Ordinal) }) : null;
        double Loss(Dictionary<string, string> precisions, int count)
        {
            Graph graph;
            if (quantized is not null)
            {
                foreach (var node in quantized.Nodes) Int8Quantization.SetFloat(node, !precisions.TryGetValue(node.Name, out var p) || p != "int8");
                graph = quantized;
            }
            else graph = ModelCompiler.Prepare(options with { Compression = "mixed-weights", LayerPrecisions = precisions });
            int classes = CompressionReport.Classes(original);
            int rows = 0, agree = 0, right = 0, rightOriginal = 0;
            double worst = 0;
            for (int r = 0; r < count; r++)
            {
                var y = ReferenceEvaluator.Run(graph, feeds[r])[graph.Outputs[0]].Floats;
                var x = reference[r];
                for (int i = 0; i < y.Length; i++) worst = Math.Max(worst, Math.Abs((double)y[i] - x[i]));
                for (int row = 0; row + classes <= y.Length; row += classes, rows++)
                {
                    int a = ArgMax(x, row, classes), b = ArgMax(y, row, classes);
                    if (a == b) agree++;
                    if (labels is not null && rows < labels.Length) { if (a == labels[rows]) rightOriginal++; if (b == labels[rows]) right++; }
                }
            }
            if (!percent) return worst;
            return labels is not null ? (double)(rightOriginal - right) / Math.Max(1, rows) : 1 - (double)agree / Math.Max(1, rows);
        }

        string lowest = int8 ? "int8" : "int4";
        var chosen = layers.ToDictionary(l => l, _ => lowest, StringComparer.Ordinal);
        var sensitivity = layers.ToDictionary(l => l, l => Loss(layers.ToDictionary(m => m, m => m == l ? lowest : "float32", StringComparer.Ordinal), rankRuns), StringComparer.Ordinal);
        var order = layers.OrderByDescending(l => sensitivity[l]).ToList();
        bool met = Loss(chosen, runs) <= limit + 1e-12;
        foreach (string step in int8 ? new[] { "float32" } : new[] { "int8", "float32" })
            foreach (string layer in order)
            {
                if (met) break;
                chosen[layer] = step;
                met = Loss(chosen, runs) <= limit + 1e-12;
            }
        return (chosen, [.. layers.Select(l => new LayerChoice(l, sensitivity[l], chosen[l]))]);
    }

    static int ArgMax(float[] v, int start, int count)
    {
        int best = 0;
        for (int i = 1; i < count; i++) if (v[start + i] > v[start + best]) best = i;
        return best;
    }
}
