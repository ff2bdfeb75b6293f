using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Distillation;

/// <summary>Distilled students are deterministic, and the later stages compress them as any model (issue 25: int8 student tested).</summary>
public class StudentCompressionTests(ITestOutputHelper output)
{
    static float[] StudentWeights(Graph graph) => [.. graph.Nodes.Where(n => n.OpType == "Dense").SelectMany(n => graph[n.Inputs[1]].Constant!.Floats.Concat(graph[n.Inputs[2]].Constant!.Floats))];

    /// <summary>Same seed, same bytes of the student's weights (fresh initialisation, shuffles, split); another seed, other weights.</summary>
    [Fact]
    public void TheSameSeedGivesTheSameStudentBitForBit()
    {
        string student = Students.Mlp().Save("mlp.onnx");
        var (images, _) = Students.TrainingSlice(400);
        var options = Students.Options(student, images, epochs: 1) with { StudentInit = "fresh" };
        byte[] Bytes(CompileOptions o) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(StudentWeights(ModelCompiler.Prepare(o)).AsSpan()).ToArray();
        var first = Bytes(options);
        Assert.Equal(first, Bytes(options));
        Assert.NotEqual(first, Bytes(options with { Seed = 2 }));
    }

    /// <summary>
    /// Fresh: every fully connected weight within He-uniform's ±√(6 / fan-in), the biases zero, seeded (the file's weights
    /// are ±1/√fan-in, so a fresh start differs from them).
    /// </summary>
    [Fact]
    public void AFreshStartIsHeUniformAndSeeded()
    {
        var graph = ModelCompiler.Import(Students.Mlp().Save("mlp.onnx"));
        Compiler.Normalize.Passes.Run(graph);
        DistillationPass.InitializeFresh(graph, 5);
        foreach (var node in graph.Nodes.Where(n => n.OpType == "Dense"))
        {
            var w = graph[node.Inputs[1]].Constant!;
            double bound = Math.Sqrt(6.0 / w.Shape[1]);
            Assert.All(w.Floats, v => Assert.InRange(Math.Abs(v), 0, bound));
            Assert.True(w.Floats.Max(Math.Abs) > 0.9 * bound, "uses the whole range");
            Assert.All(graph[node.Inputs[2]].Constant!.Floats, b => Assert.Equal(0, b));
        }
        var again = ModelCompiler.Import(Students.Mlp().Save("mlp.onnx"));
        Compiler.Normalize.Passes.Run(again);
        DistillationPass.InitializeFresh(again, 5);
        Assert.Equal(StudentWeights(graph), StudentWeights(again));
    }

    /// <summary>
    /// A derived student goes through the same pass: LeNet-5 at width 0.5 (DerivedStudent) is trained on the teacher's
    /// outputs, starts from the teacher's kept weights (so it agrees with the teacher before training better than
    /// chance), and the report compares its layers with the student as distilled.
    /// </summary>
    [Fact]
    public void ADerivedStudentIsDistilledByThePass()
    {
        var (images, _) = Students.TrainingSlice(600);
        var options = Students.Options("width:0.5", images, epochs: 1);
        var artifact = ModelCompiler.Compile(options, out var prepared);
        var stage = prepared.CompressionStages[0];
        Assert.Equal("distilled into width 0.5", stage.Name);
        Assert.True(stage.Training!.Before!.HeldOutAccuracy > 0.2, $"agreement before training {stage.Training.Before.HeldOutAccuracy:P1}");
        long teacher = DistillationReport.Parameters(ModelCompiler.Normalized(options.Original)), student = DistillationReport.Parameters(prepared);
        Assert.InRange(student, teacher / 5, teacher / 3); // the fully connected layers shrink by about w²: a quarter, and a few classes stay
        var outcome = DistillationPass.Outcome(prepared)!;
        Assert.Equal("width 0.5", outcome.Student);
        Assert.Equal(60, outcome.HeldOutSamples);
        var report = CompressionReport.Create(options with { CalibrationPath = TestData.Mnist("calibration-256.npy") }, artifact, TestData.Mnist("calibration-256.npy"), null, null, prepared);
        Assert.Equal(student, report.Distillation!.StudentParameters);
        Assert.All(report.Layers, l => Assert.True(double.IsPositiveInfinity(l.SqnrDb), l.Node));
    }

    /// <summary>
    /// Pruning and weight sharing after distillation prune and share the student's layers (80% of their weights zero,
    /// 4-bit codes stored sparse or shared), and the generated code computes what the evaluator computes.
    /// </summary>
    [Fact]
    public void PruningAndSharingCompressTheStudent()
    {
        string student = Students.Mlp().Save("mlp.onnx");
        var (images, _) = Students.TrainingSlice(1000);
        var options = Students.Options(student, images, epochs: 2) with { Pruning = 0.8, WeightSharing = 4 };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        Assert.Equal("distilled into mlp.onnx", prepared.CompressionStages[0].Name);
        var layers = prepared.Nodes.Where(n => n.OpType == "Dense").ToList();
        Assert.Equal([100, 784], prepared[layers[0].Inputs[1]].Shape!); // the student's first layer
        var weights = MagnitudePruning.PrunableWeights(prepared).SelectMany(w => prepared[w.Weight].Constant!.Floats).ToArray();
        Assert.InRange(weights.Count(v => v == 0) / (double)weights.Length, 0.8, 0.81);
        Assert.All(layers, n => Assert.True(n.Form is SparseDenseForm { Shared: not null } or SharedWeightsForm, $"{n.Name}: {n.Form}"));

        GeneratedCodeAgainstEvaluator(artifact, prepared, 10, (s, expected, y) => Tolerance.AssertClose(expected, y, $"digit {s}: generated code against the evaluator"));
    }

    /// <summary>
    /// Compression int8 after distillation: the student's layers become int8 arithmetic, the generated code computes what
    /// the evaluator computes bit for bit, and the int8 student keeps the float student's bar on the test digits.
    /// </summary>
    [Fact]
    public void AnInt8StudentRunsEndToEnd()
    {
        string student = Students.Mlp().Save("mlp.onnx");
        var (images, _) = Students.TrainingSlice(4000);
        var options = Students.Options(student, images, epochs: 12) with { Compression = "int8", CalibrationPath = TestData.Mnist("calibration-256.npy") };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        Assert.Equal(["distilled into mlp.onnx", "int8 arithmetic"], prepared.CompressionStages.Select(s => s.Name).Take(2));
        Assert.All(prepared.Nodes.Where(n => n.OpType == "Dense"), n => Assert.IsType<Int8DenseForm>(n.Form));
        double accuracy = Students.TestAccuracy(prepared, 300);
        output.WriteLine($"int8 student: {accuracy:P2} on 300 test digits");
        Assert.True(accuracy > 0.85, $"accuracy {accuracy:P2}");

        GeneratedCodeAgainstEvaluator(artifact, prepared, 20, (_, expected, y) => Assert.Equal(expected, y));
    }

    /// <summary>The generated code and the evaluator on the first <paramref name="digits"/> test digits, compared by <paramref name="check"/>(digit, evaluator, code).</summary>
    static void GeneratedCodeAgainstEvaluator(ModelGen.Artifact.ModelArtifact artifact, Graph prepared, int digits, Action<int, float[], float[]> check)
    {
        var models = GeneratedModels.Build(artifact);
        var test = NpyReader.Read(TestData.Mnist("test-images.npy")).Data;
        for (int s = 0; s < digits; s++)
        {
            var x = test[(s * 784)..((s + 1) * 784)];
            var expected = ReferenceEvaluator.Run(prepared, new Dictionary<string, TensorData> { ["image"] = new([1, 1, 28, 28], x) })["scores"].Floats;
            var y = new float[10];
            models.Run(artifact, [x], [y]);
            check(s, expected, y);
        }
    }
}
