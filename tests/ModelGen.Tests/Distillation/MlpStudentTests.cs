using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Distillation;

/// <summary>An MLP 784-100-10 distilled label-free from LeNet-5 on 4,000 training digits, once for the tests of <see cref="MlpStudentTests"/>.</summary>
public sealed class DistilledMlp
{
    public string StudentPath { get; } = Students.Mlp().Save("mlp.onnx");
    public (string Images, string Labels) Train { get; } = Students.TrainingSlice(4000);
    public CompileOptions Options { get; }
    public ModelArtifact Artifact { get; }
    public Graph Prepared { get; }

    public DistilledMlp()
    {
        Options = Students.Options(StudentPath, Train.Images, epochs: 12);
        Artifact = ModelCompiler.Compile(Options, out var prepared);
        Prepared = prepared;
    }
}

/// <summary>
/// A user-given student of another architecture (issue 25 items 1, 2): the MLP learns LeNet-5's outputs without labels,
/// and what the build emits is the student, checked against the reference evaluator and ONNX Runtime.
/// </summary>
public class MlpStudentTests(DistilledMlp mlp, ITestOutputHelper output) : IClassFixture<DistilledMlp>
{
    /// <summary>
    /// The bar: above 85% on the first 500 test digits. The same MLP trained on all 8,000 labelled digits reaches about
    /// 94% (the PyTorch figure: 93.85%), and half the data for twelve epochs costs a few points; an MLP
    /// that learned nothing from the teacher scores about 10%.
    /// </summary>
    [Fact]
    public void TheStudentLearnsTheDigitsFromTheTeacherAlone()
    {
        double accuracy = Students.TestAccuracy(mlp.Prepared, 500);
        var stage = mlp.Prepared.CompressionStages[0];
        output.WriteLine($"{stage.Name}: {Compiler.Training.TrainingSummary.Summary(stage.Training!)}; accuracy on 500 test digits {accuracy:P2}");
        Assert.Equal("distilled into mlp.onnx", stage.Name);
        Assert.True(stage.Training!.AccuracyIsAgreement); // label-free: held out against the teacher
        Assert.True(accuracy > 0.85, $"accuracy {accuracy:P2}");
    }

    [Fact]
    public void TheGraphIsTheStudentsWithTheTeachersContract()
    {
        Assert.Equal(["Flatten", "Dense", "Dense"], mlp.Prepared.Nodes.Select(n => n.OpType));
        Assert.Equal(Students.MlpParameters, DistillationReport.Parameters(mlp.Prepared));
        Assert.Equal("Lenet5", mlp.Artifact.ClassName); // named as the teacher's class would be
        Assert.Equal(["image"], mlp.Prepared.Inputs);
        Assert.Equal(["scores"], mlp.Prepared.Outputs);
        // The student's weights moved from the file's.
        var original = ModelCompiler.Import(mlp.StudentPath);
        Assert.NotEqual(original["fc1.weight"].Constant!.Floats, mlp.Prepared[mlp.Prepared.Nodes[1].Inputs[1]].Constant!.Floats);
    }

    /// <summary>The generated code computes what the evaluator computes (float32 within 1e-4), and ONNX Runtime on the student's exported form agrees too.</summary>
    [Fact]
    public void TheGeneratedCodeAndOnnxRuntimeAgreeWithTheEvaluator()
    {
        var models = GeneratedModels.Build(mlp.Artifact);
        string exported = Path.Combine(Path.GetDirectoryName(mlp.StudentPath)!, "distilled.onnx");
        Assert.Empty(OnnxExport.Write(mlp.Prepared, exported));
        using var ort = new OnnxRuntimeOracle(exported);
        var images = NpyReader.Read(TestData.Mnist("test-images.npy")).Data;
        for (int s = 0; s < 20; s++)
        {
            var x = images[(s * 784)..((s + 1) * 784)];
            var expected = ReferenceEvaluator.Run(mlp.Prepared, new Dictionary<string, TensorData> { ["image"] = new([1, 1, 28, 28], x) })["scores"].Floats;
            var y = new float[10];
            models.Run(mlp.Artifact, [x], [y]);
            Tolerance.AssertClose(expected, y, $"digit {s}: generated code against the evaluator");
            Tolerance.AssertClose(expected, ort.Run(("image", x, [1, 1, 28, 28]))[0], $"digit {s}: ONNX Runtime on the exported student against the evaluator");
        }
    }

    /// <summary>The report sets the teacher against the student: parameters, multiply-adds (worked out from the layers), arena, agreement.</summary>
    [Fact]
    public void TheReportSetsTheTeacherAgainstTheStudent()
    {
        var (images, labels) = Students.TestSlice(200);
        var report = CompressionReport.Create(mlp.Options with { CalibrationPath = images }, mlp.Artifact, images, labels, null, mlp.Prepared);
        var d = report.Distillation!;
        Assert.Equal("mlp.onnx", d.Student);
        Assert.Equal(431_080, d.TeacherParameters); // data/mnist/README.md
        Assert.Equal(Students.MlpParameters, d.StudentParameters);
        Assert.Equal(784 * 100 + 100 * 10, d.StudentMultiplyAdds);
        Assert.True(d.TeacherMultiplyAdds > 10 * d.StudentMultiplyAdds); // LeNet-5's convolutions: 2.3 million
        Assert.Equal(mlp.Artifact.ScratchBytes, d.StudentArenaBytes);
        Assert.InRange(report.WeightBytesAfter, Students.MlpParameters * 4, Students.MlpParameters * 4 * 1.01); // float32, and the artifact's alignment
        Assert.InRange(d.HeldOutAgreement!.Value, 0.8, 1);
        Assert.Equal(400, d.HeldOutSamples); // a tenth of 4,000
        Assert.Equal(d.HeldOutAgreement < DistillationSettings.AgreementWarning, d.Warning is not null);
        Assert.NotNull(report.CorrectCompressed);
        string md = report.Markdown();
        output.WriteLine(md);
        Assert.Contains("| parameters | 431,080 | 79,510 |", md);
        Assert.Contains("| distilled into mlp.onnx |", md);
        Assert.Contains("distilled into mlp.onnx (held-out agreement with the teacher", report.Summary());
        // The layers are the student's, compared with the student as distilled (float32: exact).
        Assert.All(report.Layers, l => Assert.True(double.IsPositiveInfinity(l.SqnrDb)));
        Assert.Equal(2, report.Layers.Count);
        Assert.Contains("\"studentParameters\": 79510", report.Json());
    }
}

public class DistillationWarningTests
{
    /// <summary>MG4011 below 90% held-out agreement, none at or above it.</summary>
    [Theory]
    [InlineData(0.899, true)]
    [InlineData(0.9, false)]
    [InlineData(0.97, false)]
    public void LowHeldOutAgreementWarns(double agreement, bool warns)
    {
        var outcome = new DistillationOutcome("mlp.onnx", new Graph(), new Compiler.Training.TrainingResult(null, [], 0, Compiler.Training.StopReason.Completed, "", TimeSpan.Zero, 900, 100, true), agreement, 100);
        Assert.Equal(warns, outcome.Warning is not null);
        if (warns) Assert.Contains("89.90% of the 100 held-out training samples, below 90%", outcome.Warning);
    }
}
