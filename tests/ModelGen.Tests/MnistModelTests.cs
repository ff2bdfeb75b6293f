using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Issue 2's acceptance: LeNet-5 and LeNet-300-100 compiled through the source generator give ONNX
/// Runtime's outputs (1e-4 relative) and top-1 on all 2,000 test digits.
/// </summary>
public sealed class MnistModelTests
{
    [Theory]
    [InlineData("lenet5.onnx", 0.9735)]
    [InlineData("lenet300.onnx", 0.9520)]
    public void GeneratedClassMatchesOnnxRuntimeOnAllTestDigits(string file, double expectedAccuracy)
    {
        string path = TestData.Mnist(file);
        var (images, shape) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var (labels, _) = TestData.ReadNpy(TestData.Mnist("test-labels.npy"));
        int count = shape[0], size = images.Length / count;

        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Net", Namespace = "Mnist.Tests" });
        var models = GeneratedModels.Build(artifact);
        var ours = new float[count * 10];
        models.RunMany(artifact, images, ours, count);

        using var ort = new OnnxRuntimeOracle(path);
        int agree = 0, correctOurs = 0, correctOrt = 0;
        for (int i = 0; i < count; i++)
        {
            var expected = ort.Run(("image", images[(i * size)..((i + 1) * size)], [1, 1, 28, 28]))[0];
            var actual = ours.AsSpan(i * 10, 10);
            Tolerance.AssertClose(expected, actual, $"digit {i}");
            int top = Tolerance.ArgMax(actual);
            agree += top == Tolerance.ArgMax(expected) ? 1 : 0;
            correctOurs += top == (int)labels[i] ? 1 : 0;
            correctOrt += Tolerance.ArgMax(expected) == (int)labels[i] ? 1 : 0;
        }
        Assert.Equal(count, agree);
        Assert.Equal(correctOrt, correctOurs);
        Assert.Equal(expectedAccuracy, correctOurs / (double)count, 4);
    }

    [Fact]
    public void PredictAgreesWithRunAndSpansOfTheWrongLengthAreRejected()
    {
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "LeNet5", Namespace = "Mnist.Tests" });
        var models = GeneratedModels.Build(artifact);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        for (int i = 0; i < 20; i++)
        {
            var input = images[(i * 784)..((i + 1) * 784)];
            var output = new float[10];
            models.Run(artifact, [input], [output]);
            Assert.Equal(Tolerance.ArgMax(output), models.Predict(artifact, input));
        }
        var e = Assert.Throws<System.Reflection.TargetInvocationException>(() => models.Run(artifact, [new float[783]], [new float[10]]));
        var arg = Assert.IsType<ArgumentException>(e.InnerException);
        Assert.Equal("image", arg.ParamName);
        Assert.Contains("784", arg.Message);
        e = Assert.Throws<System.Reflection.TargetInvocationException>(() => models.Run(artifact, [new float[784]], [new float[11]]));
        Assert.Equal("scores", Assert.IsType<ArgumentException>(e.InnerException).ParamName);

        Assert.Equal(784, models.Member(artifact, "InputLength"));
        Assert.Equal(10, models.Member(artifact, "OutputLength"));
        // 431,080 parameters of 4 bytes (README of data/mnist), and the zeros that fill f2's 4-row panels:
        // its W [10, 500] is embedded as [12, 512].
        Assert.Equal(431_080 * 4 + (12 * 512 - 10 * 500) * 4, models.Member(artifact, "WeightBytes"));
        Assert.Equal((int)artifact.ScratchBytes, models.Member(artifact, "ScratchBytes"));
    }

    [Fact]
    public void CompilingTwiceGivesByteIdenticalArtifactAndSource()
    {
        var options = new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx"), Namespace = "A.B" };
        string a = ArtifactText.Write(ModelCompiler.Compile(options));
        string b = ArtifactText.Write(ModelCompiler.Compile(options));
        Assert.Equal(a, b);
        Assert.Equal(Generator.Emit.ModelEmitter.Emit(ArtifactText.Read(a)), Generator.Emit.ModelEmitter.Emit(ArtifactText.Read(b)));
        Assert.Equal("Lenet300", ArtifactText.Read(a).ClassName);
    }

    [Fact]
    public void RunAllocatesNothingAndIsSafeFromManyThreadsAtOnce()
    {
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "Shared", Namespace = "Mnist.Threads" });
        var models = GeneratedModels.Build(artifact);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        Assert.Equal(0, models.AllocatedBytes(artifact, images[..784], new float[10], 100));

        const int count = 400;
        var sequential = new float[count * 10];
        models.RunMany(artifact, images, sequential, count);
        var parallel = new float[count * 10];
        // Each worker runs a different slice, many at once; the per-thread scratch keeps them apart.
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, worker =>
        {
            for (int i = worker; i < count; i += 8)
            {
                var y = new float[10];
                models.Run(artifact, [images[(i * 784)..((i + 1) * 784)]], [y]);
                y.CopyTo(parallel, i * 10);
            }
        });
        Assert.Equal(sequential, parallel);
    }
}
