using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Training;

/// <summary>
/// Quantization-aware training for the Compression values that round weights: while fine-tuning, each layer the
/// compression will quantize computes with its weights rounded the way the pass rounds them (per output channel,
/// symmetric: int8 ±127, int4 ±7, scale max |w| over the levels), and the gradient reaches the float32 weights
/// through the rounding unchanged (straight-through). The pass then quantizes the fine-tuned weights as usual,
/// so the result is bit-exact with the evaluator as without training.
/// </summary>
public static class QuantizationAwareTraining
{
    /// <summary>Attaches the plan's rounding to the model's weights; returns the layers that train quantized.</summary>
    public static IReadOnlyList<string> Attach(TrainableModel model, CompressionPlan plan)
    {
        var layers = new List<string>();
        var graph = model.Graph;
        foreach (var node in graph.Nodes)
        {
            if (!node.HasInput(1) || graph[node.Inputs[1]].Constant is not { } w || model.FakeQuantized.Contains(node.Inputs[1])
                || !model.Parameters.Any(p => p.Name == node.Inputs[1])) continue;
            int levels = Levels(node, w, plan);
            if (levels == 0) continue;
            int n = w.Shape[0], k = (int)(w.Count / n);
            model.FakeQuantize(node.Inputs[1], values => RoundTrip(values, n, k, levels));
            layers.Add(node.Name);
        }
        return layers;
    }

    /// <summary>127 or 7 where the plan's passes quantize this node's weights, 0 where they stay float32.</summary>
    static int Levels(Node node, TensorData w, CompressionPlan plan)
    {
        string precision = plan.Precision(node);
        bool dense = node.OpType == DenseOperator.Name && node.Int("transA", 0) == 0 && w.Shape.Length == 2;
        bool conv = node.OpType == "Conv" && w.Shape.Length is 3 or 4;
        bool depthwise = conv && node.Int("group", 1) > 1 && w.Shape[1] == 1 && w.Shape[0] == node.Int("group", 1);
        return precision switch
        {
            "int4-weights" or "int4" when dense => 7,
            "int8" when dense || conv => 127,
            "int8-weights" when dense || conv && plan.ConvolutionWeights && !depthwise => 127,
            _ => 0,
        };
    }

    /// <summary>Each of <paramref name="n"/> rows rounded to <paramref name="levels"/> steps of max |row| / levels either side of 0 (half to even), back in float32.</summary>
    public static float[] RoundTrip(float[] w, int n, int k, int levels)
    {
        var result = new float[w.Length];
        for (int j = 0; j < n; j++)
        {
            var row = w.AsSpan(j * k, k);
            float max = 0;
            foreach (float v in row) max = Math.Max(max, Math.Abs(v));
            float scale = max > 0 ? max / levels : 1f;
            for (int i = 0; i < k; i++)
                result[j * k + i] = Math.Clamp(MathF.Round(row[i] / scale, MidpointRounding.ToEven), -levels, levels) * scale;
        }
        return result;
    }
}
