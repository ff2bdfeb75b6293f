using Google.Protobuf;
using MathNet.Numerics.LinearAlgebra;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Students;

/// <summary>
/// Students derived from the teacher (issue 25, item 3): the width multiplier's shapes and parameters worked out from
/// the spec, the depthwise-separable rewrite's multiply-adds and rank-1 start, the teacher left as it was, and a derived
/// student that trains, exports to ONNX and compiles like any model.
/// </summary>
public class DerivedStudentTests(ITestOutputHelper output)
{
    static Graph Teacher(string model) => ModelCompiler.Normalized(new CompileOptions { ModelPath = TestData.Mnist(model) });

    /// <summary>The Conv and Dense layers in schedule order.</summary>
    static List<Node> Layers(Graph graph) => [.. graph.Nodes.Where(n => n.OpType is "Conv" or "Dense")];

    static TensorData Weight(Graph graph, Node node) => graph[node.Inputs[1]].Constant!;

    /// <summary>The weights and biases of every Conv and Dense layer.</summary>
    static long Parameters(Graph graph) =>
        Layers(graph).Sum(n => n.Inputs.Skip(1).Where(i => i.Length > 0).Sum(i => graph[i].Constant!.Count));

    /// <summary>⌊w·C + ½⌋, at least 1: the spec's rounding, written out here rather than taken from the code under test.</summary>
    static int Kept(int channels, double width) => Math.Max(1, (int)Math.Floor(width * channels + 0.5 + 1e-9));

    /// <summary>
    /// Each layer keeps w·C of its output channels (the last, whose output is the model's, keeps all), and reads its
    /// producer's kept channels: a convolution C' input channels, the fully connected layer after the Flatten C'·H·W
    /// columns. The parameter counts are also worked out by hand: LeNet-5 at 0.25 is conv 5 and 13 filters, f1 125
    /// (208 inputs: 13 × 4 × 4), f2 10: 130 + 1,638 + 26,125 + 1,260 = 29,153.
    /// </summary>
    [Theory]
    [InlineData("lenet5.onnx", 0.25, 29_153)]
    [InlineData("lenet5.onnx", 0.5, 109_295)]   // 10, 25, 250: 260 + 6,275 + 100,250 + 2,510
    [InlineData("lenet300.onnx", 0.25, 61_035)] // 75, 25: 58,875 + 1,900 + 260
    [InlineData("lenet300.onnx", 0.5, 125_810)] // 150, 50: 117,750 + 7,550 + 510
    public void WidthKeepsItsShareOfEveryLayersChannels(string model, double width, long parameters)
    {
        var teacher = Teacher(model);
        var student = DerivedStudent.Derive(teacher, width, depthwise: false, model);
        var teacherLayers = Layers(teacher);
        var studentLayers = Layers(student);
        Assert.Equal(teacherLayers.Count, studentLayers.Count);
        int previousTeacher = 1, previousStudent = 1; // MNIST's one input channel
        for (int l = 0; l < teacherLayers.Count; l++)
        {
            var w = Weight(teacher, teacherLayers[l]).Shape;
            var s = Weight(student, studentLayers[l]).Shape;
            bool last = l == teacherLayers.Count - 1;
            int expectedOutputs = last ? w[0] : Kept(w[0], width);
            int perInputChannel = w[1] / previousTeacher; // a Dense after a Flatten: H·W columns per channel
            int[] expected = w.Length == 4 ? [expectedOutputs, previousStudent, w[2], w[3]] : [expectedOutputs, perInputChannel * previousStudent];
            output.WriteLine($"{teacherLayers[l].Name}: [{string.Join(", ", w)}] → [{string.Join(", ", s)}]");
            Assert.Equal(expected, s);
            (previousTeacher, previousStudent) = (w[0], expectedOutputs);
        }
        output.WriteLine($"parameters {Parameters(teacher):N0} → {Parameters(student):N0}");
        Assert.Equal(parameters, Parameters(student));
        Assert.Equal(teacher.Inputs, student.Inputs);
        Assert.Equal(teacher.Outputs, student.Outputs);
        Assert.Equal(teacher[teacher.Outputs[0]].Shape, student[student.Outputs[0]].Shape);
        output.WriteLine(DerivedStudent.Describe(teacher, student));
    }

    /// <summary>The first layer keeps the filters (neurons) of largest L2 norm, in their order, with the teacher's weights.</summary>
    [Theory]
    [InlineData("lenet5.onnx")]
    [InlineData("lenet300.onnx")]
    public void WidthKeepsTheLargestFiltersWithTheTeachersWeights(string model)
    {
        var teacher = Teacher(model);
        var student = DerivedStudent.Derive(teacher, 0.25, depthwise: false, model);
        var w = Weight(teacher, Layers(teacher)[0]);
        var s = Weight(student, Layers(student)[0]);
        int filters = w.Shape[0], per = (int)(w.Count / filters);
        var norms = Enumerable.Range(0, filters).Select(f => Math.Sqrt(w.Floats.Skip(f * per).Take(per).Sum(v => (double)v * v))).ToArray();
        var largest = Enumerable.Range(0, filters).OrderByDescending(f => norms[f]).Take(s.Shape[0]).Order().ToArray();
        for (int k = 0; k < largest.Length; k++)
            Assert.Equal(w.Floats.AsSpan(largest[k] * per, per).ToArray(), s.Floats.AsSpan(k * per, per).ToArray());
    }

    /// <summary>
    /// LeNet-5 with `depthwise`: conv1 (one input channel) stays, conv2 (20 → 50, 5×5) becomes a depthwise 5×5 over its
    /// 20 channels and a pointwise 20 → 50; the convolutions' multiply-adds, worked out from the teacher's shapes, fall
    /// at least 4x; the fully connected layers are as they were.
    /// </summary>
    [Fact]
    public void DepthwiseCutsLeNet5sConvolutionMultiplyAddsFourTimes()
    {
        var teacher = Teacher("lenet5.onnx");
        var student = DerivedStudent.Derive(teacher, 1, depthwise: true, "lenet5.onnx");
        long expected = 0;
        foreach (var conv in teacher.Nodes.Where(n => n.OpType == "Conv"))
        {
            var w = Weight(teacher, conv).Shape;
            var y = teacher[conv.Outputs[0]].Shape!;
            long positions = (long)y[2] * y[3], taps = w[2] * w[3];
            expected += w[1] > 4 ? positions * (w[1] * taps + w[0] * w[1]) : positions * w[0] * w[1] * taps;
        }
        static long Convolutions(Graph g) => MultiplyAdds.ByLayer(g).Where(l => l.Node.OpType == "Conv").Sum(l => l.MultiplyAdds);
        foreach (var (node, macs) in MultiplyAdds.ByLayer(teacher)) output.WriteLine($"teacher {node.Name} {macs:N0}");
        foreach (var (node, macs) in MultiplyAdds.ByLayer(student)) output.WriteLine($"student {node.Name} {macs:N0}");
        long before = Convolutions(teacher), after = Convolutions(student);
        output.WriteLine($"convolutions' multiply-adds {before:N0} → {after:N0} ({(double)before / after:0.00}x); parameters {Parameters(teacher):N0} → {Parameters(student):N0}");
        Assert.Equal(expected, after);
        Assert.True(after * 4 <= before, $"{before:N0} → {after:N0}");
        var convs = student.Nodes.Where(n => n.OpType == "Conv").ToList();
        Assert.Equal(3, convs.Count);
        Assert.Equal([20, 1, 5, 5], Weight(student, convs[1]).Shape);
        Assert.Equal(20, convs[1].Int("group", 1));
        Assert.Equal([50, 20, 1, 1], Weight(student, convs[2]).Shape);
        Assert.Equal(Weight(teacher, teacher.Nodes.First(n => n.OpType == "Conv")).Floats, Weight(student, convs[0]).Floats);
        var names = Layers(teacher).Select(n => n.Name).ToList();
        Assert.Equal($"{names[0]} 20 → 20, {names[1]} 50 → 50 depthwise-separable, {names[2]} 500 → 500, {names[3]} 10 → 10", DerivedStudent.Describe(teacher, student));
    }

    /// <summary>W[o, i, y, x] = a[o, i]·b[i, y, x]: every slice W[:, i] is rank 1, so P[o, i]·D[i, y, x] gives W back.</summary>
    [Fact]
    public void RankOneKernelsFactorizeExactly()
    {
        int outputs = 7, channels = 6, kh = 3, kw = 3;
        var a = OnnxBuilder.Random(outputs * channels, 11);
        var b = OnnxBuilder.Random(channels * kh * kw, 12);
        var w = new float[outputs * channels * kh * kw];
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < channels; i++)
                for (int t = 0; t < kh * kw; t++) w[(o * channels + i) * kh * kw + t] = a[o * channels + i] * b[i * kh * kw + t];
        var (depthwise, pointwise) = DerivedStudent.Factorize(new TensorData([outputs, channels, kh, kw], w));
        Assert.Equal([channels, 1, kh, kw], depthwise.Shape);
        Assert.Equal([outputs, channels, 1, 1], pointwise.Shape);
        Tolerance.AssertClose(w, Reconstruct(depthwise, pointwise), "P·D against a rank-1 kernel");
    }

    /// <summary>Any kernel: P[:, i]·D[i] is σ₁u₁v₁ᵀ of MathNet's SVD of W[:, i] (the best rank-1 approximation), and D[i] has unit norm.</summary>
    [Fact]
    public void OtherKernelsGetTheBestRankOneApproximation()
    {
        int outputs = 5, channels = 8, kh = 3, kw = 2, taps = kh * kw;
        var w = OnnxBuilder.Random(outputs * channels * taps, 21);
        var (depthwise, pointwise) = DerivedStudent.Factorize(new TensorData([outputs, channels, kh, kw], w));
        var product = Reconstruct(depthwise, pointwise);
        for (int i = 0; i < channels; i++)
        {
            var slice = Matrix<double>.Build.Dense(outputs, taps, (o, t) => w[(o * channels + i) * taps + t]);
            var svd = slice.Svd(computeVectors: true);
            var best = svd.S[0] * svd.U.Column(0).OuterProduct(svd.VT.Row(0));
            var ours = Matrix<double>.Build.Dense(outputs, taps, (o, t) => product[(o * channels + i) * taps + t]);
            Assert.True((best - ours).FrobeniusNorm() < 1e-5 * slice.FrobeniusNorm(), $"channel {i}: {(best - ours).FrobeniusNorm()}");
            // Eckart–Young: what is left is the other singular values' energy.
            double rest = Math.Sqrt(svd.S.Skip(1).Sum(s => s * s));
            Assert.Equal(rest, (slice - ours).FrobeniusNorm(), 4);
            double norm = Math.Sqrt(Enumerable.Range(0, taps).Sum(t => (double)depthwise.Floats[i * taps + t] * depthwise.Floats[i * taps + t]));
            Assert.Equal(1, norm, 5);
        }
    }

    /// <summary>
    /// A convolution with strides, asymmetric pads, dilations, a bias and a fused Relu whose kernel slices are rank 1:
    /// the depthwise-separable student (its depthwise half taking the geometry, its pointwise half the bias and
    /// activation) computes what the original does, ONNX Runtime on both files. With 4 input channels (the rule wants
    /// more than 4) the convolution stays as it is.
    /// </summary>
    [Theory]
    [InlineData(6, true)]
    [InlineData(4, false)]
    public void DepthwiseKeepsTheGeometryAndARankOneConvolutionExactly(int channels, bool separable)
    {
        int outputs = 5, taps = 9;
        var a = OnnxBuilder.Random(outputs * channels, 61);
        var b = OnnxBuilder.Random(channels * taps, 62);
        var w = new float[outputs * channels * taps];
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < channels; i++)
                for (int t = 0; t < taps; t++) w[(o * channels + i) * taps + t] = a[o * channels + i] * b[i * taps + t];
        string path = new OnnxBuilder()
            .Input("x", 1, channels, 9, 8)
            .Initializer("w", [outputs, channels, 3, 3], w).Initializer("b", [outputs], OnnxBuilder.Random(outputs, 63))
            .Node("Conv", ["x", "w", "b"], ["c"], ("strides", new[] { 2, 1 }), ("pads", new[] { 1, 0, 1, 2 }), ("dilations", new[] { 1, 2 }))
            .Node("Relu", ["c"], ["y"])
            .Output("y")
            .Save("geometry.onnx");
        var teacher = ModelCompiler.Normalized(new CompileOptions { ModelPath = path });
        var student = DerivedStudent.Derive(teacher, 1, depthwise: true, path);
        Assert.Equal(separable ? 2 : 1, student.Nodes.Count(n => n.OpType == "Conv"));
        Assert.Equal(separable, student.Nodes.Any(n => n.Int("group", 1) == channels));
        using var original = new OnnxRuntimeOracle(path);
        using var exported = new OnnxRuntimeOracle(OnnxExport.Build(student, []).ToByteArray());
        var input = OnnxBuilder.Random(channels * 72, 64);
        Tolerance.AssertClose(original.Run(("x", input, [1, channels, 9, 8]))[0], exported.Run(("x", input, [1, channels, 9, 8]))[0], "depthwise-separable student against the original");
    }

    /// <summary>
    /// The depthwise-separable test CNN (depthwise convolutions already, whose groups follow the narrowed channels) at
    /// width 0.5 with depthwise: ONNX Runtime on the exported student computes what the evaluator does on it.
    /// </summary>
    [Fact]
    public void ADepthwiseSeparableTeacherNarrowsConsistently()
    {
        string path = Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", "dwsep.onnx");
        var teacher = ModelCompiler.Normalized(new CompileOptions { ModelPath = path });
        var student = DerivedStudent.Derive(teacher, 0.5, depthwise: true, path);
        output.WriteLine(DerivedStudent.Describe(teacher, student));
        Assert.True(Parameters(student) < Parameters(teacher));
        string input = student.Inputs[0];
        int[] shape = student[input].Shape!;
        using var ort = new OnnxRuntimeOracle(OnnxExport.Build(student, []).ToByteArray());
        var x = OnnxBuilder.Random((int)TensorData.Size(shape), 71);
        var expected = ReferenceEvaluator.Run(student, new Dictionary<string, TensorData> { [input] = new(shape, x) })[student.Outputs[0]].Floats;
        Tolerance.AssertClose(expected, ort.Run((input, x, shape))[0], "dwsep student: ONNX Runtime against the evaluator");
    }

    /// <summary>W'[o, i, y, x] = P[o, i]·D[i, y, x].</summary>
    static float[] Reconstruct(TensorData depthwise, TensorData pointwise)
    {
        int outputs = pointwise.Shape[0], channels = pointwise.Shape[1], taps = depthwise.Shape[2] * depthwise.Shape[3];
        var w = new float[outputs * channels * taps];
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < channels; i++)
                for (int t = 0; t < taps; t++) w[(o * channels + i) * taps + t] = pointwise.Floats[o * channels + i] * depthwise.Floats[i * taps + t];
        return w;
    }

    /// <summary>Width 1 without depthwise: the student, exported to ONNX, computes what the teacher's ONNX file does (ONNX Runtime on both).</summary>
    [Theory]
    [InlineData("lenet5.onnx")]
    [InlineData("lenet300.onnx")]
    public void WidthOneIsTheTeacher(string model)
    {
        var student = DerivedStudent.Derive(Teacher(model), 1, depthwise: false, model);
        using var exported = new OnnxRuntimeOracle(OnnxExport.Build(student, []).ToByteArray());
        using var original = new OnnxRuntimeOracle(TestData.Mnist(model));
        for (int sample = 0; sample < 4; sample++)
        {
            var input = OnnxBuilder.Random(784, 30 + sample).Select(Math.Abs).ToArray();
            var expected = original.Run(("image", input, [1, 1, 28, 28]))[0];
            Tolerance.AssertClose(expected, exported.Run(("image", input, [1, 1, 28, 28]))[0], $"{model} width 1, sample {sample}");
        }
    }

    /// <summary>Derive works on a clone: the teacher's nodes, attributes and constants are as they were.</summary>
    [Fact]
    public void TheTeacherIsUnchanged()
    {
        var teacher = Teacher("lenet5.onnx");
        string Describe() => string.Join("\n", teacher.Nodes.Select(n =>
            $"{n.Name} {n.OpType} {string.Join(",", n.Inputs)} → {string.Join(",", n.Outputs)} {string.Join(";", n.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => a.Value.ToString()))} {string.Join(";", n.Annotations.Select(a => a.Key + "=" + a.Value))}"));
        string nodes = Describe();
        var values = teacher.Values.ToDictionary(v => v.Key, v => (Shape: v.Value.Shape?.ToArray(), Floats: v.Value.Constant?.Floats.ToArray()));
        var student = DerivedStudent.Derive(teacher, 0.25, depthwise: true, "lenet5.onnx");
        Assert.NotEqual(Parameters(teacher), Parameters(student));
        Assert.Equal(nodes, Describe());
        Assert.Equal(values.Keys.Order(StringComparer.Ordinal), teacher.Values.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, (shape, floats)) in values)
        {
            Assert.Equal(shape, teacher[name].Shape);
            Assert.Equal(floats, teacher[name].Constant?.Floats);
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.5)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void AWidthOutsideZeroToOneIsABadOption(double width)
    {
        var e = Assert.Throws<ModelGenException>(() => DerivedStudent.Derive(Teacher("lenet300.onnx"), width, depthwise: false, "lenet300.onnx"));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Equal("lenet300.onnx", e.File);
        Assert.Contains("--student width:", e.Message);
    }

    /// <summary>
    /// A student with both rewrites (width 0.5, then conv2 depthwise-separable over its 10 channels) distilled label-free
    /// from LeNet-5 on 1,000 digits for two epochs: the loss falls; then the generated code computes what the evaluator
    /// does on the trained student, and ONNX Runtime on its export agrees with both.
    /// </summary>
    [Fact]
    public void ADerivedStudentTrainsCompilesAndExports()
    {
        var teacher = Teacher("lenet5.onnx");
        var student = DerivedStudent.Derive(teacher, 0.5, depthwise: true, "lenet5.onnx");
        Assert.Contains(student.Nodes, n => n.OpType == "Conv" && n.Int("group", 1) == 10);
        var model = TrainableModel.Build(student);
        var data = Training.MnistTraining.TrainingDigits(model, 1000, labels: false);
        var result = Trainer.Fit(model, data, new TrainingOptions { Epochs = 2, Loss = LossMix.Distill, HeldOutFraction = 0 },
            Compiler.Training.Teacher.FromModel(TrainableModel.Build(teacher)));
        output.WriteLine(string.Join("; ", result.Epochs.Select(e => $"epoch {e.Epoch} loss {e.TrainLoss:0.0000}")));
        Assert.True(result.Epochs[^1].TrainLoss < result.Epochs[0].TrainLoss, "the distillation loss falls");
        FineTunePass.StoreParameters(student, model);

        var options = new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "Student", Namespace = "DerivedStudents" };
        var artifact = ModelCompiler.Compile(options, student, out _);
        var models = GeneratedModels.Build(artifact);
        using var ort = new OnnxRuntimeOracle(OnnxExport.Build(student, []).ToByteArray());
        for (int sample = 0; sample < 4; sample++)
        {
            var input = OnnxBuilder.Random(784, 40 + sample).Select(Math.Abs).ToArray();
            var expected = ReferenceEvaluator.Run(student, new Dictionary<string, TensorData> { [student.Inputs[0]] = new([1, 1, 28, 28], input) })[student.Outputs[0]].Floats;
            var generated = new float[expected.Length];
            models.Run(artifact, [input], [generated]);
            Tolerance.AssertClose(expected, generated, $"generated code against the evaluator, sample {sample}");
            Tolerance.AssertClose(ort.Run(("image", input, [1, 1, 28, 28]))[0], generated, $"generated code against ONNX Runtime, sample {sample}");
        }
    }
}
