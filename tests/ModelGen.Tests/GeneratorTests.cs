using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Generator;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>The generator's caching contract and diagnostics (CSharpGeneratorDriver, no build).</summary>
public sealed class GeneratorTests
{
    sealed class Text(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }

    static string Artifact(string className) => ArtifactText.Write(ModelCompiler.Compile(new CompileOptions
    {
        ModelPath = new OnnxBuilder().Input("x", 1, 4).Node("Relu", ["x"], ["y"]).Output("y").Save(),
        ClassName = className,
        Namespace = "Gen.Tests",
    }));

    static GeneratorDriver Driver(params AdditionalText[] texts) =>
        CSharpGeneratorDriver.Create([new ModelGenerator().AsSourceGenerator()], texts, driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    static CSharpCompilation Compilation(string code = "class C {}") =>
        CSharpCompilation.Create("t", [CSharpSyntaxTree.ParseText(code)], [MetadataReference.CreateFromFile(typeof(object).Assembly.Location)]);

    [Fact]
    public void AnUnrelatedEditReusesTheCachedOutputAndAChangedArtifactRegenerates()
    {
        var text = new Text("/p/obj/a.mgen", Artifact("A"));
        var driver = Driver(text, new Text("/p/readme.txt", "not a model")).RunGenerators(Compilation());
        Assert.Single(driver.GetRunResult().GeneratedTrees);

        driver = driver.RunGenerators(Compilation("class C { int x; }"));
        var steps = driver.GetRunResult().Results[0].TrackedSteps["ModelGen.Emit"];
        Assert.All(steps.SelectMany(s => s.Outputs), o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));

        driver = driver.ReplaceAdditionalText(text, new Text("/p/obj/a.mgen", Artifact("B")));
        driver = driver.RunGenerators(Compilation("class C { int x; }"));
        var result = driver.GetRunResult();
        Assert.Contains(result.Results[0].TrackedSteps["ModelGen.Emit"].SelectMany(s => s.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Equal("Gen.Tests.B.g.cs", result.Results[0].GeneratedSources.Single().HintName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("mgen 99\n")]
    [InlineData("mgen 1\nmodel class=\"A\"\n")]
    [InlineData("mgen 1\nnode kernel=Conv onnx=\"Conv\" name=\"n\" in=5 out=6\n")]
    public void AnUnreadableArtifactIsDiagnosticMG2001NotACrash(string content)
    {
        var driver = Driver(new Text("/p/obj/bad.mgen", content)).RunGenerators(Compilation());
        var result = driver.GetRunResult();
        Assert.Empty(result.GeneratedTrees);
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("MG2001", d.Id);
        Assert.Contains("/p/obj/bad.mgen", d.GetMessage());
        Assert.Null(result.Results[0].Exception);
    }

    /// <summary>
    /// Under tiered compilation, the default in an app, a method starts in unoptimized tier-0 code: every kernel
    /// method and every local function in one (a convolution's patch gather) must be AggressiveOptimization (or, for
    /// a loop-free helper, AggressiveInlining). A local function without it ran LeNet-5's float32 convolutions at half
    /// speed in modelgen bench, where the tests, which compare outputs only, could not see it.
    /// </summary>
    [Theory]
    [InlineData("lenet5.onnx", "none")]
    [InlineData("lenet5.onnx", "int8")]
    [InlineData("dwsep", "none")]
    [InlineData("dwsep", "int8")]
    [InlineData("stride2", "none")]
    [InlineData("log", "none")]
    public void EveryKernelMethodAndLocalFunctionIsOptimizedAtOnce(string model, string compression)
    {
        // stride2: a convolution with a horizontal stride of 2 still gathers its patches, in a local function.
        string path = model switch
        {
            "dwsep" => SyntheticModels.DepthwiseSeparableCnn().Save("dwsep-tiering.onnx"),
            "stride2" => new OnnxBuilder(13, "stride2").Input("x", 1, 3, 16, 16).Initializer("w", [8, 3, 3, 3], OnnxBuilder.Random(216, 1))
                .Node("Conv", ["x", "w"], ["y"], ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 })).Output("y").Save("stride2-tiering.onnx"),
            // log: the shared vector helper VectorLog.
            "log" => new OnnxBuilder(13, "log").Input("x", 1, 64).Node("Log", ["x"], ["y"]).Output("y").Save("log-tiering.onnx"),
            _ => TestData.Mnist(model),
        };
        var artifact = ModelCompiler.Compile(new CompileOptions
        {
            ModelPath = path, ClassName = "Net", Namespace = "Tiering",
            Compression = compression, CalibrationPath = compression == "none" ? null : TestData.Mnist("calibration-256.npy"),
        });
        var root = CSharpSyntaxTree.ParseText(ModelGen.Generator.Emit.ModelEmitter.Emit(artifact)).GetRoot();
        var kernels = root.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax>().Single(c => c.Identifier.Text == "Kernels");
        var methods = kernels.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax>()
            .Select(m => (Name: m.Identifier.Text, m.AttributeLists))
            .Concat(kernels.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.LocalFunctionStatementSyntax>().Select(f => (Name: f.Identifier.Text, f.AttributeLists)))
            .ToList();
        Assert.NotEmpty(methods);
        if (model == "stride2") Assert.Contains(methods, m => m.Name == "Patches");
        if (model == "log") Assert.Contains(methods, m => m.Name == "VectorLog");
        // Loop-free helpers may be AggressiveInlining instead: inlined, they are compiled with the kernel that calls them.
        foreach (var (name, attributes) in methods)
            Assert.True(attributes.ToString() is var a && (a.Contains("AggressiveOptimization") || a.Contains("AggressiveInlining")), $"{name} is neither AggressiveOptimization nor AggressiveInlining");
    }

    /// <summary>
    /// Keeps OperatorConformanceTests' GemmOneRowZigzag case meaningful: a one-row layer with more than ZigzagBytes of
    /// weights alternates its reading direction (the conformance suite checks a first and a second call against
    /// ONNX Runtime), and one with fewer reads in order only.
    /// </summary>
    [Theory]
    [InlineData(1030, 259, true)]
    [InlineData(784, 300, false)]
    public void OnlyOneRowLayersLargerThanL2AlternateTheirReadingDirection(int k, int n, bool alternates)
    {
        string path = new OnnxBuilder().Input("a", 1, k).Initializer("B", [n, k], OnnxBuilder.Random(n * k, 3))
            .Node("Gemm", ["a", "B"], ["y"], ("transB", 1)).Output("y").Save($"zigzag-{k}x{n}.onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Net", Namespace = "Zigzag" });
        var source = ModelGen.Generator.Emit.ModelEmitter.Emit(artifact);
        Assert.Equal(alternates, source.Contains("Backward = !backward"));
    }

    [Theory]
    [InlineData("none", "lenet300.onnx")]
    [InlineData("vector128", "lenet300.onnx")]
    [InlineData("none", "lenet5.onnx")]
    [InlineData("vector128", "lenet5.onnx")]
    [InlineData("none", "dwsep")]
    [InlineData("vector128", "dwsep")]
    public void EverySimdLevelGivesOnnxRuntimesOutputs(string simd, string model)
    {
        string path = model == "dwsep" ? SyntheticModels.DepthwiseSeparableCnn().Save("dwsep-" + simd + ".onnx") : TestData.Mnist(model);
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Net", Namespace = "Simd." + simd + "." + Path.GetFileNameWithoutExtension(model), Simd = simd });
        var source = ModelGen.Generator.Emit.ModelEmitter.Emit(artifact);
        Assert.Equal(simd == "none", !source.Contains("Vector128"));
        Assert.DoesNotContain("Vector256", source);
        Assert.DoesNotContain("Vector512", source);
        var models = GeneratedModels.Build(artifact);
        Assert.Equal(simd == "vector128" && System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? "vector128" : "none", SimdLevelOf(models, artifact));
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        using var ort = new OnnxRuntimeOracle(path);
        for (int i = 0; i < 20; i++)
        {
            var x = images[(i * 784)..((i + 1) * 784)];
            var y = new float[10];
            models.Run(artifact, [x], [y]);
            Tolerance.AssertClose(ort.Run(("image", x, [1, 1, 28, 28]))[0], y, $"digit {i}");
        }
    }

    /// <summary>
    /// Issue 19: Simd naming one level emits that level's paths alone (and the scalar code its tails need): no
    /// wider vectors and none of the x86 int8 paths that only auto takes (AVX2, AVX-VNNI, AVX-512), for the int8
    /// kernels too, whose outputs stay the evaluator's bits. SimdLevel says which path ran.
    /// </summary>
    [Theory]
    [InlineData("lenet5.onnx")]
    [InlineData("dwsep")]
    public void Vector128EmitsOnlyVector128PathsForInt8ModelsAndKeepsTheEvaluatorsBits(string model)
    {
        string path = model == "dwsep" ? SyntheticModels.DepthwiseSeparableCnn().Save("dwsep-int8-v128.onnx") : TestData.Mnist(model);
        var options = new CompileOptions { ModelPath = path, ClassName = "Net", Namespace = "Simd.Int8V128." + Path.GetFileNameWithoutExtension(model), Compression = "int8", CalibrationPath = TestData.Mnist("calibration-256.npy"), Simd = "vector128" };
        var artifact = ModelCompiler.Compile(options, out var compressed);
        var source = ModelGen.Generator.Emit.ModelEmitter.Emit(artifact);
        foreach (var wider in new[] { "Vector256", "Vector512", "Avx2", "AvxVnni", "Avx512" })
            Assert.DoesNotContain(wider, source);
        Assert.Contains("Vector128", source);
        var models = GeneratedModels.Build(artifact);
        Assert.Equal(System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? "vector128" : "none", SimdLevelOf(models, artifact));
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        for (int i = 0; i < 50; i++)
        {
            var x = images[(i * 784)..((i + 1) * 784)];
            var y = new float[10];
            models.Run(artifact, [x], [y]);
            var expected = ReferenceEvaluator.Run(compressed, new Dictionary<string, TensorData> { ["image"] = new([1, 1, 28, 28], x) })[compressed.Outputs[0]].Floats;
            for (int j = 0; j < 10; j++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[j]) == BitConverter.SingleToInt32Bits(y[j]), $"digit {i}, output {j}: {y[j]} against the evaluator's {expected[j]}");
        }
    }

    [Fact]
    public void SimdLevelIsTheWidestPathTheKernelsTakeInThisProcess()
    {
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx"), ClassName = "Net", Namespace = "Simd.Level.Auto" });
        var models = GeneratedModels.Build(artifact);
        string expected = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "vector512"
            : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "vector256"
            : System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? "vector128" : "none";
        Assert.Equal(expected, SimdLevelOf(models, artifact));
    }

    static string SimdLevelOf(GeneratedModels models, ModelArtifact artifact) =>
        (string)models.ModelType(artifact).GetProperty("SimdLevel")!.GetValue(null)!;

    [Fact]
    public void GeneratedCodeHasNoDocumentationWarningsWhereTheConsumerGeneratesDocumentation()
    {
        // GenerateDocumentationFile=true: a bare cref="Run" was ambiguous (CS0419) between the two overloads.
        // float32 with weights and Predict, int64 inputs, two outputs: every doc comment the emitter writes.
        var lenet = ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "LeNet5", Namespace = "Docs" });
        var embedder = ModelCompiler.Compile(new CompileOptions { ModelPath = EmbeddingTests.Model().Save(), ClassName = "Embedder", Namespace = "Docs" });
        var two = ModelCompiler.Compile(new CompileOptions
        {
            ModelPath = new OnnxBuilder().Input("x", 1, 4).Node("Relu", ["x"], ["y"]).Node("Neg", ["x"], ["z"]).Output("y").Output("z").Save(),
            ClassName = "Two", Namespace = "Docs",
        });
        var models = GeneratedModels.BuildWith("", documentation: true, lenet, embedder, two); // asserts no warning at all, CS0419, CS1574 and CS1591 included
        Assert.Contains("<see cref=\"Run(global::System.ReadOnlySpan{float}, global::System.Span{float})\"/>", models.Sources["Docs.LeNet5.g.cs"]);

        // The check is live: the bare cref the emitter used to write fails the same build.
        var e = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => GeneratedModels.BuildWith("/// <summary>See <see cref=\"Docs.Two.Run\"/>.</summary>\npublic static class Probe { }", documentation: true, two));
        Assert.Contains("CS0419", e.Message);
    }
}
