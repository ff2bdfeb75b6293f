using System.Security.Cryptography;
using ModelGen.Artifact;
using ModelGen.Compiler.Import;
using ModelGen.Compiler.Normalize;
using ModelGen.Compiler.Plan;

namespace ModelGen.Compiler;

/// <summary>What to compile and how; each option matches an item metadata and a CLI option.</summary>
public sealed record CompileOptions
{
    public required string ModelPath { get; init; }
    /// <summary>Null: from the file name.</summary>
    public string? ClassName { get; init; }
    public string Namespace { get; init; } = "ModelGen.Models";
    /// <summary>The size given to a symbolic first (batch) dimension.</summary>
    public int BatchSize { get; init; } = 1;
    /// <summary>InputShape (--input-shape): "audio:1x16000;mask:1x50", the whole shape of each input named (fixes its symbolic sizes).</summary>
    public string? InputShape { get; init; }
    /// <summary>auto, vector128 or none.</summary>
    public string Simd { get; init; } = "auto";
    /// <summary>none, int8-weights or int4-weights (weight-only for fully connected layers).</summary>
    public string Compression { get; init; } = "none";
    /// <summary>mixed-weights: the precision of each fully connected layer by node name (int4, int8, float32); mixed: of each int8-capable layer (int8, float32).</summary>
    public IReadOnlyDictionary<string, string>? LayerPrecisions { get; init; }
    /// <summary>Calibration data (int4-weights reconstructs layers on it; the report compares on it).</summary>
    public string? CalibrationPath { get; init; }
    /// <summary>int8: shift each layer's bias by the mean output error quantization causes on the calibration data.</summary>
    public bool BiasCorrection { get; init; } = true;
    /// <summary>Divisor for uint8 calibration data (255 maps 0..255 to 0..1).</summary>
    public float CalibrationUint8Scale { get; init; } = 1f;
    /// <summary>How outputs are compared (classification, binary[:threshold], regression); null: chosen from the model's output.</summary>
    public string? Measure { get; init; }
    /// <summary>Training data (--training-data): samples in the formats Calibration reads; fine-tuning trains on them.</summary>
    public string? TrainingDataPath { get; init; }
    /// <summary>Class labels of the training samples (--training-labels, int64 .npy); without them the original model's outputs are the targets.</summary>
    public string? TrainingLabelsPath { get; init; }
    /// <summary>Fine-tune (--fine-tune) the model for the chosen compression on the training data: quantization-aware for int8/int4, plain otherwise.</summary>
    public bool FineTune { get; init; }
    /// <summary>Most passes over the training data (--epochs); early stopping on the held-out split may end sooner.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>The optimizer's learning rate (--learning-rate); null: Adam's 1e-3 scaled down for fine-tuning (see docs).</summary>
    public float? LearningRate { get; init; }
    /// <summary>Seeds the shuffling, the held-out split and any initialisation (--seed): the same seed gives the same weights on every machine.</summary>
    public int Seed { get; init; }
    /// <summary>Most time training may take (--training-time-limit); when reached, the best weights so far are kept and the report says so.</summary>
    public TimeSpan? TrainingTimeLimit { get; init; }
    /// <summary>Pruning (--pruning): the share of the fully connected and convolution weights removed, above 0 and below 1; null: none.</summary>
    public double? Pruning { get; init; }
    /// <summary>PruningKind (--pruning-kind): unstructured (default), unstructured-sensitive, 2:4, 1:4, 4:8 or channels (Compress.PruningKind).</summary>
    public string? PruningKind { get; init; }
    /// <summary>LowRank (--low-rank): low-rank factorization of the fully connected layers and convolutions: "0.9" keeps that share of each one's energy, "bytes:0.5" a size budget, "rank:8" a fixed rank (<see cref="Compress.LowRankTarget"/>); null: none.</summary>
    public string? LowRank { get; init; }
    /// <summary>WeightSharing (--weight-sharing): each fully connected layer's and convolution's weights clustered into a codebook of 2^bits values (2 to 8); null: none.</summary>
    public int? WeightSharing { get; init; }
    /// <summary>WeightSharingTies (--weight-sharing-ties): groups of layers tied to one shared weight, "fc1,fc2;conv2,conv3", or "auto:0.9" to tie layers by similarity (Compress.WeightTying); needs WeightSharing.</summary>
    public string? WeightSharingTies { get; init; }
    /// <summary>Student (--student): distil the model into an ONNX file's student ("mlp.onnx") or a derived one ("width:0.25", "depthwise", "width:0.5,depthwise"; Compress.StudentSpec); null: none.</summary>
    public string? Student { get; init; }
    /// <summary>StudentInit (--student-init): own (the student's weights, default) or fresh (a seeded He-uniform initialisation).</summary>
    public string? StudentInit { get; init; }
    /// <summary>DistillationTemperature (--distillation-temperature): the T of the softened outputs; null: 8.</summary>
    public double? DistillationTemperature { get; init; }
    /// <summary>DistillationLabelWeight (--distillation-label-weight): with TrainingLabels, the cross-entropy's share of the distillation loss, 0 to 1; null: 0.5.</summary>
    public double? DistillationLabelWeight { get; init; }
    /// <summary>Training augmentation (--augment): "shift:2", "noise:0.05" or both separated by ','; null: none.</summary>
    public string? TrainingAugmentation { get; init; }
    /// <summary>Stops long work (training) when cancelled; nothing is written then.</summary>
    public CancellationToken Cancellation { get; init; }
    /// <summary>The same model uncompressed and untrained: the original the report and the exports compare with.</summary>
    public CompileOptions Original => this with
    {
        Compression = "none", LayerPrecisions = null, FineTune = false, TrainingDataPath = null, TrainingLabelsPath = null, Pruning = null, PruningKind = null, LowRank = null, WeightSharing = null, WeightSharingTies = null,
        Student = null, StudentInit = null, DistillationTemperature = null, DistillationLabelWeight = null,
    };

    /// <summary>Told how the long steps (activations, GPTQ, the mixed searches, the report) advance; the CLI shows it.</summary>
    public IProgress<CompileProgress>? Progress { get; init; }
}

/// <summary>A step of a long phase done: <paramref name="Done"/> of <paramref name="Total"/> (<paramref name="Item"/>: what was just done, e.g. a layer).</summary>
public sealed record CompileProgress(string Phase, int Done, int Total, string? Item = null);

/// <summary>The engine behind the MSBuild task and the CLI: ONNX file → artifact.</summary>
public static class ModelCompiler
{
    /// <summary>The Simd values (docs/msbuild.md), parsed once by <see cref="ParseSimd"/>.</summary>
    public static readonly string[] SimdLevels = SimdLevelText.Names;

    /// <summary>The options' Simd value as a level; MG-BadOption when it names none.</summary>
    public static SimdLevel ParseSimd(CompileOptions options) => SimdLevelText.TryParse(options.Simd, out var level) ? level
        : throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"SIMD level '{options.Simd}' is not one of {string.Join(", ", SimdLevels)}");

    /// <summary>The Compression values: what each does is in docs/msbuild.md.</summary>
    public static readonly string[] CompressionKinds = ["none", "int8", "int8-weights", "int4-weights", "mixed-weights", "mixed"];

    /// <summary>Names of members inside the generated class, which the class itself cannot take.</summary>
    static readonly HashSet<string> ReservedClassNames = ["Kernels", "Weights", "Run", "RunProfiled", "Predict", "ThreadScratch", "ThrowLength", "ModelGenKernels"];

    [ThreadStatic] static int importsOnThisThread;

    /// <summary>How many model files this thread has imported (tests check that a search imports its model once).</summary>
    public static int ImportsOnThisThread => importsOnThisThread;

    /// <summary>Imports and infers shapes: the graph exactly as the ONNX file defines it.</summary>
    public static Graph Import(string modelPath, int batchSize = 1, string? inputShape = null)
    {
        importsOnThisThread++;
        var shapes = InputShapes.Parse(inputShape, modelPath); // a bad value is MG0007 before the model is read
        var model = OnnxModelLoader.Load(modelPath);
        var graph = OnnxImporter.Import(model, modelPath, batchSize, shapes, null);
        ShapeInference.Run(graph);
        return graph;
    }

    /// <summary>
    /// Import, normalize and compress: the graph the artifact is built from, which the reference
    /// evaluator runs to compute what the emitted code computes.
    /// </summary>
    public static Graph Prepare(CompileOptions options) => Prepare(options, Compress.CompressionPlan.Parse(options));

    /// <summary><see cref="Prepare(CompileOptions)"/> with the plan already parsed (the compression options in <paramref name="options"/> are not read again).</summary>
    public static Graph Prepare(CompileOptions options, Compress.CompressionPlan plan)
    {
        var graph = Normalized(options);
        Compress.CompressionPipeline.Run(graph, plan, options.Progress);
        return graph;
    }

    /// <summary>Import and normalize: the float32 graph every compression starts from (the mixed search clones it).</summary>
    public static Graph Normalized(CompileOptions options)
    {
        var graph = Import(options.ModelPath, options.BatchSize, options.InputShape);
        Passes.Run(graph);
        return graph;
    }

    /// <summary>Import, normalize, plan: the artifact the generator turns into C#.</summary>
    public static ModelArtifact Compile(CompileOptions options) => Compile(options, out _);

    /// <summary>Compiles and gives the prepared graph too (the report evaluates it: no second calibration).</summary>
    public static ModelArtifact Compile(CompileOptions options, out Graph prepared) => Compile(options, null, out prepared);

    /// <summary>Compiles <paramref name="preparedGraph"/> when given: <see cref="Prepare"/>'s graph for these same options (the mixed search's, calibrated once).</summary>
    public static ModelArtifact Compile(CompileOptions options, Graph? preparedGraph, out Graph prepared)
    {
        var simd = ParseSimd(options);
        string className = options.ClassName is { Length: > 0 } c ? c : Identifiers.Pascal(Path.GetFileNameWithoutExtension(options.ModelPath));
        if (!Identifiers.IsValid(className) || ReservedClassNames.Contains(className) || className.Length > Identifiers.MaxLength)
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"class name '{(className.Length > Identifiers.MaxLength ? className[..Identifiers.MaxLength] + "…" : className)}' is not a valid C# identifier of at most {Identifiers.MaxLength} characters, or is reserved (Kernels, Weights, Run, Predict); set ClassName to another name of letters, digits and '_'");
        string ns = options.Namespace is { Length: > 0 } n ? n : "ModelGen.Models";
        if (!Identifiers.IsNamespace(ns))
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"namespace '{ns}' is not a C# namespace; set Namespace (--namespace) to identifiers of letters, digits and '_' separated by '.', none starting with a digit, a keyword only as @keyword (My.@class)");
        var graph = prepared = preparedGraph ?? Prepare(options);
        string sha = Convert.ToHexStringLower(SHA256.HashData(OnnxModelLoader.ReadModelBytes(options.ModelPath)));
        var artifact = ArtifactBuilder.Build(graph, className, ns, Path.GetFileName(options.ModelPath), sha, simd);
        artifact.Compression = options.Compression.ToLowerInvariant();
        CheckEmbeddedBytes(artifact, graph);
        return artifact;
    }

    /// <summary>What the generated code may embed (weights, tables): 16 bytes per byte of the model, and at least 16 MiB.</summary>
    public static long EmbeddedBudget(Graph graph) => Math.Max(16L << 20, 16 * graph.FileBytes);

    /// <summary>
    /// The C# emitted for a model: its embedded bytes as literals (3 characters a byte at most) and 256 K
    /// characters of code a node, an average ten times what MobileNetV2's kernels take. Emitters keep their code
    /// independent of large shapes (loops, not unrolled kernels thousands wide); this is the backstop.
    /// </summary>
    public static void CheckEmittedSize(long sourceChars, ModelArtifact artifact, Graph graph)
    {
        long budget = 3 * EmbeddedBudget(graph) + (256L << 10) * (artifact.Nodes.Count + 1);
        if (sourceChars > budget)
            throw new ModelGenException(ErrorCodes.TooLarge, graph.ModelPath,
                $"the generated C# would be {sourceChars:N0} characters for {artifact.Nodes.Count} kernels, more than the {budget:N0} ModelGen allows; please report the model: an emitter grows with a shape it should loop over");
    }

    /// <summary>
    /// The last of the compiler's size budgets: a small file that would still become a huge C# file (and a
    /// consumer build that takes minutes and gigabytes) is refused here, whatever made it grow.
    /// </summary>
    static void CheckEmbeddedBytes(ModelArtifact artifact, Graph graph)
    {
        long embedded = artifact.Tensors.Sum(t => (long)(t.Data?.Length ?? 0))
            + artifact.Nodes.Sum(n => n.Attributes.Sum(a => (long)a.Value.Length));
        long budget = EmbeddedBudget(graph);
        if (embedded > budget)
            throw new ModelGenException(ErrorCodes.TooLarge, graph.ModelPath,
                $"the generated code would embed {embedded:N0} bytes of weights and tables from a model of {graph.FileBytes:N0} bytes, more than the {budget:N0} ModelGen allows it (16 times the model, or 16 MiB); check the model for constants that broadcast or tile into millions of values");
    }
}
