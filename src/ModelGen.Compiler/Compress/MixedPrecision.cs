using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>One layer's choice: its sensitivity (the loss when only it is int4, or for mixed int8; NaN when every layer at that precision met the budget, so none was measured) and the precision kept.</summary>
public sealed record LayerChoice(string Node, double Sensitivity, string Precision);

/// <summary>
/// mixed-weights: each fully connected layer int4, int8 or float32, the fewest bytes that meet the
/// accuracy budget on the calibration data. Every layer starts in int4; each layer's sensitivity is
/// the loss when it alone is int4; the most sensitive layers move to int8, then to float32, one at a
/// time, until the budget holds (all float32 always does).
/// mixed: each layer int8 arithmetic can compute (convolutions, fully connected) int8 or float32 the same
/// way: all start in int8, the most sensitive (the loss when it alone is int8) go back to float32 first.
/// The model is imported once; every trial is a clone of it (mixed: a clone of the one calibrated graph, its layers
/// set by <see cref="Int8Quantization.SetPrecisions"/>). Sensitivities are measured on the
/// first <see cref="Samples"/> calibration samples; whether the budget holds, on the samples the build report
/// checks (CompressionReport.MaxSamples), so the search stops only where the report will say "met".
/// </summary>
public static class MixedPrecision
{
    /// <summary>Calibration samples each sensitivity trial evaluates (the search runs the evaluator many times).</summary>
    public const int Samples = 128;

    public static (IReadOnlyDictionary<string, string> Precisions, IReadOnlyList<LayerChoice> Choices) Choose(CompileOptions options, string budget, string? labelsPath) =>
        Choose(options, budget, labelsPath, out _);

    /// <param name="prepared">The graph <see cref="ModelCompiler.Prepare(CompileOptions)"/> gives for the options with the chosen precisions.</param>
    public static (IReadOnlyDictionary<string, string> Precisions, IReadOnlyList<LayerChoice> Choices) Choose(CompileOptions options, string budget, string? labelsPath, out Graph? prepared)
    {
        var search = Search(options, budget, labelsPath);
        prepared = search.Prepared;
        return (search.Plan.LayerPrecisions!, search.Choices);
    }

    /// <summary>The search: the plan it chose (each layer's precision), the choices with their sensitivities, and the graph that plan prepares.</summary>
    public sealed record Result(CompressionPlan Plan, IReadOnlyList<LayerChoice> Choices, Graph Prepared);

    public static Result Search(CompileOptions options, string budget, string? labelsPath)
    {
        bool int8 = options.Compression.Equals("mixed", StringComparison.OrdinalIgnoreCase);
        if (options.CalibrationPath is null) throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"Compression {options.Compression} needs Calibration");
        // The one import: the float32 model, the reference of every trial; each trial compresses a clone.
        var original = ModelCompiler.Normalized(options);
        CompressionPlan PlanFor(IReadOnlyDictionary<string, string> precisions) => CompressionPlan.Parse(options with { LayerPrecisions = precisions });
        Graph Compressed(Graph source, CompressionPlan plan)
        {
            var graph = source.Clone();
            CompressionPipeline.Run(graph, plan, options.Progress);
            return graph;
        }
        var inputs = original.Inputs.Select(i => new DataInput(i, original[i].Shape!)).ToList();
        var data = CalibrationData.Load(options.CalibrationPath, inputs, options.CalibrationUint8Scale);
        int classes = CompressionReport.Classes(original);
        var measure = OutputMeasure.For(original, options.Measure);
        long[]? labels = labelsPath is null || measure.Kind == OutputMeasure.Regression ? null : CalibrationData.LoadLabels(labelsPath, data.Count, measure.LabelClasses(classes));
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
        var quantized = int8 ? Compressed(original, PlanFor(layers.ToDictionary(l => l, _ => "int8", StringComparer.Ordinal))) : null;
        // mixed-weights: a layer's int8 weights are its own, its int4 ones are reconstructed on the activations of the model
        // whose int8 layers are quantized (the others float), so they depend on that set alone: one preparation per
        // set of int8 layers serves every trial with that set. A trial points each layer at the weights of its precision.
        Graph? trial = null;
        var trialWeights = new Dictionary<string, (Ir.Value Value, TensorData Float)>(StringComparer.Ordinal);
        var preparedSets = new Dictionary<string, Graph>(StringComparer.Ordinal);
        if (!int8)
        {
            trial = original.Clone();
            foreach (var node in trial.Nodes.Where(n => layers.Contains(n.Name)))
            {
                string name = node.Inputs[1] + ".trial";
                while (trial.Values.ContainsKey(name)) name += "_";
                var value = trial.GetOrAdd(name);
                var source = trial[node.Inputs[1]];
                (value.Constant, value.Shape, value.Type) = (source.Constant, source.Shape, source.Type);
                trialWeights[node.Name] = (value, source.Constant!);
                node.Inputs[1] = name;
            }
        }
        int trials = 0, totalTrials = layers.Count * (int8 ? 2 : 3) + 1;
        double Loss(Dictionary<string, string> precisions, int count)
        {
            Graph graph;
            if (quantized is not null)
            {
                graph = quantized.Clone();
                Int8Quantization.SetPrecisions(graph, node => !precisions.TryGetValue(node.Name, out var p) || p != "int8");
            }
            else
            {
                string set = string.Join("\n", layers.Where(l => precisions.GetValueOrDefault(l) == "int8"));
                if (!preparedSets.TryGetValue(set, out var source))
                    preparedSets[set] = source = Compressed(original, PlanFor(layers.ToDictionary(l => l, l => precisions.GetValueOrDefault(l) == "int8" ? "int8" : "int4", StringComparer.Ordinal)));
                foreach (var node in source.Nodes)
                    if (trialWeights.TryGetValue(node.Name, out var weights))
                        weights.Value.Constant = precisions.GetValueOrDefault(node.Name, "float32") == "float32" ? weights.Float : source[node.Inputs[1]].Constant;
                graph = trial!;
            }
            options.Progress?.Report(new CompileProgress(options.Compression + " search", ++trials, totalTrials));
            var tally = new MeasureTally(measure, classes, labels);
            var outputs = new float[count][];
            // Runs in parallel, tallied in order: the same loss whatever the thread count.
            Parallel.For(0, count, r => outputs[r] = ReferenceEvaluator.Run(graph, feeds[r])[graph.Outputs[0]].Floats);
            for (int r = 0; r < count; r++) tally.Add(reference[r], outputs[r]);
            return tally.Loss(percent);
        }

        string lowest = int8 ? "int8" : "int4";
        var chosen = layers.ToDictionary(l => l, _ => lowest, StringComparer.Ordinal);
        // Every layer at the lowest precision first: when that meets the budget, the search is over and the
        // sensitivities (one trial per layer) are not needed to choose (NaN: not measured).
        bool met = Loss(chosen, runs) <= limit + 1e-12;
        var sensitivity = layers.ToDictionary(l => l, l => met ? double.NaN : Loss(layers.ToDictionary(m => m, m => m == l ? lowest : "float32", StringComparer.Ordinal), rankRuns), StringComparer.Ordinal);
        var order = layers.OrderByDescending(l => sensitivity[l]).ToList();
        foreach (string step in int8 ? new[] { "float32" } : new[] { "int8", "float32" })
            foreach (string layer in order)
            {
                if (met) break;
                chosen[layer] = step;
                met = Loss(chosen, runs) <= limit + 1e-12;
            }
        // The quantized graph with the chosen layers in float32 is what Prepare gives for the chosen precisions.
        var plan = PlanFor(chosen);
        Graph prepared;
        if (quantized is not null)
        {
            prepared = quantized.Clone();
            prepared.CompressionStages[^1] = prepared.CompressionStages[^1] with { Snapshot = quantized }; // the report evaluates the int8 stage on it
            Int8Quantization.SetPrecisions(prepared, node => !chosen.TryGetValue(node.Name, out var p) || p != "int8");
            prepared.CompressionStages.Add(new CompressionStage("mixed precision: the chosen layers in float32", CompressionPipeline.WeightBytes(prepared)));
        }
        else prepared = Compressed(original, plan with { KeepStageGraphs = true }); // a report follows: it evaluates each stage
        return new Result(plan, [.. layers.Select(l => new LayerChoice(l, sensitivity[l], chosen[l]))], prepared);
    }
}
