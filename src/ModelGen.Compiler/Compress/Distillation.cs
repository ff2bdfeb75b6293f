using System.Globalization;
using System.Runtime.CompilerServices;
using ModelGen.Compiler.Operators;
using ModelGen.Compiler.Training;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// The student a build distils the model into (Student, --student): an ONNX file of another architecture, or one
/// derived from the teacher by a width multiplier and/or depthwise-separable rewrites ("width:0.25", "depthwise",
/// "width:0.5,depthwise"; <see cref="DerivedStudent"/>).
/// </summary>
public sealed record StudentSpec(string? File, double? Width, bool Depthwise)
{
    /// <summary>
    /// The spec, or null when <paramref name="text"/> is empty. A value ending in .onnx (or holding a path separator)
    /// is a file, made absolute against the current folder; anything else must be the derived form, else MG0007.
    /// </summary>
    public static StudentSpec? Parse(string? text, string modelPath)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        string t = text.Trim();
        if (t.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || t.Contains('/') || t.Contains('\\'))
            return new StudentSpec(Path.GetFullPath(t), null, false);
        double? width = null;
        bool depthwise = false;
        foreach (string part in t.Split(',', StringSplitOptions.TrimEntries))
        {
            var kv = part.Split(':', 2, StringSplitOptions.TrimEntries);
            string name = kv[0].ToLowerInvariant();
            if (name == "depthwise" && kv.Length == 1 && !depthwise)
                depthwise = true;
            else if (name == "width" && kv.Length == 2 && width is null
                && double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double w) && w > 0 && w <= 1)
                width = w;
            else
                throw new ModelGenException(ErrorCodes.BadOption, modelPath,
                    $"Student (--student) '{text}': '{part}' is not width:<multiplier above 0 and at most 1> or depthwise (each at most once), and the value is not an ONNX file (.onnx); e.g. \"students/mlp.onnx\", \"width:0.25\", \"depthwise\" or \"width:0.5,depthwise\"");
        }
        return new StudentSpec(null, width, depthwise);
    }

    /// <summary>"mlp.onnx", "width 0.25", "width 0.5, depthwise".</summary>
    public string Describe() => File is not null ? Path.GetFileName(File)
        : string.Join(", ", new[] { Width is double w ? FormattableString.Invariant($"width {w:G}") : null, Depthwise ? "depthwise" : null }.Where(s => s is not null));
}

/// <summary>Where the student's weights start: its own (the file's, or those derived from the teacher) or a fresh seeded initialisation.</summary>
public enum StudentInit { Own, Fresh }

/// <summary>What distillation trains with: the student, its start, the loss's temperature and label weight, and the fine-tuning options' data and schedule.</summary>
public sealed record DistillationSettings(StudentSpec Student, StudentInit Init, double Temperature, double LabelWeight, int BatchSize, string? InputShape, FineTuneSettings Training)
{
    /// <summary>
    /// Hinton et al.'s T (they use 20 on MNIST). Measured (docs/distillation.md): an MLP student of LeNet-5 gains about
    /// a point from 2 to 8 (93.0% to 94.1% with labels, 93.4% to 94.5% label-free) and nothing more at 16. Fine-tuning's
    /// label-free loss keeps the engine's 2: there the student is the teacher, already close to it.
    /// </summary>
    public const double DefaultTemperature = 8;

    /// <summary>With labels, the cross-entropy's share of the loss (the distillation term has the rest).</summary>
    public const double DefaultLabelWeight = 0.5;

    /// <summary>A student starts untrained (or far from the teacher): Adam's 1e-3, not fine-tuning's 1e-4.</summary>
    public const double DefaultLearningRate = 1e-3;

    /// <summary>The report warns (MG4011) when the student agrees with the teacher on fewer held-out samples than this.</summary>
    public const double AgreementWarning = 0.9;

    /// <summary>The settings, or null without a Student; bad values are MG0007 (the options are checked before the model is read).</summary>
    public static DistillationSettings? From(CompileOptions options)
    {
        void Bad(string message) => throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, message);
        var student = StudentSpec.Parse(options.Student, options.ModelPath);
        var init = ParseInit(options.StudentInit, options.ModelPath);
        if (student is null)
        {
            if (init is not null || options.DistillationTemperature is not null || options.DistillationLabelWeight is not null)
                Bad("StudentInit, DistillationTemperature and DistillationLabelWeight (--student-init, --distillation-temperature, --distillation-label-weight) set how a Student (--student) is distilled; give the Student");
            return null;
        }
        // The precision searches prepare the model once per candidate: each would distil the student again.
        if (options.Compression.ToLowerInvariant() is "mixed" or "mixed-weights")
            Bad($"Compression {options.Compression.ToLowerInvariant()} does not take a Student (--student) yet: its search would distil the student once per candidate; use int8, int8-weights or int4-weights with a Student");
        if (options.TrainingDataPath is null)
            Bad("Student (--student) is trained by distillation on TrainingData (--training-data), which is not given: give the samples to train on (labels optional; with only the calibration samples, give them as TrainingData with TrainingAugmentation, e.g. \"shift:2\")");
        double temperature = options.DistillationTemperature ?? DefaultTemperature;
        if (!(temperature > 0 && temperature <= 100))
            Bad($"DistillationTemperature (--distillation-temperature) must be above 0 and at most 100 (Hinton et al. use 1 to 20), not {temperature.ToString(CultureInfo.InvariantCulture)}");
        double labelWeight = options.DistillationLabelWeight ?? DefaultLabelWeight;
        if (!(labelWeight >= 0 && labelWeight <= 1))
            Bad($"DistillationLabelWeight (--distillation-label-weight) is the cross-entropy's share of the loss, 0 to 1 (1: the labels alone), not {labelWeight.ToString(CultureInfo.InvariantCulture)}");
        if (options.DistillationLabelWeight is not null && options.TrainingLabelsPath is null)
            Bad("DistillationLabelWeight (--distillation-label-weight) weighs the labels against the teacher, but TrainingLabels (--training-labels) are not given");
        var training = FineTuneSettings.From(options) with { LearningRate = options.LearningRate ?? DefaultLearningRate };
        return new DistillationSettings(student, init ?? StudentInit.Own, temperature, labelWeight, options.BatchSize, options.InputShape, training);
    }

    /// <summary>"own" or "fresh" (case-insensitive); null or empty: null (own).</summary>
    public static StudentInit? ParseInit(string? text, string modelPath) =>
        string.IsNullOrWhiteSpace(text) ? null
        : text.Trim().ToLowerInvariant() switch
        {
            "own" => StudentInit.Own,
            "fresh" => StudentInit.Fresh,
            _ => throw new ModelGenException(ErrorCodes.BadOption, modelPath, $"StudentInit (--student-init) '{text}' is not own (the student's own weights) or fresh (a new seeded initialisation)"),
        };
}

/// <summary>What distillation did, for the report: the student, its float32 graph as trained, and its held-out agreement with the teacher.</summary>
public sealed record DistillationOutcome(string Student, Graph Trained, TrainingResult Training, double? HeldOutAgreement, int HeldOutSamples)
{
    /// <summary>The MG4011 warning when the held-out agreement is below <see cref="DistillationSettings.AgreementWarning"/>; else null.</summary>
    public string? Warning => HeldOutAgreement is double a && a < DistillationSettings.AgreementWarning
        ? FormattableString.Invariant($"the distilled student ({Student}) agrees with the teacher's top class on {a * 100:F2}% of the {HeldOutSamples:N0} held-out training samples, below {DistillationSettings.AgreementWarning * 100:F0}%: give more training data (or TrainingAugmentation), more Epochs, or a larger student")
        : null;
}

/// <summary>
/// Distillation as a stage of the compression pipeline (the first): the graph being compressed becomes the student,
/// trained by <see cref="Trainer.Fit"/> to imitate the original model (the teacher) on the training data: the KL
/// divergence to the teacher's temperature-softened outputs (times T²), mixed with cross-entropy when labels are
/// given. The later stages (pruning, sharing, quantization, fine-tuning) then compress the student as any model.
/// </summary>
public sealed class DistillationPass(DistillationSettings settings) : ICompressionPass
{
    static readonly ConditionalWeakTable<Graph, DistillationOutcome> Outcomes = new();

    /// <summary>The seed's stream for a fresh initialisation (the split, epochs and augmentation use others).</summary>
    const ulong InitStream = 1UL << 40;

    public string Name => $"distilled into {settings.Student.Describe()}";
    public CompressionStageOrder Stage => CompressionStageOrder.Distill;

    /// <summary>What distillation did to <paramref name="graph"/>, if it ran on it.</summary>
    public static DistillationOutcome? Outcome(Graph graph) => Outcomes.TryGetValue(graph, out var o) ? o : null;

    public void Apply(Graph graph, PassContext context)
    {
        var teacher = graph.Clone();
        var student = settings.Student.File is { } file
            ? LoadStudent(file, teacher)
            : DerivedStudent.Derive(teacher, settings.Student.Width ?? 1, settings.Student.Depthwise, graph.ModelPath);
        if (settings.Init == StudentInit.Fresh) InitializeFresh(student, (ulong)settings.Training.Seed);

        var model = TrainableModel.Build(student);
        var t = settings.Training;
        var inputs = student.Inputs.Select(i => new Data.DataInput(i, student[i].Shape!)).ToArray();
        var data = TrainingSet.Load(t.DataPath, t.LabelsPath, inputs, CompressionReport.Classes(student), t.Uint8Scale);
        var loss = data.Labels is null ? LossMix.Distill : new LossMix(CrossEntropy: settings.LabelWeight, Distillation: 1 - settings.LabelWeight);
        // Without augmentation the teacher's outputs are computed once; with it, on each augmented batch; on the labels alone, never.
        var teaching = !loss.NeedsTeacher ? null
            : t.Augmentation.IsOff ? FineTunePass.TeacherOutputs(teacher, data) : Teacher.FromModel(TrainableModel.Build(teacher));
        var options = new TrainingOptions
        {
            Epochs = t.Epochs, LearningRate = t.LearningRate, Seed = (ulong)t.Seed, TimeLimit = t.TimeLimit, Patience = FineTuneSettings.Patience,
            Augmentation = t.Augmentation, Loss = loss, Temperature = settings.Temperature,
        };
        var progress = context.Progress is { } sink ? new FineTunePass.Progress(sink, "distillation") : null;
        var result = Trainer.Fit(model, data, options, teaching, progress, t.Cancellation);
        t.Cancellation.ThrowIfCancellationRequested();
        FineTunePass.StoreParameters(student, model);

        var (agreement, heldOut) = HeldOutAgreement(model, teacher, data, options);
        Replace(graph, student);
        // Fine-tuning after this stage learns from the teacher when there are no labels, not from the student as distilled.
        context.Original = teacher;
        context.Trained = result;
        Outcomes.AddOrUpdate(graph, new DistillationOutcome(settings.Student.Describe(), student.Clone(), result, agreement, heldOut));
    }

    /// <summary>The student file through the same loader as any model (untrusted input), normalized, its contract checked against the teacher's.</summary>
    Graph LoadStudent(string file, Graph teacher)
    {
        var student = ModelCompiler.Import(file, settings.BatchSize, settings.InputShape);
        Normalize.Passes.Run(student);
        StudentContract.Check(teacher, student, file);
        return student;
    }

    /// <summary>
    /// A fresh start, deterministic from the seed: each convolution's and fully connected layer's weight He-uniform
    /// (Kaiming: uniform in ±√(6 / fan-in), fan-in the weight's elements per output), its bias zero; other
    /// parameters keep the file's values.
    /// </summary>
    public static void InitializeFresh(Graph student, ulong seed)
    {
        var random = new SeededRandom(seed, InitStream);
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in student.Nodes.Where(n => n.OpType is "Conv" or DenseOperator.Name))
        {
            if (node.HasInput(1) && student[node.Inputs[1]].Constant is { Type: ElementType.Float32 } w && done.Add(node.Inputs[1]))
            {
                int fanIn = w.Shape.Skip(1).Aggregate(1, (a, b) => a * b);
                float bound = (float)Math.Sqrt(6.0 / Math.Max(1, fanIn));
                var values = new float[w.Count];
                for (int i = 0; i < values.Length; i++) values[i] = (2 * random.NextFloat() - 1) * bound;
                student[node.Inputs[1]].Constant = new TensorData(w.Shape, values);
            }
            if (node.HasInput(2) && student[node.Inputs[2]].Constant is { Type: ElementType.Float32 } b && done.Add(node.Inputs[2]))
                student[node.Inputs[2]].Constant = new TensorData(b.Shape, new float[b.Count]);
        }
    }

    /// <summary>Top-1 agreement of the trained student with the teacher on the held-out split the trainer used (null when none is held out).</summary>
    static (double? Agreement, int Samples) HeldOutAgreement(TrainableModel student, Graph teacher, TrainingSet data, TrainingOptions options)
    {
        var (_, heldOut) = data.Split(options.HeldOutFraction, options.Seed);
        if (heldOut.Length == 0) return (null, 0);
        var teacherModel = TrainableModel.Build(teacher);
        int same = 0;
        foreach (var chunk in heldOut.Chunk(256))
        {
            var feed = new Dictionary<string, Tensor<float>>(StringComparer.Ordinal);
            for (int i = 0; i < student.Graph.Inputs.Count; i++) feed[student.Graph.Inputs[i]] = data.Batch(i, chunk);
            var a = student.Forward(feed)[student.Graph.Outputs[0]];
            var b = teacherModel.Forward(feed)[teacher.Outputs[0]];
            int classes = a.Count / chunk.Length;
            for (int s = 0; s < chunk.Length; s++)
                if (Losses.ArgMax<float>(a.Data.AsSpan(s * classes, classes)) == Losses.ArgMax<float>(b.Data.AsSpan(s * classes, classes))) same++;
        }
        return ((double)same / heldOut.Length, heldOut.Length);
    }

    /// <summary>The graph being compressed becomes the student (in place: the pipeline holds it).</summary>
    static void Replace(Graph graph, Graph student)
    {
        graph.Nodes = student.Clone().Nodes;
        graph.Values.Clear();
        foreach (var (name, value) in student.Values) graph.Values[name] = new Value(name) { Type = value.Type, Shape = value.Shape, Constant = value.Constant, DeclaredShape = value.DeclaredShape };
        graph.Inputs.Clear();
        graph.Inputs.AddRange(student.Inputs);
        graph.Outputs.Clear();
        graph.Outputs.AddRange(student.Outputs);
        graph.ModelPath = student.ModelPath;
        graph.FileBytes = Math.Max(graph.FileBytes, student.FileBytes);
        graph.Opset = student.Opset;
        graph.Producer = student.Producer;
    }
}

/// <summary>
/// A student replaces the teacher in the generated class, so it keeps the teacher's contract: the same inputs (names in
/// order, element types, shapes) and outputs (names in order, shapes, and probabilities where the teacher gives them).
/// </summary>
public static class StudentContract
{
    /// <summary>MG4010 naming every difference, or nothing.</summary>
    public static void Check(Graph teacher, Graph student, string studentPath)
    {
        var differences = new List<string>();
        Compare("input", teacher.Inputs, student.Inputs, true);
        Compare("output", teacher.Outputs, student.Outputs, false);
        if (differences.Count == 0 && EndsInSoftmax(teacher) != EndsInSoftmax(student))
            differences.Add($"the teacher's output '{teacher.Outputs[0]}' is {(EndsInSoftmax(teacher) ? "" : "not ")}a Softmax's probabilities, the student's is {(EndsInSoftmax(student) ? "" : "not")}");
        if (differences.Count > 0)
            throw new ModelGenException(ErrorCodes.StudentContractMismatch, studentPath,
                $"the student does not keep the contract of the teacher {Path.GetFileName(teacher.ModelPath)}, which the generated class keeps: {string.Join("; ", differences)}; export the student with the teacher's input and output names, shapes and element types");

        void Compare(string kind, List<string> a, List<string> b, bool types)
        {
            if (!a.SequenceEqual(b, StringComparer.Ordinal))
            {
                differences.Add($"{kind}s are {Names(b)} in the student, {Names(a)} in the teacher");
                return;
            }
            foreach (var name in a)
            {
                var (x, y) = (teacher[name], student[name]);
                if (types && x.Type != y.Type) differences.Add($"{kind} '{name}' is {Type(y.Type)} in the student, {Type(x.Type)} in the teacher");
                if (!(x.Shape ?? []).SequenceEqual(y.Shape ?? [])) differences.Add($"{kind} '{name}' has shape {Shape(y.Shape)} in the student, {Shape(x.Shape)} in the teacher");
            }
        }
        static string Names(List<string> names) => names.Count == 0 ? "none" : string.Join(", ", names.Select(n => $"'{n}'"));
        static string Shape(int[]? shape) => shape is null ? "[?]" : $"[{string.Join("x", shape)}]";
        static string Type(ElementType type) => type == ElementType.Float32 ? "float32" : "int64";
    }

    static bool EndsInSoftmax(Graph graph) => graph.ProducerOf(graph.Outputs[0])?.OpType == "Softmax";
}
