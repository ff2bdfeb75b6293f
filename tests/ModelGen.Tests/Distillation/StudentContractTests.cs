using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Ir;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Distillation;

/// <summary>A student file keeps the teacher's contract (LeNet-5: input 'image' [1, 1, 28, 28], output 'scores' [1, 10] logits), or MG4010 says what differs.</summary>
public class StudentContractTests
{
    static Graph Teacher()
    {
        var graph = ModelCompiler.Import(TestData.Mnist("lenet5.onnx"));
        Compiler.Normalize.Passes.Run(graph);
        return graph;
    }

    static Graph Load(string path)
    {
        var graph = ModelCompiler.Import(path);
        Compiler.Normalize.Passes.Run(graph);
        return graph;
    }

    [Fact]
    public void AnMlpWithTheTeachersInputAndOutputPasses()
    {
        string path = Students.Mlp().Save("mlp.onnx");
        StudentContract.Check(Teacher(), Load(path), path);
    }

    [Theory]
    [InlineData("input name", "inputs are 'pixels' in the student, 'image' in the teacher")]
    [InlineData("output name", "outputs are 'logits' in the student, 'scores' in the teacher")]
    [InlineData("output shape", "output 'scores' has shape [1x5] in the student, [1x10] in the teacher")]
    [InlineData("input shape", "input 'image' has shape [1x1x14x14] in the student, [1x1x28x28] in the teacher")]
    [InlineData("softmax", "the teacher's output 'scores' is not a Softmax's probabilities, the student's is")]
    public void AMismatchingStudentIsMG4010NamingTheDifference(string what, string difference)
    {
        var student = what switch
        {
            "input name" => Students.Mlp(input: "pixels"),
            "output name" => Students.Mlp(output: "logits"),
            "output shape" => Students.Mlp(classes: 5),
            "input shape" => new OnnxBuilder().Input("image", null, 1, 14, 14)
                .Initializer("w", [10, 196], OnnxBuilder.Random(1960, 1))
                .Node("Flatten", ["image"], ["flat"], ("axis", 1L))
                .Node("Gemm", ["flat", "w"], ["scores"], ("transB", 1L)).Output("scores"),
            _ => new OnnxBuilder().Input("image", null, 1, 28, 28)
                .Initializer("w", [10, 784], OnnxBuilder.Random(7840, 1))
                .Node("Flatten", ["image"], ["flat"], ("axis", 1L))
                .Node("Gemm", ["flat", "w"], ["logits"], ("transB", 1L))
                .Node("Softmax", ["logits"], ["scores"], ("axis", 1L)).Output("scores"),
        };
        string path = student.Save("student.onnx");
        var e = Assert.Throws<ModelGenException>(() => StudentContract.Check(Teacher(), Load(path), path));
        Assert.Equal(ErrorCodes.StudentContractMismatch, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains(difference, e.Message);
        Assert.Contains("lenet5.onnx", e.Message);
    }

    /// <summary>The compile reaches the check before it trains: the student file is named, and nothing is read from the training data.</summary>
    [Fact]
    public void ACompileWithAMismatchingStudentIsMG4010()
    {
        string path = Students.Mlp(output: "logits").Save("student.onnx");
        var options = Students.Options(path, "/nonexistent/train.npy");
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Prepare(options));
        Assert.Equal(ErrorCodes.StudentContractMismatch, e.Code);
        Assert.Equal(path, e.File);
    }

    /// <summary>The student goes through the loader of any model (untrusted input): a file that is not ONNX is MG0003 naming it.</summary>
    [Fact]
    public void AStudentThatIsNotOnnxIsTheLoadersError()
    {
        string path = Path.Combine(Path.GetTempPath(), "modelgen-tests", Guid.NewGuid().ToString("N") + ".onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "not a model");
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Prepare(Students.Options(path, "/nonexistent/train.npy")));
        Assert.Equal(path, e.File);
        Assert.StartsWith("MG000", e.Code);
    }
}
