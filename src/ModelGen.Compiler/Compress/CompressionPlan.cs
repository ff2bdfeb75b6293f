using ModelGen.Artifact;
using ModelGen.Compiler.Data;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// What compression a build asks for, parsed once from <see cref="CompileOptions"/> (item metadata or CLI options):
/// the Compression value, each layer's precision (mixed, mixed-weights) and the calibration options. Bad values
/// are MG0007 here, before the model is read. <see cref="Passes"/> turns it into the pipeline's passes.
/// </summary>
public sealed record CompressionPlan
{
    /// <summary>One of <see cref="ModelCompiler.CompressionKinds"/>, lower case.</summary>
    public string Kind { get; init; } = "none";

    /// <summary>mixed-weights: each fully connected layer's precision by node name (int4, int8, float32); mixed: each int8-capable layer's (int8, float32). Else null.</summary>
    public IReadOnlyDictionary<string, string>? LayerPrecisions { get; init; }

    /// <summary>The calibration data file (int8 sets ranges on it; int4 reconstructs on it when given).</summary>
    public string? CalibrationPath { get; init; }

    /// <summary>Divisor for uint8 calibration data.</summary>
    public float CalibrationUint8Scale { get; init; } = 1f;

    /// <summary>int8: shift each layer's bias by the mean output error quantization causes.</summary>
    public bool BiasCorrection { get; init; } = true;

    /// <summary>Convolutions the GEMM kernel computes take int8 weights (int8-weights, int8): not at Simd none.</summary>
    public bool ConvolutionWeights { get; init; }

    /// <summary>
    /// Keep a clone of the graph after each stage but the last (<see cref="CompressionStage.Snapshot"/>), so the
    /// compression report evaluates each stage without calibrating or importing again. Set by whoever makes a report.
    /// </summary>
    public bool KeepStageGraphs { get; init; }

    /// <summary>Pruning: the share of the prunable weights removed (one-shot, or gradually while fine-tuning), or null; for N:M the pattern's share.</summary>
    public double? Pruning { get; init; }

    /// <summary>How pruning chooses the weights it removes (PruningKind): unstructured, by sensitivity, or N:M.</summary>
    public PruningKind PruningKind { get; init; } = PruningKind.Unstructured;

    /// <summary>Low-rank factorization of the fully connected layers and convolutions: how each layer's rank is chosen (energy, size budget or fixed rank), or null.</summary>
    public LowRankTarget? LowRank { get; init; }

    /// <summary>Weight sharing: the bits of each layer's codebook index (2 to 8: 2^bits shared values), or null.</summary>
    public int? WeightSharing { get; init; }

    /// <summary>Sharing across layers: groups of layer names tied to one shared weight, or ties chosen by similarity (<see cref="WeightTying"/>).</summary>
    public LayerTies WeightSharingTies { get; init; } = LayerTies.None;

    /// <summary>Distillation into a student (Student), the first stage, or null.</summary>
    public DistillationSettings? Distillation { get; init; }

    /// <summary>Fine-tuning before quantization (FineTune), or null.</summary>
    public Training.FineTuneSettings? FineTune { get; init; }

    public static CompressionPlan Parse(CompileOptions options)
    {
        Training.FineTuning.Validate(options);
        string kind = options.Compression.ToLowerInvariant();
        if (Array.IndexOf(ModelCompiler.CompressionKinds, kind) < 0)
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"Compression '{options.Compression}' is not one of {string.Join(", ", ModelCompiler.CompressionKinds)}");
        if (!(options.CalibrationUint8Scale > 0 && float.IsFinite(options.CalibrationUint8Scale))) // NaN fails the comparison too
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"the divisor of uint8 data (--calibration-scale, bench's --uint8-scale) must be a finite number above 0, not {options.CalibrationUint8Scale.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        // mixed, mixed-weights: each layer at the precision the options name (MixedPrecision chooses them against the budget).
        var layers = kind is "mixed-weights" or "mixed" ? options.LayerPrecisions ?? throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath,
            $"Compression {kind} needs Calibration and AccuracyBudget: it chooses each layer's precision against the budget") : null;
        if (kind is "int8" or "mixed" && options.CalibrationPath is null)
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"Compression {kind} needs Calibration: the activations' ranges come from it");
        return new CompressionPlan
        {
            Kind = kind, LayerPrecisions = layers, CalibrationPath = options.CalibrationPath, CalibrationUint8Scale = options.CalibrationUint8Scale,
            BiasCorrection = options.BiasCorrection, ConvolutionWeights = kind is "int8-weights" or "int8" && ModelCompiler.ParseSimd(options) != SimdLevel.None,
            FineTune = options.FineTune ? Training.FineTuneSettings.From(options) : null,
            Distillation = DistillationSettings.From(options),
            Pruning = ParsePruning(options),
            LowRank = LowRankTarget.Parse(options.LowRank, options.ModelPath),
            WeightSharing = ParseWeightSharing(options),
            WeightSharingTies = ParseWeightSharingTies(options),
            PruningKind = PruningKind.Parse(options.PruningKind, options.ModelPath),
        };
    }

    static int? ParseWeightSharing(CompileOptions options) => options.WeightSharing is int b && b is < Compress.WeightSharing.MinBits or > Compress.WeightSharing.MaxBits
        ? throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"WeightSharing (--weight-sharing) is the bits of each layer's codebook index, {Compress.WeightSharing.MinBits} to {Compress.WeightSharing.MaxBits} (4 shares 16 values per layer), not {b}")
        : options.WeightSharing;

    static LayerTies ParseWeightSharingTies(CompileOptions options)
    {
        var ties = Compress.WeightTying.Parse(options.WeightSharingTies, options.ModelPath);
        return ties.Any && options.WeightSharing is null
            ? throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, "WeightSharingTies (--weight-sharing-ties) ties layers to one shared codebook: give WeightSharing (--weight-sharing BITS) too")
            : ties;
    }

    /// <summary>The share pruning removes: Pruning, or with an N:M PruningKind the pattern's (a Pruning given must agree); null: no pruning.</summary>
    static double? ParsePruning(CompileOptions options)
    {
        if (options.Pruning is double p && !(p > 0 && p < 1))
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"Pruning (--pruning) is the share of weights removed, above 0 and below 1 (0.92 removes 92%), not {p.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        if (string.IsNullOrWhiteSpace(options.PruningKind)) return options.Pruning;
        var kind = PruningKind.Parse(options.PruningKind, options.ModelPath);
        if (kind.BySensitivity && options.CalibrationPath is null)
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"PruningKind {kind.Name} measures each layer's sensitivity on the calibration data: give Calibration (--calibration)");
        return kind.Sparsity(options.Pruning, options.ModelPath);
    }

    /// <summary>A layer's precision: the Compression value, or with per-layer precisions the layer's (float32 when not named).</summary>
    public string Precision(Node node) => LayerPrecisions is null ? Kind : LayerPrecisions.TryGetValue(node.Name, out var p) ? p : "float32";

    /// <summary>The passes this plan runs; the pipeline puts them in stage order (<see cref="CompressionStageOrder"/>).</summary>
    public IReadOnlyList<ICompressionPass> Passes()
    {
        var passes = new List<ICompressionPass>();
        // The student replaces the model first: every later pass compresses the student.
        if (Distillation is not null)
            passes.Add(new DistillationPass(Distillation));
        // Factorize before pruning (LowRankPass says why): first in the Structural stage, and before fine-tuning's gradual pruning.
        if (LowRank is { } target)
            passes.Add(new LowRankPass(target));
        // With fine-tuning, pruning is gradual inside it (FineTunePass); without, one-shot.
        if (Pruning is double share && PruningKind.Pattern == PruningPattern.Channels)
            passes.Add(new ChannelPruningPass(share)); // one-shot; fine-tuning, when asked, trains the smaller model
        else if (Pruning is double sparsity && FineTune is null)
            passes.Add(new PruningPass(PruningKind, sparsity, refit: CalibrationPath is not null));
        if (FineTune is not null)
            passes.Add(new Training.FineTunePass(FineTune));
        if (WeightSharing is int bits)
        {
            if (WeightSharingTies.Any) passes.Add(new WeightTyingPass(WeightSharingTies, bits)); // first: sharing then leaves the tied layers alone
            passes.Add(new WeightSharingPass(bits));
        }
        if (WeightSharing is not null && FineTune is not null)
            passes.Add(new Training.SharedFineTunePass(FineTune));
        if (Kind is "int8" or "mixed")
            passes.Add(new Int8ArithmeticPass(BiasCorrection, Kind == "mixed" ? node => Precision(node) != "int8" : null));
        if (Kind is "int8-weights" or "mixed-weights")
            passes.Add(new DenseInt8WeightsPass(node => Precision(node) is "int8-weights" or "int8"));
        if (ConvolutionWeights)
            passes.Add(new ConvInt8WeightsPass());
        if (Kind is "int4-weights" or "mixed-weights")
            passes.Add(new Int4WeightsPass(node => Precision(node) is "int4-weights" or "int4"));
        // Pruning that leaves zeros: the layers stored sparse where that pays (channel pruning leaves a smaller dense model);
        // with weight sharing always, as a shared convolution's codebook kernel is the sparse one (WeightSharing.Exclusion).
        if (Pruning is not null && PruningKind.Pattern != PruningPattern.Channels || WeightSharing is not null)
        {
            passes.Add(new SparseStoragePass());
            passes.Add(new SparseConvStoragePass());
        }
        return passes;
    }
}

/// <summary>
/// The fixed order of the compression stages (the pipeline runs passes by it, in the plan's order within a stage):
/// distillation first (the student replaces the model), then structural passes (pruning, low rank: they change which weights exist), then fine-tuning (on the float
/// weights, quantization-aware when the later stages quantize), then weight sharing (the fine-tuned weights clustered
/// into codebooks) and, with training data, the codebooks' own fine-tuning, then int8 arithmetic (calibrated on the
/// float model), then weight-only quantization of the layers left in float32 (int8 before int4: GPTQ reconstructs
/// int4 layers on the activations of the model as the earlier stages left it), then, when the plan prunes, sparse
/// storage of the fully connected layers and convolutions as all the others left them.
/// </summary>
public enum CompressionStageOrder { Distill, Structural, FineTune, Sharing, SharedFineTune, Arithmetic, WeightsInt8, WeightsInt4, SparseStorage }

/// <summary>One compression technique with its options, applied to a graph in place.</summary>
public interface ICompressionPass
{
    /// <summary>The stage's name in the pipeline's record and the compression report.</summary>
    string Name { get; }
    CompressionStageOrder Stage { get; }
    void Apply(Graph graph, PassContext context);
}

/// <summary>What passes share: the calibration data (read once, on first use) and the progress sink.</summary>
public sealed class PassContext(CompressionPlan plan, IProgress<CompileProgress>? progress)
{
    DataSet? _calibration;

    public CompressionPlan Plan { get; } = plan;
    public IProgress<CompileProgress>? Progress { get; } = progress;

    /// <summary>What the pass that just ran trained, for the pipeline to record on its stage (set by training passes).</summary>
    public Training.TrainingResult? Trained { get; set; }

    /// <summary>The graph before a structural stage changed its shape (channel pruning), for fine-tuning's teacher.</summary>
    public Graph? Original { get; set; }

    /// <summary>The calibration data for the graph's inputs; null when the plan names none.</summary>
    public DataSet? Calibration(Graph graph) => Plan.CalibrationPath is null ? null
        : _calibration ??= CalibrationData.Load(Plan.CalibrationPath, [.. graph.Inputs.Select(i => new DataInput(i, graph[i].Shape!))], Plan.CalibrationUint8Scale);
}

/// <summary>Runs a plan's passes in stage order, recording each stage and the weight bytes after it on the graph.</summary>
public static class CompressionPipeline
{
    public static void Run(Graph graph, CompressionPlan plan, IProgress<CompileProgress>? progress = null) => Run(graph, plan.Passes(), new PassContext(plan, progress));

    public static void Run(Graph graph, IEnumerable<ICompressionPass> passes, PassContext context)
    {
        var ordered = passes.OrderBy(p => p.Stage).ToList(); // OrderBy is stable: the plan's order within a stage
        for (int i = 0; i < ordered.Count; i++)
        {
            context.Trained = null;
            ordered[i].Apply(graph, context);
            // A snapshot rather than the report running the passes again on clones: that would calibrate again
            // (int8 ranges, GPTQ). A clone is cheap: it shares the constants and forms, which the later stages
            // replace rather than change, so it holds only its own nodes and values.
            var snapshot = context.Plan.KeepStageGraphs && i < ordered.Count - 1 ? graph.Clone() : null;
            graph.CompressionStages.Add(new CompressionStage(ordered[i].Name, WeightBytes(graph), snapshot) { Training = context.Trained });
        }
    }

    /// <summary>
    /// The bytes of the weights the graph's nodes read: a weight in a quantized form counts its codes and scales,
    /// any other float32 constant 4 bytes an element (each value once).
    /// </summary>
    public static long WeightBytes(Graph graph)
    {
        var counted = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var node in graph.Nodes)
            for (int i = 0; i < node.Inputs.Count; i++)
            {
                if (!node.HasInput(i) || graph[node.Inputs[i]].Constant is not { Type: ElementType.Float32 } constant || !counted.Add(node.Inputs[i])) continue;
                total += (i, node.Form) switch
                {
                    (1, Int8WeightsForm f) => f.Weights.Q.LongLength + f.Weights.Scales.Length * 4L,
                    (1, Int4WeightsForm f) => f.Weights.Packed.LongLength + f.Weights.Scales.Length * 4L,
                    (1, Int8LayerForm f) => f.Q.LongLength + f.Multipliers.Length * 4L,
                    (1, SparseConvForm f) => f.Bytes,
                    (1, SparseDenseForm f) => f.Bytes,
                    (1, SharedWeightsForm f) => f.Weights.DenseBytes,
                    _ => constant.Count * 4L,
                };
            }
        return total;
    }
}

/// <summary>int8 arithmetic (Compression int8, mixed): calibrates ranges, quantizes layers, corrects biases; mixed puts <paramref name="keepFloat"/> layers back in float32.</summary>
public sealed class Int8ArithmeticPass(bool biasCorrection, Func<Node, bool>? keepFloat) : ICompressionPass
{
    public string Name => keepFloat is null ? "int8 arithmetic" : "int8 arithmetic (mixed precision)";
    public CompressionStageOrder Stage => CompressionStageOrder.Arithmetic;

    public void Apply(Graph graph, PassContext context)
    {
        Int8Quantization.Quantize(graph, context.Calibration(graph)!, biasCorrection: biasCorrection, progress: context.Progress);
        if (keepFloat is not null) Int8Quantization.SetPrecisions(graph, node => keepFloat(node));
    }
}

/// <summary>Weight-only int8 for the fully connected layers <paramref name="which"/> selects.</summary>
public sealed class DenseInt8WeightsPass(Func<Node, bool> which) : ICompressionPass
{
    public string Name => "int8 weights (fully connected)";
    public CompressionStageOrder Stage => CompressionStageOrder.WeightsInt8;
    public void Apply(Graph graph, PassContext context) => WeightQuantization.QuantizeDenseWeights(graph, which);
}

/// <summary>Weight-only int8 for the convolutions the GEMM kernel computes and int8 arithmetic left in float32.</summary>
public sealed class ConvInt8WeightsPass : ICompressionPass
{
    public string Name => "int8 weights (convolutions)";
    public CompressionStageOrder Stage => CompressionStageOrder.WeightsInt8;
    public void Apply(Graph graph, PassContext context) => WeightQuantization.QuantizeConvWeights(graph, n => n.Form is not Int8ConvForm);
}

/// <summary>Weight-only int4 for the fully connected layers <paramref name="which"/> selects: GPTQ on the calibration data when given, else round to nearest.</summary>
public sealed class Int4WeightsPass(Func<Node, bool> which) : ICompressionPass
{
    public string Name => "int4 weights (fully connected)";
    public CompressionStageOrder Stage => CompressionStageOrder.WeightsInt4;
    public void Apply(Graph graph, PassContext context) => Int4Quantization.QuantizeDenseWeights(graph, context.Calibration(graph), which, context.Progress);
}
