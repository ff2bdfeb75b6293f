using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Distillation;

/// <summary>The Student value and the distillation options: what parses, and MG0007 naming the option for what does not.</summary>
public class StudentSpecTests
{
    const string Model = "/models/teacher.onnx";

    [Theory]
    [InlineData("width:0.25", 0.25, false)]
    [InlineData("depthwise", null, true)]
    [InlineData("width:0.5,depthwise", 0.5, true)]
    [InlineData("width:1", 1.0, false)]
    [InlineData(" Depthwise , WIDTH: 0.75 ", 0.75, true)]
    public void DerivedSpecsParse(string text, double? width, bool depthwise)
    {
        var spec = StudentSpec.Parse(text, Model)!;
        Assert.Null(spec.File);
        Assert.Equal(width, spec.Width);
        Assert.Equal(depthwise, spec.Depthwise);
    }

    [Theory]
    [InlineData("students/mlp.onnx")]
    [InlineData("MLP.ONNX")]
    [InlineData("/abs/student")]
    public void AFileIsMadeAbsolute(string text)
    {
        var spec = StudentSpec.Parse(text, Model)!;
        Assert.Equal(Path.GetFullPath(text), spec.File);
        Assert.Null(spec.Width);
        Assert.False(spec.Depthwise);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void EmptyIsNoStudent(string? text) => Assert.Null(StudentSpec.Parse(text, Model));

    [Theory]
    [InlineData("width:0")]
    [InlineData("width:1.5")]
    [InlineData("width:-0.5")]
    [InlineData("width:abc")]
    [InlineData("width")]
    [InlineData("width:NaN")]
    [InlineData("depthwise:2")]
    [InlineData("width:0.5,width:0.25")]
    [InlineData("depthwise,depthwise")]
    [InlineData("mobilenet")]
    [InlineData("width:0.5,")]
    public void BadSpecsAreMG0007NamingTheOption(string text)
    {
        var e = Assert.Throws<ModelGenException>(() => StudentSpec.Parse(text, Model));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Equal(Model, e.File);
        Assert.Contains($"Student (--student) '{text}'", e.Message);
        Assert.Contains("width:0.25", e.Message); // says what to write
    }

    static CompileOptions Good => new() { ModelPath = Model, Student = "mlp.onnx", TrainingDataPath = "/data/train.npy" };

    [Fact]
    public void SettingsTakeTheDefaultsAndTheFineTuningOptions()
    {
        var s = DistillationSettings.From(Good with { Epochs = 7, Seed = 3, TrainingAugmentation = "shift:2" })!;
        Assert.Equal(Path.GetFullPath("mlp.onnx"), s.Student.File);
        Assert.Equal(StudentInit.Own, s.Init);
        Assert.Equal(8, s.Temperature);
        Assert.Equal(0.5, s.LabelWeight);
        Assert.Equal(1e-3, s.Training.LearningRate); // a student is trained, not fine-tuned
        Assert.Equal((7, 3, 2), (s.Training.Epochs, s.Training.Seed, s.Training.Augmentation.MaxShift));
        var fresh = DistillationSettings.From(Good with { StudentInit = "Fresh", DistillationTemperature = 4, DistillationLabelWeight = 1, TrainingLabelsPath = "/data/labels.npy", LearningRate = 0.01f })!;
        Assert.Equal((StudentInit.Fresh, 4.0, 1.0), (fresh.Init, fresh.Temperature, fresh.LabelWeight));
        Assert.Equal(0.01f, (float)fresh.Training.LearningRate);
        Assert.Null(DistillationSettings.From(Good with { Student = null }));
    }

    [Theory]
    [InlineData("no data", "trained by distillation on TrainingData (--training-data), which is not given")]
    [InlineData("temperature 0", "DistillationTemperature (--distillation-temperature) must be above 0")]
    [InlineData("temperature 1000", "DistillationTemperature (--distillation-temperature) must be above 0")]
    [InlineData("label weight 2", "DistillationLabelWeight (--distillation-label-weight) is the cross-entropy's share")]
    [InlineData("label weight without labels", "TrainingLabels (--training-labels) are not given")]
    [InlineData("init", "StudentInit (--student-init) 'random' is not own")]
    [InlineData("options without a student", "give the Student")]
    [InlineData("mixed", "Compression mixed-weights does not take a Student (--student) yet")]
    public void BadDistillationOptionsAreMG0007(string what, string message)
    {
        var options = what switch
        {
            "no data" => Good with { TrainingDataPath = null },
            "temperature 0" => Good with { DistillationTemperature = 0 },
            "temperature 1000" => Good with { DistillationTemperature = 1000 },
            "label weight 2" => Good with { DistillationLabelWeight = 2, TrainingLabelsPath = "/data/labels.npy" },
            "label weight without labels" => Good with { DistillationLabelWeight = 0.7 },
            "init" => Good with { StudentInit = "random" },
            "mixed" => Good with { Compression = "Mixed-Weights", LayerPrecisions = new Dictionary<string, string>() },
            _ => Good with { Student = null, TrainingDataPath = null, DistillationTemperature = 3 },
        };
        // Through the plan, as a build parses the options: before the model is read (the model file does not exist).
        var e = Assert.Throws<ModelGenException>(() => CompressionPlan.Parse(options));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void TrainingDataWithAStudentAloneIsUsed()
    {
        Compiler.Training.FineTuning.Validate(Good); // no "nothing trains on it"
        var plan = CompressionPlan.Parse(Good);
        Assert.IsType<DistillationPass>(Assert.Single(plan.Passes()));
        Assert.Equal(CompressionStageOrder.Distill, plan.Passes()[0].Stage);
        Assert.True(CompressionStageOrder.Distill < CompressionStageOrder.Structural);
    }

    [Fact]
    public void TheOriginalHasNoStudent()
    {
        var original = (Good with { StudentInit = "fresh", DistillationTemperature = 3 }).Original;
        Assert.Null(original.Student);
        Assert.Null(CompressionPlan.Parse(original).Distillation);
    }
}

/// <summary>modelgen compile and bench reach the same checks (MG0007 before any work).</summary>
[Collection("Console")] // Console.SetError is process-wide
public class StudentCliTests
{
    static (int Exit, string Errors) Modelgen(params string[] args)
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        try { return (Cli.Program.Main(args), stderr.ToString()); }
        finally { Console.SetError(old); }
    }

    [Theory]
    [InlineData("compile")]
    [InlineData("bench")]
    public void ABadStudentIsMG0007(string command)
    {
        var (exit, errors) = command == "compile"
            ? Modelgen("compile", TestData.Mnist("lenet5.onnx"), "--student", "width:2", "--training-data", TestData.Mnist("calibration-256.npy"), "--out", Path.GetTempPath())
            : Modelgen("bench", TestData.Mnist("lenet5.onnx"), "--student", "width:2", "--training-data", TestData.Mnist("calibration-256.npy"));
        Assert.Equal(1, exit);
        Assert.Contains("error MG0007: Student (--student) 'width:2'", errors);
    }

    /// <summary>
    /// Only the calibration samples, stretched by augmentation (the teacher labels each shifted sample): two epochs on 231
    /// of them leave the student far from the teacher, and the compile warns with MG4011 and writes the report anyway.
    /// </summary>
    [Fact]
    public void LowHeldOutAgreementIsWarningMG4011()
    {
        string student = Students.Mlp().Save("mlp.onnx");
        string calibration = TestData.Mnist("calibration-256.npy"), output = Path.Combine(Path.GetDirectoryName(student)!, "out");
        var (exit, errors) = Modelgen("compile", TestData.Mnist("lenet5.onnx"), "--student", student, "--training-data", calibration, "--augment", "shift:2",
            "--epochs", "2", "--calibration", calibration, "--out", output);
        Assert.Equal(0, exit);
        Assert.Contains($"{TestData.Mnist("lenet5.onnx")}: warning MG4011: the distilled student (mlp.onnx) agrees with the teacher's top class on ", errors);
        Assert.Contains("of the 25 held-out training samples, below 90%", errors);
        string report = File.ReadAllText(Path.Combine(output, "Lenet5.report.md"));
        Assert.Contains("**Warning:** the distilled student (mlp.onnx)", report);
        Assert.Contains("| parameters | 431,080 | 79,510 |", report);
    }

    [Fact]
    public void AStudentWithoutTrainingDataIsMG0007()
    {
        var (exit, errors) = Modelgen("compile", TestData.Mnist("lenet5.onnx"), "--student", "depthwise", "--out", Path.GetTempPath());
        Assert.Equal(1, exit);
        Assert.Contains("error MG0007: Student (--student) is trained by distillation on TrainingData", errors);
    }
}
