using ModelGen.IntegrationTests.Support;
using ModelGen.Tasks;

namespace ModelGen.IntegrationTests;

/// <summary>The task carries the distillation metadata to modelgen (issue 25): a student file made absolute, a derived spec as it is.</summary>
public sealed class StudentTaskTests
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "modelgen task-" + Guid.NewGuid().ToString("N")[..8]);

    private ModelGenCompile NewTask() => new()
    {
        BuildEngine = new FakeBuildEngine(),
        ModelFile = Path.Combine(_folder, "teacher.onnx"),
        ArtifactFile = Path.Combine(_folder, "Teacher.mgen"),
        ToolAssembly = Path.Combine(_folder, "modelgen.dll"),
    };

    [Theory]
    [InlineData("students/mlp.onnx", true)]
    [InlineData("MLP.ONNX", true)]
    [InlineData(" width:0.5,depthwise ", false)]
    public void TheStudentGoesOnTheCommandLine(string student, bool file)
    {
        ModelGenCompile task = NewTask();
        task.Student = student;
        task.StudentInit = "fresh";
        task.DistillationTemperature = " 4 ";
        task.DistillationLabelWeight = "0.3";
        // The test folder has no spaces to quote; a comma is quoted (CommandLineBuilder quotes all but a few characters).
        string expected = file ? Path.GetFullPath(student) : $"\"{student.Trim()}\"";
        Assert.Contains($" --student {expected} --student-init fresh --distillation-temperature 4 --distillation-label-weight 0.3 ", task.CommandLineForTests);
        foreach (string name in new[] { "Student", "StudentInit", "DistillationTemperature", "DistillationLabelWeight" })
            Assert.Contains(name, ModelGenCheckItems.Known);
    }

    [Fact]
    public void NoStudentAddsNothing() => Assert.DoesNotContain("--student", NewTask().CommandLineForTests);
}
