using System.Numerics;
using ModelGen.Artifact;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// BatchNormalization in its inference form, statistics frozen: y = (x − mean)·scale/√(var + ε) + bias per channel
/// (axis 1). Scale and bias train; mean and variance are constants. (Batch statistics with running averages are not
/// done: after normalization a BatchNormalization that follows a Conv is folded into it anyway.)
/// </summary>
public sealed class BatchNormalizationRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        Enumerable.Range(1, 4).Any(i => graph[node.Inputs[i]].Constant is not { Type: ElementType.Float32 }) ? "its scale, bias, mean or variance is computed at run time" : null;

    public override bool IsParameter(Node node, int input) => input is 1 or 2;

    /// <summary>Per channel 1/√(var + ε).</summary>
    static T[] InverseDeviations<T>(NodeRun<T> run) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var variance = run.Inputs[4]!.Data;
        T epsilon = T.CreateChecked(run.Node.Float("epsilon", 1e-5f));
        return [.. variance.Select(v => T.One / T.Sqrt(v + epsilon))];
    }

    public override void Forward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var (scale, bias, mean) = (run.Inputs[1]!.Data, run.Inputs[2]!.Data, run.Inputs[3]!.Data);
        var inv = InverseDeviations(run);
        int channels = x.Shape[1], plane = x.Count / x.Shape[0] / channels;
        var y = new Tensor<T>(x.Shape);
        for (int start = 0, c = 0; start < x.Count; start += plane, c = (c + 1) % channels)
        {
            T a = scale[c] * inv[c], b = bias[c] - mean[c] * a;
            for (int i = start; i < start + plane; i++) y.Data[i] = Fma.Add(x.Data[i], a, b);
        }
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var (scale, mean, dy) = (run.Inputs[1]!.Data, run.Inputs[3]!.Data, run.OutputGrads[0]!.Data);
        var (dx, dScale, dBias) = (run.InputGrads[0]?.Data, run.InputGrads[1]?.Data, run.InputGrads[2]?.Data);
        var inv = InverseDeviations(run);
        int channels = x.Shape[1], plane = x.Count / x.Shape[0] / channels;
        for (int start = 0, c = 0; start < x.Count; start += plane, c = (c + 1) % channels)
        {
            T a = scale[c] * inv[c];
            for (int i = start; i < start + plane; i++)
            {
                if (dx is not null) dx[i] = Fma.Add(dy[i], a, dx[i]);
                if (dScale is not null) dScale[c] = Fma.Add(dy[i], (x.Data[i] - mean[c]) * inv[c], dScale[c]);
                if (dBias is not null) dBias[c] += dy[i];
            }
        }
    }
}

/// <summary>
/// LayerNormalization (over the axes from <c>axis</c> on, which may not include the batch axis) and
/// InstanceNormalization (over the spatial axes of each sample and channel): (x − mean)/√(var + ε)·scale + bias, scale
/// and bias trained. LayerNormalization's may broadcast over the normalized axes; their gradient sums over it.
/// Backward per run of n values, x̂ the normalized input and g = dy·scale: dx = (g − Σg/n − x̂·Σ(g·x̂)/n)/σ.
/// </summary>
public sealed class NormalizationRule : GradientRule
{
    static bool IsLayer(Node node) => node.OpType == "LayerNormalization";

    static int LayerAxis(Node node, int rank) => (int)(node.Int("axis", -1) is var a && a < 0 ? a + rank : a);

    public override string? Refusal(Node node, Graph graph)
    {
        for (int i = 1; i < 3; i++)
            if (node.HasInput(i) && graph[node.Inputs[i]].Constant is not { Type: ElementType.Float32 }) return $"its {(i == 1 ? "scale" : "bias")} is computed at run time";
        if (!IsLayer(node)) return null;
        if (LayerAxis(node, graph[node.Inputs[0]].Shape!.Length) == 0) return "it normalizes over the batch axis (axis 0)";
        var statistics = node.Outputs.Skip(1).Where(o => o.Length > 0).ToHashSet();
        return graph.Outputs.Any(statistics.Contains) || graph.Nodes.Any(n => n.Inputs.Any(statistics.Contains))
            ? "its mean or inverse deviation output is used" : null;
    }

    public override bool IsParameter(Node node, int input) => input is 1 or 2;

    /// <summary>
    /// The batched input as groups of <c>Size</c> values, and where each value's scale and bias are: by index in the
    /// run (LayerNormalization: offsets into the broadcast scale) or by channel (InstanceNormalization: group % channels).
    /// </summary>
    sealed record Layout(int Groups, int Size, int[]? ScaleAt, int[]? BiasAt, int Channels)
    {
        public int Scale(int group, int i) => ScaleAt is null ? group % Channels : ScaleAt[i];
        public int Bias(int group, int i) => BiasAt is null ? group % Channels : BiasAt[i];
    }

    sealed record Statistics<T>(Layout Layout, T[] Means, T[] InverseDeviations);

    static Layout LayoutOf<T>(NodeRun<T> run) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = run.Inputs[0]!.Shape;
        if (!IsLayer(run.Node))
            return new Layout(x[0] * x[1], (int)TensorData.Size(x[2..]), null, null, x[1]);
        int[] normalized = x[LayerAxis(run.Node, x.Length)..];
        int size = (int)TensorData.Size(normalized);
        int[]? At(int input) => run.Inputs.Length > input && run.Inputs[input] is { } t ? StridedOffsets.Broadcast(t.Shape, normalized) : null;
        return new Layout((int)(TensorData.Size(x) / size), size, At(1) ?? new int[size], At(2) ?? new int[size], 1);
    }

    public override void Forward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var layout = LayoutOf(run);
        var (scale, bias) = (run.Inputs[1]?.Data, run.Inputs.Length > 2 ? run.Inputs[2]?.Data : null);
        T epsilon = T.CreateChecked(run.Node.Float("epsilon", 1e-5f)), n = T.CreateChecked(layout.Size);
        var (means, inverse) = (new T[layout.Groups], new T[layout.Groups]);
        var y = new Tensor<T>(x.Shape);
        var (xd, yd) = (x.Data, y.Data);
        for (int g = 0; g < layout.Groups; g++)
        {
            int start = g * layout.Size;
            T sum = T.Zero;
            for (int i = 0; i < layout.Size; i++) sum += xd[start + i];
            T mean = sum / n, squares = T.Zero;
            for (int i = 0; i < layout.Size; i++) { T d = xd[start + i] - mean; squares = Fma.Add(d, d, squares); }
            T inv = T.One / T.Sqrt(squares / n + epsilon);
            (means[g], inverse[g]) = (mean, inv);
            for (int i = 0; i < layout.Size; i++)
            {
                T s = scale is null ? T.One : scale[layout.Scale(g, i)], b = bias is null ? T.Zero : bias[layout.Bias(g, i)];
                yd[start + i] = Fma.Add((xd[start + i] - mean) * inv, s, b);
            }
        }
        run.Saved = new Statistics<T>(layout, means, inverse);
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        var (layout, means, inverse) = (Statistics<T>)run.Saved!;
        var (xd, dy, scale) = (run.Inputs[0]!.Data, run.OutputGrads[0]!.Data, run.Inputs[1]?.Data);
        var (dx, dScale) = (run.InputGrads[0]?.Data, run.InputGrads[1]?.Data);
        var dBias = run.InputGrads.Length > 2 ? run.InputGrads[2]?.Data : null;
        T n = T.CreateChecked(layout.Size);
        for (int g = 0; g < layout.Groups; g++)
        {
            int start = g * layout.Size;
            T sumG = T.Zero, sumGX = T.Zero;
            for (int i = 0; i < layout.Size; i++)
            {
                T xHat = (xd[start + i] - means[g]) * inverse[g], dyi = dy[start + i];
                if (dScale is not null) dScale[layout.Scale(g, i)] = Fma.Add(dyi, xHat, dScale[layout.Scale(g, i)]);
                if (dBias is not null) dBias[layout.Bias(g, i)] += dyi;
                T gi = scale is null ? dyi : dyi * scale[layout.Scale(g, i)];
                sumG += gi;
                sumGX = Fma.Add(gi, xHat, sumGX);
            }
            if (dx is null) continue;
            T meanG = sumG / n, meanGX = sumGX / n;
            for (int i = 0; i < layout.Size; i++)
            {
                T xHat = (xd[start + i] - means[g]) * inverse[g];
                T gi = scale is null ? dy[start + i] : dy[start + i] * scale[layout.Scale(g, i)];
                dx[start + i] = Fma.Add(Fma.Add(-xHat, meanGX, gi - meanG), inverse[g], dx[start + i]);
            }
        }
    }
}
