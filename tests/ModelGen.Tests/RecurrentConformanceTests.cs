using Google.Protobuf;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>LSTM and GRU: directions, biases, initial states, peepholes, sequence lengths, clip, activations, layouts, output subsets.</summary>
public sealed class RecurrentConformanceTests : ConformanceTests
{
    static float[] R(int n, int seed) => [.. OnnxBuilder.Random(n, seed).Select(v => v * 0.6f)];

    /// <summary>A recurrent node; inputs beyond X are initializers named w, r, b, seq, h0, c0, p (or left out).</summary>
    static ConformanceCase Rnn(string name, string op, int seq, int batch, int input, int hidden, string direction = "forward",
        bool bias = true, bool initial = false, bool peepholes = false, long[]? lengths = null, bool layout1 = false, long opset = 14,
        string[]? outputs = null, params (string, object)[] attrs)
    {
        int dirs = direction == "bidirectional" ? 2 : 1, g = op == "LSTM" ? 4 : 3;
        int[] x = layout1 ? [batch, seq, input] : [seq, batch, input];
        var b = new OnnxBuilder(opset).Input("x", [.. x.Select(d => (int?)d)])
            .Initializer("w", [dirs, g * hidden, input], R(dirs * g * hidden * input, 1))
            .Initializer("r", [dirs, g * hidden, hidden], R(dirs * g * hidden * hidden, 2));
        var inputs = new List<string> { "x", "w", "r" };
        if (bias) b.Initializer("b", [dirs, 2 * g * hidden], R(dirs * 2 * g * hidden, 3));
        inputs.Add(bias ? "b" : "");
        if (lengths is not null)
        {
            // ONNX types sequence_lens as int32.
            var t = new Onnx.Proto.TensorProto { Name = "seq", DataType = 6 };
            t.Dims.Add(lengths.Length);
            t.Int32Data.AddRange(lengths.Select(l => (int)l));
            b.Model.Graph.Initializer.Add(t);
        }
        inputs.Add(lengths is not null ? "seq" : "");
        int[] state = layout1 ? [batch, dirs, hidden] : [dirs, batch, hidden];
        if (initial) b.Initializer("h0", state, R(dirs * batch * hidden, 4));
        inputs.Add(initial ? "h0" : "");
        if (op == "LSTM")
        {
            if (initial) b.Initializer("c0", state, R(dirs * batch * hidden, 5));
            inputs.Add(initial ? "c0" : "");
            if (peepholes) b.Initializer("p", [dirs, 3 * hidden], R(dirs * 3 * hidden, 6));
            inputs.Add(peepholes ? "p" : "");
        }
        while (inputs[^1].Length == 0) inputs.RemoveAt(inputs.Count - 1);
        outputs ??= op == "LSTM" ? ["y", "yh", "yc"] : ["y", "yh"];
        var all = new List<(string, object)> { ("hidden_size", hidden), ("direction", direction) };
        if (layout1) all.Add(("layout", 1));
        all.AddRange(attrs);
        b.Node(op, [.. inputs], outputs, [.. all]);
        foreach (var o in outputs.Where(o => o.Length > 0)) b.Output(o);
        return new ConformanceCase(name, b, [("x", x)]);
    }

    static (string, object) Activations(params string[] names) => ("activations", names);

    public static readonly ConformanceCase[] All =
    [
        Rnn("LstmForward", "LSTM", 5, 2, 3, 4),
        Rnn("LstmReverseNoBias", "LSTM", 4, 1, 3, 5, "reverse", bias: false),
        Rnn("LstmBidirectionalInitial", "LSTM", 3, 2, 4, 3, "bidirectional", initial: true),
        Rnn("LstmPeepholes", "LSTM", 4, 2, 3, 4, peepholes: true, initial: true),
        Rnn("LstmSequenceLengths", "LSTM", 5, 3, 2, 3, "bidirectional", lengths: [5, 2, 3]),
        Rnn("LstmClip", "LSTM", 4, 1, 3, 4, attrs: ("clip", 0.3f)),
        Rnn("LstmOpset7", "LSTM", 3, 1, 2, 3, opset: 7),
        Rnn("LstmOnlyY", "LSTM", 3, 2, 2, 3, outputs: ["y"]),
        Rnn("LstmOnlyStates", "LSTM", 3, 2, 2, 3, outputs: ["", "yh", "yc"]),
        Rnn("LstmActivations", "LSTM", 3, 1, 2, 3, attrs: Activations("HardSigmoid", "Relu", "Softsign")),
        Rnn("GruForward", "GRU", 5, 2, 3, 4),
        Rnn("GruReverse", "GRU", 4, 1, 3, 5, "reverse"),
        Rnn("GruBidirectionalInitial", "GRU", 3, 2, 4, 3, "bidirectional", initial: true),
        Rnn("GruLinearBeforeReset", "GRU", 4, 2, 3, 4, initial: true, attrs: ("linear_before_reset", 1)),
        Rnn("GruNoBias", "GRU", 3, 1, 3, 3, bias: false),
        Rnn("GruSequenceLengths", "GRU", 4, 3, 2, 3, lengths: [4, 1, 2]),
        Rnn("GruClip", "GRU", 3, 2, 3, 3, attrs: ("clip", 0.25f)),
        Rnn("GruActivations", "GRU", 3, 1, 2, 3, attrs: Activations("Sigmoid", "LeakyRelu")),
        Rnn("GruOpset7", "GRU", 3, 1, 2, 3, opset: 7),
        new ConformanceCase("LstmWeightsAtRunTime", new OnnxBuilder().Input("x", 3, 2, 4).Input("w", 1, 12, 4).Input("r", 1, 12, 3)
            .Node("LSTM", ["x", "w", "r"], ["y", "yh"], ("hidden_size", 3)).Output("y").Output("yh"), [("x", [3, 2, 4]), ("w", [1, 12, 4]), ("r", [1, 12, 3])]),
    ];

    static readonly ConformanceSuite Cases = new(All);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;

    [Theory]
    [InlineData("LSTM")]
    [InlineData("GRU")]
    public void Layout1IsLayout0WithBatchFirst(string op)
    {
        // ONNX Runtime does not run layout 1: the generated code for it is checked against layout 0 on the same data, transposed.
        const int seq = 3, batch = 2, input = 3, hidden = 4;
        var first = Rnn(op + "Layout0", op, seq, batch, input, hidden, "bidirectional", initial: false);
        var second = Rnn(op + "Layout1", op, seq, batch, input, hidden, "bidirectional", initial: false, layout1: true);
        var a = Compiler.ModelCompiler.Compile(new Compiler.CompileOptions { ModelPath = first.Model.Save(), ClassName = op + "L0", Namespace = "Layout" });
        var b = Compiler.ModelCompiler.Compile(new Compiler.CompileOptions { ModelPath = second.Model.Save(), ClassName = op + "L1", Namespace = "Layout" });
        var models = GeneratedModels.Build(a, b);
        var x0 = OnnxBuilder.Random(seq * batch * input, 7);
        var x1 = new float[x0.Length];
        for (int t = 0; t < seq; t++) for (int n = 0; n < batch; n++) for (int i = 0; i < input; i++) x1[(n * seq + t) * input + i] = x0[(t * batch + n) * input + i];
        var y0 = a.Outputs.Select(o => new float[a.Tensors[o.Tensor].ElementCount]).ToArray();
        var y1 = b.Outputs.Select(o => new float[b.Tensors[o.Tensor].ElementCount]).ToArray();
        models.Run(a, [x0], y0);
        models.Run(b, [x1], y1);
        // Y: [seq, dirs, batch, hidden] against [batch, seq, dirs, hidden].
        for (int t = 0; t < seq; t++) for (int d = 0; d < 2; d++) for (int n = 0; n < batch; n++) for (int j = 0; j < hidden; j++)
            Assert.Equal(y0[0][((t * 2 + d) * batch + n) * hidden + j], y1[0][((n * seq + t) * 2 + d) * hidden + j], 5);
        // Y_h: [dirs, batch, hidden] against [batch, dirs, hidden].
        for (int d = 0; d < 2; d++) for (int n = 0; n < batch; n++) for (int j = 0; j < hidden; j++)
            Assert.Equal(y0[1][(d * batch + n) * hidden + j], y1[1][(n * 2 + d) * hidden + j], 5);
    }
}
