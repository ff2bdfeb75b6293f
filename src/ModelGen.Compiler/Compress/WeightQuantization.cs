using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>A fully connected layer's weights in int8: W[n, k] ≈ Scales[n]·Q[n, k], symmetric per output channel.</summary>
public sealed record QuantizedWeights(sbyte[] Q, float[] Scales, int N, int K);

/// <summary>
/// Weight-only int8 (Compression int8-weights): every fully connected layer's weights become int8 with
/// one float32 scale per output channel (symmetric, round to nearest, ±127). The graph keeps float
/// weights equal to Scale·Q, so the reference evaluator computes what the emitted code computes; the
/// artifact builder embeds Q and the scales where the kernel reads int8 (batch 1).
/// </summary>
public static class WeightQuantization
{
    /// <summary>The int8 form of a node's weights, if the pass quantized them (its form; stored sparse or not).</summary>
    public static QuantizedWeights? Of(Node node) => node.Form switch { Int8WeightsForm f => f.Weights, SparseDenseForm { Int8: { } q } => q, _ => null };

    public static void QuantizeDenseWeights(Graph graph, Func<Node, bool>? which = null) =>
        Quantize(graph, graph.Nodes.Where(n => n.OpType == DenseOperator.Name && (which is null || which(n)) && graph[n.Inputs[1]].Constant is { Shape.Length: 2 }));

    /// <summary>
    /// Conv weights [M, C/group, kH, kW] in int8 per output channel, where the GEMM kernel computes the
    /// convolution (not depthwise ones): the kernel widens them to float32 in scratch each call, so the
    /// embedded bytes are a quarter and the arithmetic is unchanged.
    /// </summary>
    public static void QuantizeConvWeights(Graph graph, Func<Node, bool>? which = null) =>
        Quantize(graph, graph.Nodes.Where(n => n.OpType == "Conv" && (which is null || which(n)) && graph[n.Inputs[1]].Constant is { Shape.Length: 3 or 4 } c
            && !(n.Int("group", 1) > 1 && c.Shape[1] == 1 && c.Shape[0] == n.Int("group", 1))));

    static void Quantize(Graph graph, IEnumerable<Node> nodes)
    {
        foreach (var node in nodes.ToList())
        {
            var w = graph[node.Inputs[1]].Constant!;
            int n = w.Shape[0], k = (int)(w.Count / n);
            var q = new sbyte[(long)n * k];
            var scales = new float[n];
            var dequantized = new float[(long)n * k];
            for (int j = 0; j < n; j++)
            {
                float max = 0;
                for (int i = 0; i < k; i++) max = Math.Max(max, Math.Abs(w.Floats[(long)j * k + i]));
                float scale = max > 0 ? max / 127f : 1f;
                scales[j] = scale;
                for (int i = 0; i < k; i++)
                {
                    long at = (long)j * k + i;
                    int v = (int)Math.Clamp(MathF.Round(w.Floats[at] / scale, MidpointRounding.ToEven), -127, 127);
                    q[at] = (sbyte)v;
                    dequantized[at] = v * scale;
                }
            }
            // A weight read by another node too keeps its float form there: quantize a private copy.
            string name = node.Inputs[1] + ".int8";
            while (graph.Values.ContainsKey(name)) name += "_";
            var copy = graph.GetOrAdd(name);
            copy.Constant = new TensorData(w.Shape, dequantized);
            copy.Shape = w.Shape;
            copy.Type = ElementType.Float32;
            node.Inputs[1] = name;
            node.Form = new Int8WeightsForm(new QuantizedWeights(q, scales, n, k));
        }
    }
}
