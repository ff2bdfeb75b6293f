using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Generator;
using ModelGen.Generator.Emit;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>The artifact contract: its text form round-trips, every kernel kind has an emitter, defects are MG2001.</summary>
public sealed class ArtifactContractTests
{
    /// <summary>A float32 network with a convolution, a depthwise one, pooling and a fully connected layer.</summary>
    static string SmallCnn(string name) => new OnnxBuilder(13, name).Input("x", 1, 2, 6, 6)
        .Initializer("w1", [4, 2, 3, 3], OnnxBuilder.Random(72, 1)).Initializer("b1", [4], OnnxBuilder.Random(4, 2))
        .Node("Conv", ["x", "w1", "b1"], ["c"], ("pads", new[] { 1, 1, 1, 1 })).Node("Relu", ["c"], ["a"])
        .Initializer("w2", [4, 1, 3, 3], OnnxBuilder.Random(36, 3))
        .Node("Conv", ["a", "w2"], ["d"], ("group", 4), ("pads", new[] { 1, 1, 1, 1 }))
        .Node("MaxPool", ["d"], ["p"], ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 }))
        .Node("Flatten", ["p"], ["f"])
        .Initializer("w3", [36, 5], OnnxBuilder.Random(180, 4))
        .Node("Gemm", ["f", "w3"], ["y"])
        .Output("y").Save(name + ".onnx");

    public static TheoryData<string> Compressions => ["none", "int8-weights"];

    [Theory]
    [MemberData(nameof(Compressions))]
    public void WritingThenReadingGivesTheSameArtifact(string compression)
    {
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = SmallCnn("contract-" + compression), ClassName = "Net", Namespace = "Contract", Compression = compression });
        string text = ArtifactText.Write(artifact);
        var read = ArtifactText.Read(text);
        Assert.Equal(text, ArtifactText.Write(read));
        Assert.Equal(artifact.Tensors.Select(t => (t.Element, t.Storage, t.Offset)), read.Tensors.Select(t => (t.Element, t.Storage, t.Offset)));
        Assert.Equal(artifact.Nodes.Select(n => n.Kernel), read.Nodes.Select(n => n.Kernel));
        Assert.Equal(artifact.Nodes.Select(n => n.Attributes), read.Nodes.Select(n => n.Attributes));
        Assert.Contains(read.Nodes, n => n.Window is not null);
        Assert.Equal(artifact.Nodes.Select(n => n.Window), read.Nodes.Select(n => n.Window));
        Assert.Contains(read.Nodes, n => n.Dense is not null);
        Assert.Equal(artifact.Nodes.Select(n => n.Dense), read.Nodes.Select(n => n.Dense));
        Assert.Contains(read.Nodes, n => n.Conv is not null);
        Assert.Equal(artifact.Nodes.Select(n => n.Conv), read.Nodes.Select(n => n.Conv));
    }

    public static TheoryData<ConvAttributes> ConvForms => [new(1), new(4, ConvMethod.Depthwise), new(2, ConvMethod.Gemm, int8Weights: true), new(1, int8Weights: true),
        new(1, ConvMethod.Sparse, sparse: SparseConvFormat.Unstructured(4)), new(2, ConvMethod.Sparse, sparse: SparseConvFormat.NOfM(2, 4))];

    [Theory]
    [MemberData(nameof(ConvForms))]
    public void EachConvFormReadsBackAsWritten(ConvAttributes form)
    {
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = SmallCnn("contract-conv"), ClassName = "Net", Namespace = "Contract" });
        var conv = artifact.Nodes.First(n => n.Kernel == KernelKind.Conv);
        foreach (var key in new[] { "group", "method", "weights", "sparse" }) conv.Attributes.Remove(key);
        conv.SetConv(form);
        var read = ArtifactText.Read(ArtifactText.Write(artifact));
        Assert.Equal(form, read.Nodes[artifact.Nodes.IndexOf(conv)].Conv);
        Assert.Throws<FormatException>(() => new ConvAttributes(0));
    }

    public static TheoryData<DenseAttributes> DenseForms => [new(false, DenseLayout.Panels4, 5, 36), new(false, DenseLayout.Nk32), new(false, DenseLayout.Nk8),
        new(false, DenseLayout.Nk4, k: 36), new(false, DenseLayout.Codebook, k: 36, bits: 4), new(true, DenseLayout.Kn), new(false, DenseLayout.Kn)];

    [Theory]
    [MemberData(nameof(DenseForms))]
    public void EachDenseFormReadsBackAsWritten(DenseAttributes form)
    {
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = SmallCnn("contract-dense"), ClassName = "Net", Namespace = "Contract" });
        var dense = Assert.Single(artifact.Nodes, n => n.Kernel == KernelKind.Dense);
        dense.Attributes.Clear();
        dense.SetDense(form);
        var read = ArtifactText.Read(ArtifactText.Write(artifact));
        Assert.Equal(form, Assert.Single(read.Nodes, n => n.Kernel == KernelKind.Dense).Dense);
        Assert.Throws<FormatException>(() => new DenseAttributes(false, DenseLayout.Nk8, 5, 36));
    }

    [Fact]
    public void EveryKernelKindHasAnEmitter()
    {
        foreach (KernelKind kind in Enum.GetValues<KernelKind>())
            Assert.True(KernelEmitter.Emits(kind), $"{kind} has no emitter");
    }

    [Fact]
    public void EveryElementTypeReadsBackAsWritten()
    {
        foreach (TensorElement e in Enum.GetValues<TensorElement>())
            Assert.Equal(e == TensorElement.Float32 ? null : e, TensorElements.Parse(e.Text()));
        Assert.Null(TensorElements.Parse("float32"));
        Assert.Throws<FormatException>(() => KernelKinds.Parse("3"));
    }

    /// <summary>A lone Sigmoid: nothing to fuse it into, so a Unary kernel.</summary>
    static string UnaryText() => ArtifactText.Write(ModelCompiler.Compile(new CompileOptions
    {
        ModelPath = new OnnxBuilder(13, "contract-unary").Input("x", 1, 4).Node("Sigmoid", ["x"], ["y"]).Output("y").Save("contract-unary.onnx"),
        ClassName = "Net", Namespace = "Contract",
    }));

    [Fact]
    public void TheUnaryFunctionReadsBackAsWritten()
    {
        string text = UnaryText();
        var read = ArtifactText.Read(text);
        Assert.Equal(text, ArtifactText.Write(read));
        var unary = Assert.Single(read.Nodes, n => n.Kernel == KernelKind.Unary).Unary;
        Assert.Equal(new UnaryAttributes("Sigmoid", 0f, 0f), unary);
        Assert.Throws<FormatException>(() => new UnaryAttributes("Sigmoidal", 0f, 0f));
        GeneratingGivesMG2001(text.Replace("attr.function=Sigmoid", "attr.function=Sigmoidal"));
    }

    /// <summary>LeNet-5 in int8 arithmetic: its layers carry the int8 quantization, with and without requantization.</summary>
    static string Int8LeNet() => ArtifactText.Write(ModelCompiler.Compile(new CompileOptions
    {
        ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "Net", Namespace = "Contract", Compression = "int8", CalibrationPath = TestData.Mnist("calibration-256.npy"),
    }));

    [Fact]
    public void TheInt8QuantizationReadsBackAsWritten()
    {
        string text = Int8LeNet();
        var read = ArtifactText.Read(text);
        Assert.Equal(text, ArtifactText.Write(read));
        Assert.Contains(read.Nodes, n => n.Int8Layer?.Requant is not null);
        Assert.Contains(read.Nodes, n => n.Int8Layer is { Requant: null });
        Assert.All(read.Nodes, n => Assert.Equal(Int8LayerAttributes.Has(n.Kernel), n.Int8Layer is not null));

        // Each optional part, set by hand, reads back as written.
        var layer = read.Nodes.First(n => n.Int8Layer is not null);
        foreach (var form in new[]
        {
            new Int8LayerAttributes(0.5f, 3, null, 0, null),
            new Int8LayerAttributes(0.25f, 128, 1.5e-3f, 4, new RequantAttributes(22, 3.5e8f, 0, 255, narrow: true, outZero: 7, outScale: 0.125f)),
            new Int8LayerAttributes(1f / 3, 0, 2e-5f, 0, new RequantAttributes(41, 5.9e13f, 10, 200, narrow: false, outZero: 0, outScale: 0.03f)),
        })
        {
            foreach (var key in new[] { "scale", "zero", "multiplier", "bias_shift", "requant", "out_zero", "out_scale" }) layer.Attributes.Remove(key);
            layer.SetInt8Layer(form);
            var again = ArtifactText.Read(ArtifactText.Write(read));
            Assert.Equal(form, again.Nodes[read.Nodes.IndexOf(layer)].Int8Layer);
        }
        Assert.Throws<FormatException>(() => new RequantAttributes(0, 1f, 0, 255, false, 0, 1f));
    }

    /// <summary>A defect in an int8 layer's quantization is MG2001 too.</summary>
    [Theory]
    [InlineData(@"attr\.zero=\d+", "attr.zero=z")]
    [InlineData(@",narrow", ",wide")]
    [InlineData(@"attr\.requant=\d+,", "attr.requant=0,")]
    [InlineData(@"attr\.out_zero=\d+", "attr.out_zero=300")]
    public void AMalformedInt8QuantizationIsDiagnosticMG2001(string good, string bad)
    {
        string text = Int8LeNet();
        Assert.Matches(good, text);
        GeneratingGivesMG2001(System.Text.RegularExpressions.Regex.Replace(text, good, bad));
    }

    static void GeneratingGivesMG2001(string text)
    {
        var driver = CSharpGeneratorDriver.Create([new ModelGenerator().AsSourceGenerator()], [new Text("/p/obj/bad.mgen", text)])
            .RunGenerators(CSharpCompilation.Create("t", [CSharpSyntaxTree.ParseText("class C {}")], [MetadataReference.CreateFromFile(typeof(object).Assembly.Location)]));
        var result = driver.GetRunResult();
        Assert.Empty(result.GeneratedTrees);
        Assert.Equal("MG2001", Assert.Single(result.Diagnostics).Id);
        Assert.Null(result.Results[0].Exception);
    }

    sealed class Text(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }

    /// <summary>Every conformance model: together they lower to every kernel kind whose attributes are typed.</summary>
    static readonly ConformanceCase[] EveryConformanceCase = [.. OperatorConformanceTests.All, .. NormalizationConformanceTests.All, .. DataMovementConformanceTests.All,
        .. ConvTransposeConformanceTests.All, .. RecurrentConformanceTests.All, .. ResizeConformanceTests.All, .. RuntimeShapeInputTests.All];

    /// <summary>The models the typed attributes are tested on: the conformance cases and the embedding (GatherRows, indices given at run time).</summary>
    static readonly (string Name, OnnxBuilder Model, int BatchSize)[] TypedModels =
        [.. EveryConformanceCase.Select(c => (c.Name, c.Model, c.BatchSize)), ("Embedding", EmbeddingTests.Model(), 1)];

    static string Compiled(string name)
    {
        var (_, model, batchSize) = TypedModels.Single(m => m.Name == name);
        return ArtifactText.Write(ModelCompiler.Compile(new CompileOptions { ModelPath = model.Save("contract-" + name + ".onnx"), ClassName = name, Namespace = "Contract", BatchSize = batchSize }));
    }

    /// <summary>The node's typed attributes (Window, Dense… each with its SetX), found by reflection so a new one is covered too.</summary>
    static readonly (System.Reflection.PropertyInfo Property, System.Reflection.MethodInfo Set)[] Typed =
        [.. typeof(ArtifactNode).GetProperties().Select(p => (p, typeof(ArtifactNode).GetMethod("Set" + p.Name)!)).Where(t => t.Item2 is not null)];

    /// <summary>
    /// Each node's typed attributes, set on a fresh node, write exactly the attributes the reader parsed them from: nothing
    /// is left as untyped text, and the text form reads back as written (every conformance model, every kind).
    /// </summary>
    [Fact]
    public void EveryAttributeIsTypedAndReadsBackAsWritten()
    {
        var seen = new HashSet<string>();
        foreach (var (name, _, _) in TypedModels)
        {
            var read = ArtifactText.Read(Compiled(name));
            foreach (var node in read.Nodes)
            {
                var again = new ArtifactNode { Kernel = node.Kernel };
                foreach (var (property, set) in Typed)
                    if (property.GetValue(node) is { } value)
                    {
                        set.Invoke(again, [value]);
                        seen.Add(property.Name);
                    }
                Assert.Equal(node.Attributes, again.Attributes);
            }
        }
        Assert.Superset(new HashSet<string> { "Activation", "Binary", "ClipRuntime", "AveragePool", "Pool3D", "Gemm", "Normalization", "Remap", "GatherRows",
            "ConvTranspose", "Reduce", "ReduceRuntime", "Softmax", "Recurrent", "CheckShape", "RuntimeShape", "ResizeRuntime", "ResizeLinear" }, seen);
    }

    /// <summary>The records no conformance model writes (int8 kernels), set by hand, read back as written.</summary>
    [Fact]
    public void TheInt8RecordsReadBackAsWritten()
    {
        var add = new ArtifactNode { Kernel = KernelKind.AddU8 };
        add.SetAddU8(new AddU8Attributes(3, 250, 128, 0.0625f, 1 << 19, -(1 << 18), 20, 10, 255));
        var read = ReadBack(add).AddU8!;
        Assert.Equal((3, 250, 128, 0.0625f, 1 << 19, -(1 << 18), 20, 10, 255), (read.AZero, read.BZero, read.OutZero, read.OutScale, read.MultiplierA, read.MultiplierB, read.Shift, read.Lo, read.Hi));

        var depthwise = new ArtifactNode { Kernel = KernelKind.DepthwiseInt8 };
        depthwise.SetWindow(new KernelWindow([3, 3], [1, 1], [2, 2], [2, 2, 2, 2]));
        depthwise.SetInt8Layer(new Int8LayerAttributes(0.5f, 3, null, 0, null));
        Assert.Null(ReadBack(depthwise).Plane);
        depthwise.SetPlane(new DepthwisePlane(9, 40));
        Assert.Equal((9, 40), (ReadBack(depthwise).Plane!.Rows, ReadBack(depthwise).Plane!.Width));

        Assert.Throws<FormatException>(() => new AddU8Attributes(3, 250, 128, 0.0625f, 1 << 21, 0, 20, 10, 255));
        Assert.Throws<FormatException>(() => new DepthwisePlane(0, 40));
    }

    /// <summary>A lone node through the text form, as the reader parses it.</summary>
    static ArtifactNode ReadBack(ArtifactNode node)
    {
        var model = new ModelArtifact { ScratchBytes = 64 };
        model.Tensors.Add(new ArtifactTensor { Id = 0, Name = "t", Storage = TensorStorage.Arena, Shape = [4] });
        node.Name = "n";
        node.Inputs = [0];
        model.Nodes.Add(node);
        return Assert.Single(ArtifactText.Read(ArtifactText.Write(model)).Nodes);
    }

    /// <summary>A bad value in a typed attribute of any kind is MG2001, found by the reader.</summary>
    [Theory]
    [InlineData("ConvDepthwiseSigmoid", @"attr\.activation=Sigmoid[^ ]*", "attr.activation=Sigmoidal")]
    [InlineData("ConvDepthwiseSigmoid", @"attr\.activation=Sigmoid[^ ]*", "attr.activation=Sigmoid:1")]
    [InlineData("AveragePoolPadsCounted", @"attr\.countpad=1", "attr.countpad=yes")]
    [InlineData("AveragePool3D", @"attr\.op=average", "attr.op=median")]
    [InlineData("ReduceMeanAxesKeep", @"attr\.op=Mean", "attr.op=Median")]
    [InlineData("ReduceMeanAxesKeep", @"attr\.keptstrides=[^ ]*", "attr.keptstrides=1,2,3,4,5")]
    [InlineData("SoftmaxOpset13Default", @"attr\.layout=[^ ]*", "attr.layout=1,2")]
    [InlineData("SoftmaxOpset13Default", @"attr\.log=0", "attr.log=no")]
    [InlineData("BatchNormRuntimeStatistics", @"attr\.epsilon=[^ ]*", "attr.epsilon=small")]
    [InlineData("InstanceNormalization", @"attr\.params=[^ ]*", "attr.params=3,per-pixel")]
    [InlineData("TransposePerm", @"attr\.strides=[^ ]*", "attr.strides=1")]
    [InlineData("Embedding", @"attr\.inner=\d+", "attr.inner=-1")]
    [InlineData("ConvTransposeGroups", @"attr\.group=\d+", "attr.group=0")]
    [InlineData("LstmClip", @"attr\.clip=[^ ]*", "attr.clip=high")]
    [InlineData("GruActivations", @"attr\.f1=[^ ]*", "attr.f1=Sigmund")]
    [InlineData("ReshapeRuntimeTarget", @"attr\.rule=reshape", "attr.rule=reform")]
    [InlineData("SliceRuntimePositions", @"attr\.starts=[^ ]*", "attr.starts=7")]
    [InlineData("PadRuntimeReflect", @"attr\.mode=reflect", "attr.mode=wrap")]
    [InlineData("ClipRuntimeBounds", @"attr\.bounds=[a-z]+", "attr.bounds=maxmin")]
    [InlineData("LinearUpsampleHalfPixel", @"attr\.w1\.(\d)=[^ ]*", "attr.w1.$1=0.5,half")]
    [InlineData("RuntimeSizesLinear", @"attr\.transform=[a-z_]+", "attr.transform=quarter_pixel")]
    [InlineData("RuntimeSizesCubicExclude", @"attr\.cubic=[^ ]*", "attr.cubic=-0.5,include")]
    public void AMalformedTypedAttributeIsDiagnosticMG2001(string caseName, string good, string bad)
    {
        string text = Compiled(caseName);
        Assert.Matches(good, text);
        GeneratingGivesMG2001(System.Text.RegularExpressions.Regex.Replace(text, good, bad));
    }

    /// <summary>A defect in one attribute (hand-edited or truncated artifact) is the generator's diagnostic, not an exception.</summary>
    [Theory]
    [InlineData("attr.group=1", "attr.group=one")]
    [InlineData("attr.strides=1,1", "attr.strides=1,x")]
    [InlineData("kernel=MaxPool", "kernel=MaxPool3")]
    [InlineData("attr.pads=0,0,0,0", "attr.pads=")]
    [InlineData("attr.dilations=1,1", "attr.dilations=1")]
    [InlineData("attr.layout=panels4", "attr.layout=panels5")]
    [InlineData("attr.method=depthwise", "attr.method=winograd")]
    [InlineData("attr.group=4", "attr.group=0")]
    [InlineData("attr.transA=0", "attr.transA=2")]
    [InlineData("attr.n=5", "attr.n=-5")]
    public void AMalformedAttributeIsDiagnosticMG2001NotACrash(string good, string bad)
    {
        string text = ArtifactText.Write(ModelCompiler.Compile(new CompileOptions { ModelPath = SmallCnn("contract-bad"), ClassName = "Net", Namespace = "Contract" }));
        Assert.Contains(good, text);
        GeneratingGivesMG2001(text.Replace(good, bad));
    }
}
