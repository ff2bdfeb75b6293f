using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A fully connected layer in int8 arithmetic: its input quantized to uint8 with the calibrated
/// <see cref="Input"/> parameters, its weights int8 symmetric per output channel, an int32 dot product,
/// the zero point taken out with the weights' row sums, and one float32 multiply-add to the output:
/// y[j] = (Σk xq[k]·q[j, k] − zx·RowSum[j])·Multiplier[j] + b[j], Multiplier[j] = sx·sw[j].
/// <see cref="Apply"/> is the arithmetic the emitted kernel does, operation for operation, so the
/// evaluator and the generated code give the same bits.
/// </summary>
public sealed record Int8Dense(QuantParams Input, sbyte[] Q, int[] RowSums, float[] Multipliers, int N, int K)
{
    /// <summary>x [rows, K] → y [rows, N] (bias added by the caller's order: acc·M + b).</summary>
    public float[] Apply(float[] x, float[]? bias, int rows)
    {
        var y = new float[(long)rows * N];
        var xq = new byte[K];
        for (int r = 0; r < rows; r++)
        {
            for (int k = 0; k < K; k++) xq[k] = Input.Quantize(x[(long)r * K + k]);
            for (int j = 0; j < N; j++)
            {
                int acc = 0;
                for (int k = 0; k < K; k++) acc += xq[k] * Q[(long)j * K + k];
                acc -= Input.ZeroPoint * RowSums[j];
                float v = acc * Multipliers[j];
                y[(long)r * N + j] = bias is null ? v : v + (bias.Length == N ? bias[j] : bias[(long)r * N + j]);
            }
        }
        return y;
    }
}

/// <summary>
/// Compression int8, for fully connected layers: each layer's input range from the calibration data
/// (MSE-chosen clipping), int8 weights per output channel, int32 accumulation (<see cref="Int8Dense"/>).
/// Convolutions get int8 weights (as int8-weights); their activations stay float32 in this version.
/// </summary>
public static class Int8Quantization
{
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Node, Int8Dense> Layers = new();

    public static Int8Dense? Of(Node node) => !Disabled.TryGetValue(node, out _) && Layers.TryGetValue(node, out var q) ? q : null;

    /// <summary>Most calibration samples that set the ranges.</summary>
    public const int MaxSamples = 512;

    public static void Quantize(Graph graph, DataSet calibration, RangeMethod method = RangeMethod.Mse, bool biasCorrection = true)
    {
        // One row (batch 1): the int8 kernel is a matrix-vector product; a larger batch keeps float32 in this version.
        var dense = graph.Nodes.Where(n => n.OpType == DenseOperator.Name && n.Int("transA", 0) == 0 && graph[n.Inputs[1]].Constant is { Shape.Length: 2 } w
            && TensorData.Size(graph[n.Outputs[0]].Shape!) == w.Shape[0]).ToList();
        if (dense.Count == 0) return;
        var ranges = dense.ToDictionary(n => n, _ => new ActivationRange());
        int batch = Math.Max(1, calibration.Inputs[0].Shape.FirstOrDefault(1));
        int runs = Math.Min(calibration.Count / batch, Math.Max(1, MaxSamples / batch));
        // Two passes over the data: the extremes, then the histograms within them.
        foreach (bool histogram in new[] { false, true })
            for (int r = 0; r < runs; r++)
            {
                var feed = new Dictionary<string, TensorData>(StringComparer.Ordinal);
                for (int i = 0; i < calibration.Inputs.Count; i++)
                {
                    long length = calibration.SampleLength(i) * batch;
                    feed[calibration.Inputs[i].Name] = new TensorData(calibration.Inputs[i].Shape, calibration.Values[i].AsSpan((int)(r * length), (int)length).ToArray());
                }
                var values = ReferenceEvaluator.RunAll(graph, feed);
                foreach (var node in dense)
                {
                    var x = values.TryGetValue(node.Inputs[0], out var v) ? v.Floats : graph[node.Inputs[0]].Constant!.Floats;
                    if (histogram) ranges[node].Accumulate(x); else ranges[node].Observe(x);
                }
            }
        foreach (var node in dense)
        {
            var w = graph[node.Inputs[1]].Constant!;
            int n = w.Shape[0], k = w.Shape[1];
            var (lo, hi) = ranges[node].Range(method);
            var input = QuantParams.ForRange(lo, hi);
            var q = new sbyte[(long)n * k];
            var rowSums = new int[n];
            var multipliers = new float[n];
            for (int j = 0; j < n; j++)
            {
                float max = 0;
                for (int i = 0; i < k; i++) max = Math.Max(max, Math.Abs(w.Floats[(long)j * k + i]));
                float scale = max > 0 ? max / 127f : 1f;
                for (int i = 0; i < k; i++)
                {
                    sbyte v = (sbyte)Math.Clamp(MathF.Round(w.Floats[(long)j * k + i] / scale, MidpointRounding.ToEven), -127, 127);
                    q[(long)j * k + i] = v;
                    rowSums[j] += v;
                }
                multipliers[j] = input.Scale * scale;
            }
            Layers.AddOrUpdate(node, new Int8Dense(input, q, rowSums, multipliers, n, k));
        }
        if (biasCorrection) CorrectBiases(graph, dense, calibration, runs, batch);
    }

    /// <summary>
    /// Bias correction: the mean, over the calibration data, of what quantization shifts each output by
    /// (float32 layer minus int8 layer, on the same float inputs) is added to the layer's bias, so the
    /// int8 outputs are centred where the float ones are. Both the kernel and the evaluator read the
    /// corrected bias, so they stay bit for bit the same.
    /// </summary>
    static void CorrectBiases(Graph graph, List<Node> dense, DataSet calibration, int runs, int batch)
    {
        var shift = dense.ToDictionary(n => n, n => new double[graph[n.Inputs[1]].Constant!.Shape[0]]);
        long seen = 0;
        for (int r = 0; r < runs; r++)
        {
            var feed = new Dictionary<string, TensorData>(StringComparer.Ordinal);
            for (int i = 0; i < calibration.Inputs.Count; i++)
            {
                long length = calibration.SampleLength(i) * batch;
                feed[calibration.Inputs[i].Name] = new TensorData(calibration.Inputs[i].Shape, calibration.Values[i].AsSpan((int)(r * length), (int)length).ToArray());
            }
            // The float model's inputs to each layer (quantization is applied per layer, here without the others).
            Dictionary<string, TensorData> values;
            foreach (var node in dense) Disabled.AddOrUpdate(node, node);
            try { values = ReferenceEvaluator.RunAll(graph, feed); }
            finally { foreach (var node in dense) Disabled.Remove(node); }
            foreach (var node in dense)
            {
                var q = Layers.TryGetValue(node, out var l) ? l : throw new InvalidOperationException();
                var x = values.TryGetValue(node.Inputs[0], out var v) ? v.Floats : graph[node.Inputs[0]].Constant!.Floats;
                var w = graph[node.Inputs[1]].Constant!.Floats;
                var quantized = q.Apply(x, null, x.Length / q.K);
                for (int row = 0; row * q.K < x.Length; row++)
                    for (int j = 0; j < q.N; j++)
                    {
                        double exact = 0;
                        for (int i = 0; i < q.K; i++) exact += (double)w[(long)j * q.K + i] * x[(long)row * q.K + i];
                        shift[node][j] += exact - quantized[(long)row * q.N + j];
                    }
            }
            seen += batch;
        }
        foreach (var node in dense)
        {
            var q = Layers.TryGetValue(node, out var l) ? l : throw new InvalidOperationException();
            var old = node.HasInput(2) ? graph[node.Inputs[2]].Constant : null;
            if (old is not null && old.Count != q.N) continue; // a bias per row as well as per column: left as is
            var corrected = new float[q.N];
            for (int j = 0; j < q.N; j++) corrected[j] = (old?.Floats[j] ?? 0f) + (float)(shift[node][j] / Math.Max(1, seen));
            string name = (node.HasInput(2) ? node.Inputs[2] : node.Name + ".bias") + ".corrected";
            while (graph.Values.ContainsKey(name)) name += "_";
            var value = graph.GetOrAdd(name);
            value.Constant = new TensorData([q.N], corrected);
            value.Shape = [q.N];
            value.Type = ElementType.Float32;
            if (node.Inputs.Count > 2) node.Inputs[2] = name; else node.Inputs.Add(name);
        }
    }

    /// <summary>Nodes evaluated in float32 for a moment (bias correction needs the float model's values).</summary>
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Node, Node> Disabled = new();
}
