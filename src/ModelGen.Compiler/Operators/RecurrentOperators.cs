using ModelGen.Artifact;
using ModelGen.Compiler.Evaluate;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// LSTM and GRU as ONNX defines them: forward, reverse or bidirectional, gates in ONNX order (LSTM i o f c,
/// GRU z r h), optional bias, initial states, peepholes, sequence lengths (constant), clip, input_forget,
/// linear_before_reset, any activations, both layouts. W, R, B and P constant (embedded) or given at run time.
/// </summary>
public sealed class RecurrentOperator(string opType) : Operator(opType)
{
    bool Lstm => OpType == "LSTM";
    int Gates => Lstm ? 4 : 3;

    /// <summary>Everything the evaluator and the kernel need, resolved from shapes and attributes.</summary>
    public sealed record Plan(int Seq, int Batch, int InputSize, int Hidden, int Directions, bool Reverse, bool Layout1,
        string[] Functions, float Clip, bool InputForget, bool LinearBeforeReset, int[] SequenceLengths) : OperatorPlan;

    protected override bool AcceptsIntInput(Node node, int input) => input == 4;

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
            Lstm ? "input_forget" : "linear_before_reset", "layout", "output_sequence");
        RequireInputs(graph, node, 3, Lstm ? 8 : 6);
        var x = ShapeOf(graph, node, 0);
        if (x.Length != 3) throw Error(graph, node, "X must have rank 3");
        bool layout1 = node.Int("layout", 0) != 0;
        int seq = layout1 ? x[1] : x[0], batch = layout1 ? x[0] : x[1], input = x[2];
        string direction = node.Str("direction", "forward");
        int dirs = direction == "bidirectional" ? 2 : direction is "forward" or "reverse" ? 1 : throw Error(graph, node, $"direction '{direction}' is not forward, reverse or bidirectional", ErrorCodes.UnsupportedAttribute);
        var w = ShapeOf(graph, node, 1);
        int hidden = (int)node.Int("hidden_size", w.Length == 3 ? w[1] / Gates : 0);
        if (hidden < 1 || !w.SequenceEqual([dirs, Gates * hidden, input])) throw Error(graph, node, $"W must be [{dirs}, {Gates}·hidden, {input}]");
        if (!ShapeOf(graph, node, 2).SequenceEqual([dirs, Gates * hidden, hidden])) throw Error(graph, node, $"R must be [{dirs}, {Gates * hidden}, {hidden}]");
        // W, R, B and P may be given at run time too: the kernel reads them as spans either way.
        if (node.HasInput(3) && !ShapeOf(graph, node, 3).SequenceEqual([dirs, 2 * Gates * hidden])) throw Error(graph, node, "B has the wrong shape");
        if (Lstm && node.HasInput(7) && !ShapeOf(graph, node, 7).SequenceEqual([dirs, 3 * hidden])) throw Error(graph, node, "P has the wrong shape");
        int[] stateShape = layout1 ? [batch, dirs, hidden] : [dirs, batch, hidden];
        foreach (int i in Lstm ? new[] { 5, 6 } : [5])
            if (node.HasInput(i) && !ShapeOf(graph, node, i).SequenceEqual(stateShape)) throw Error(graph, node, $"initial state {i} must be [{string.Join(",", stateShape)}]");
        var lengths = Enumerable.Repeat(seq, batch).ToArray();
        if (node.HasInput(4))
        {
            var v = graph[node.Inputs[4]];
            if (v.Constant is not { Type: ElementType.Int64 } c) throw Error(graph, node, "sequence_lens is computed at run time; ModelGen needs it constant", ErrorCodes.DynamicShape);
            if (c.Count != batch || c.Ints.Any(l => l < 0 || l > seq)) throw Error(graph, node, "sequence_lens must hold one length from 0 to the sequence length per batch entry");
            lengths = [.. c.Ints.Select(l => (int)l)];
        }
        var names = node.Attributes.TryGetValue("activations", out var acts) ? acts.Strings.Select(s => s.ToStringUtf8()).ToArray() : [];
        int per = Lstm ? 3 : 2;
        if (names.Length == 0) names = [.. Enumerable.Repeat<string[]>(Lstm ? ["Sigmoid", "Tanh", "Tanh"] : ["Sigmoid", "Tanh"], dirs).SelectMany(a => a)];
        if (names.Length != per * dirs) throw Error(graph, node, $"activations must name {per * dirs} functions");
        float[] alphas = node.Attributes.TryGetValue("activation_alpha", out var al) ? [.. al.Floats] : [];
        float[] betas = node.Attributes.TryGetValue("activation_beta", out var be) ? [.. be.Floats] : [];
        var functions = new string[names.Length];
        for (int i = 0, a = 0, b = 0; i < names.Length; i++)
        {
            string name = Canonical(names[i]) ?? throw Error(graph, node, $"activation '{names[i]}' is not supported", ErrorCodes.UnsupportedAttribute);
            var (da, db) = Activations.Defaults(name);
            // activation_alpha/beta list values only for the functions that take them, in order.
            bool takesAlpha = name is "LeakyRelu" or "ThresholdedRelu" or "ScaledTanh" or "HardSigmoid" or "Elu" or "Affine";
            bool takesBeta = name is "ScaledTanh" or "HardSigmoid" or "Affine";
            float alpha = takesAlpha && a < alphas.Length ? alphas[a++] : da, beta = takesBeta && b < betas.Length ? betas[b++] : db;
            functions[i] = Activations.Format(name, alpha, beta);
        }
        float clip = node.Has("clip") ? node.Float("clip", 0) : float.PositiveInfinity;
        node.Plan = new Plan(seq, batch, input, hidden, dirs, direction == "reverse", layout1, functions, clip,
            Lstm && node.Int("input_forget", 0) != 0, !Lstm && node.Int("linear_before_reset", 0) != 0, lengths);
        int[] y = layout1 ? [batch, seq, dirs, hidden] : [seq, dirs, batch, hidden];
        for (int o = 0; o < node.Outputs.Count; o++)
            if (node.Outputs[o].Length > 0) SetOutput(graph, node, o, o == 0 ? y : stateShape);
    }

    /// <summary>ONNX names functions case-insensitively in practice (exporters write "sigmoid" and "Sigmoid").</summary>
    static string? Canonical(string name) =>
        Activations.Names.Concat(Activations.RecurrentOnly).FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));

    static Plan PlanOf(Node node) => node.Plan as Plan ?? throw new InvalidOperationException($"{node.Describe} used before shape inference");

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var p = PlanOf(node);
        int h = p.Hidden, g = Gates, dirs = p.Directions;
        var x = inputs[0]!.Floats; var w = inputs[1]!.Floats; var r = inputs[2]!.Floats;
        float[]? bias = inputs.Length > 3 ? inputs[3]?.Floats : null;
        float[]? h0 = inputs.Length > 5 ? inputs[5]?.Floats : null;
        float[]? c0 = Lstm && inputs.Length > 6 ? inputs[6]?.Floats : null;
        float[]? peep = Lstm && inputs.Length > 7 ? inputs[7]?.Floats : null;
        var y = new float[(long)p.Seq * dirs * p.Batch * h];
        var yh = new float[dirs * p.Batch * h];
        var yc = new float[dirs * p.Batch * h];
        var inputPart = new float[g * h];
        var recurrentPart = new float[g * h];
        for (int d = 0; d < dirs; d++)
        for (int b = 0; b < p.Batch; b++)
        {
            bool reverse = d == 1 || p.Reverse;
            var hs = new float[h];
            var cs = new float[h];
            for (int j = 0; j < h; j++)
            {
                hs[j] = h0 is null ? 0 : h0[StateIndex(p, d, b) + j];
                cs[j] = c0 is null ? 0 : c0[StateIndex(p, d, b) + j];
            }
            string f = p.Functions[d * (Lstm ? 3 : 2)], gf = p.Functions[d * (Lstm ? 3 : 2) + 1], hf = Lstm ? p.Functions[d * 3 + 2] : "";
            int length = p.SequenceLengths[b];
            for (int step = 0; step < length; step++)
            {
                int t = reverse ? length - 1 - step : step;
                long xBase = XIndex(p, t, b);
                var previous = (float[])hs.Clone();
                // Input and recurrent parts of every gate, biases included, kept apart (GRU needs them so).
                for (int row = 0; row < g * h; row++)
                {
                    double sx = bias is null ? 0 : bias[d * 2 * g * h + row];
                    double sr = bias is null ? 0 : bias[d * 2 * g * h + g * h + row];
                    for (int i = 0; i < p.InputSize; i++) sx += (double)x[xBase + i] * w[((long)d * g * h + row) * p.InputSize + i];
                    for (int i = 0; i < h; i++) sr += (double)previous[i] * r[((long)d * g * h + row) * h + i];
                    inputPart[row] = (float)sx;
                    recurrentPart[row] = (float)sr;
                }
                if (Lstm)
                {
                    for (int j = 0; j < h; j++)
                    {
                        float pi = peep is null ? 0 : peep[d * 3 * h + j], po = peep is null ? 0 : peep[d * 3 * h + h + j], pf = peep is null ? 0 : peep[d * 3 * h + 2 * h + j];
                        float it = Act(f, Clip(inputPart[j] + recurrentPart[j] + pi * cs[j], p.Clip));
                        float ft = p.InputForget ? 1 - it : Act(f, Clip(inputPart[2 * h + j] + recurrentPart[2 * h + j] + pf * cs[j], p.Clip));
                        float ct = Act(gf, Clip(inputPart[3 * h + j] + recurrentPart[3 * h + j], p.Clip));
                        cs[j] = ft * cs[j] + it * ct;
                        float ot = Act(f, Clip(inputPart[h + j] + recurrentPart[h + j] + po * cs[j], p.Clip));
                        hs[j] = ot * Act(hf, cs[j]);
                    }
                }
                else
                {
                    var reset = new float[h];
                    for (int j = 0; j < h; j++) reset[j] = Act(f, Clip(inputPart[h + j] + recurrentPart[h + j], p.Clip));
                    for (int j = 0; j < h; j++)
                    {
                        float zt = Act(f, Clip(inputPart[j] + recurrentPart[j], p.Clip));
                        float candidate;
                        if (p.LinearBeforeReset) candidate = inputPart[2 * h + j] + reset[j] * recurrentPart[2 * h + j];
                        else
                        {
                            // (r ⊙ H)·Rhᵀ + Rbh: the reset gate applies to the previous state before the product.
                            double s = bias is null ? 0 : bias[d * 6 * h + 5 * h + j];
                            for (int i = 0; i < h; i++) s += (double)(reset[i] * previous[i]) * r[((long)d * 3 * h + 2 * h + j) * h + i];
                            candidate = inputPart[2 * h + j] + (float)s;
                        }
                        float ht = Act(gf, Clip(candidate, p.Clip));
                        hs[j] = (1 - zt) * ht + zt * previous[j];
                    }
                }
                for (int j = 0; j < h; j++) y[YIndex(p, t, d, b) + j] = hs[j];
            }
            for (int j = 0; j < h; j++)
            {
                yh[StateIndex(p, d, b) + j] = hs[j];
                yc[StateIndex(p, d, b) + j] = cs[j];
            }
        }
        int[] yShape = p.Layout1 ? [p.Batch, p.Seq, dirs, h] : [p.Seq, dirs, p.Batch, h];
        int[] sShape = p.Layout1 ? [p.Batch, dirs, h] : [dirs, p.Batch, h];
        return Lstm ? [new TensorData(yShape, y), new TensorData(sShape, yh), new TensorData(sShape, yc)] : [new TensorData(yShape, y), new TensorData(sShape, yh)];
    }

    static float Act(string function, float v) => ActivationMath.Apply(function, v);
    static float Clip(float v, float clip) => float.IsPositiveInfinity(clip) ? v : Math.Clamp(v, -clip, clip);

    static long XIndex(Plan p, int t, int b) => p.Layout1 ? ((long)b * p.Seq + t) * p.InputSize : ((long)t * p.Batch + b) * p.InputSize;
    static long YIndex(Plan p, int t, int d, int b) => p.Layout1 ? (((long)b * p.Seq + t) * p.Directions + d) * p.Hidden : (((long)t * p.Directions + d) * p.Batch + b) * p.Hidden;
    static int StateIndex(Plan p, int d, int b) => p.Layout1 ? (b * p.Directions + d) * p.Hidden : (d * p.Batch + b) * p.Hidden;

    public override void Lower(Node node, ILowering lowering)
    {
        var p = PlanOf(node);
        var g = lowering.Graph;
        int h = p.Hidden, dirs = p.Directions;
        int Input(int i, int[] shape) => node.HasInput(i) ? lowering.Tensor(node.Inputs[i]) : lowering.Weight($"{node.Name}.zeros{i}", new TensorData(shape, new float[TensorData.Size(shape)]));
        int[] stateShape = p.Layout1 ? [p.Batch, dirs, h] : [dirs, p.Batch, h];
        var inputs = new List<int>
        {
            lowering.Tensor(node.Inputs[0]), lowering.Tensor(node.Inputs[1]), lowering.Tensor(node.Inputs[2]),
            Input(3, [dirs, 2 * Gates * h]), Input(5, stateShape),
        };
        if (Lstm) { inputs.Add(Input(6, stateShape)); inputs.Add(Input(7, [dirs, 3 * h])); }
        int[] yShape = p.Layout1 ? [p.Batch, p.Seq, dirs, h] : [p.Seq, dirs, p.Batch, h];
        int Output(int o, int[] shape) => o < node.Outputs.Count && node.Outputs[o].Length > 0 ? lowering.Tensor(node.Outputs[o]) : lowering.Temporary($"{node.Name}.unused{o}", shape);
        var outputs = new List<int> { Output(0, yShape), Output(1, stateShape) };
        if (Lstm) outputs.Add(Output(2, stateShape));
        // Scratch: the gates of one step, the previous hidden state.
        outputs.Add(lowering.Temporary($"{node.Name}.gates", [2 * Gates * h]));
        outputs.Add(lowering.Temporary($"{node.Name}.previous", [h]));
        var k = lowering.AddNode(Lstm ? KernelKind.LSTM : KernelKind.GRU, OpType, node.Name, [.. inputs], [.. outputs]);
        k.SetRecurrent(new RecurrentAttributes(p.Seq, p.Batch, p.InputSize, h, dirs, p.Reverse, p.Layout1, [.. p.Functions.Select(FusedActivation.Parse)],
            float.IsPositiveInfinity(p.Clip) ? null : p.Clip, p.InputForget, p.LinearBeforeReset, p.SequenceLengths));
    }
}
