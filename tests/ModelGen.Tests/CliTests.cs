using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>`modelgen compile` writes exactly what the source generator emits for the same options.</summary>
public sealed class CliTests
{
    [Fact]
    public void CompileWritesSourceByteIdenticalToTheGenerators()
    {
        string dir = Directory.CreateTempSubdirectory("modelgen-cli").FullName;
        string model = TestData.Mnist("lenet5.onnx");
        int exit = Cli.Program.Main(["compile", model, "--class", "LeNet5", "--namespace", "Demo.Models", "--out", dir, "--artifact", Path.Combine(dir, "obj", "lenet5.mgen")]);
        Assert.Equal(0, exit);
        byte[] cli = File.ReadAllBytes(Path.Combine(dir, "LeNet5.g.cs"));

        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model, ClassName = "LeNet5", Namespace = "Demo.Models" });
        var generated = GeneratedModels.Build(artifact).Sources["Demo.Models.LeNet5.g.cs"];
        Assert.Equal(new System.Text.UTF8Encoding(false).GetBytes(generated), cli);
        Assert.Equal(ArtifactText.Write(artifact), File.ReadAllText(Path.Combine(dir, "obj", "lenet5.mgen")));
    }

    [Fact]
    public void ErrorsGoToStderrInMSBuildFormatWithExitCode1()
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        try
        {
            int exit = Cli.Program.Main(["compile", "/no/such/model.onnx", "--out", Path.GetTempPath()]);
            Assert.Equal(1, exit);
        }
        finally { Console.SetError(old); }
        Assert.Contains("/no/such/model.onnx: error MG0001: ", stderr.ToString());
    }

    [Fact]
    public void InspectListsOperatorsSupportParametersAndShapes()
    {
        var r = ModelInspector.Inspect(TestData.Mnist("lenet300.onnx"));
        Assert.Equal(266_610, r.Parameters);
        Assert.Equal([1, 1, 28, 28], r.Inputs.Single().Shape!);
        Assert.Equal([1, 10], r.Outputs.Single().Shape!);
        Assert.All(r.Operators, o => Assert.True(o.Supported));
        Assert.Null(r.Problem);

        string path = new OnnxBuilder().Input("x", null, 4).Node("Einsum", ["x"], ["s"]).Node("Relu", ["s"], ["y"]).Output("y").Save();
        var bad = ModelInspector.Inspect(path, batchSize: 2);
        Assert.Equal([2, 4], bad.Inputs.Single().Shape!);
        Assert.Contains(bad.Operators, o => o.OpType == "Einsum" && !o.Supported);
        Assert.Contains(bad.Operators, o => o.OpType == "Relu" && o.Supported);
        Assert.StartsWith("MG1001", bad.Problem);
        Assert.Equal(2, Cli.Program.Main(["inspect", path]));
    }
}
