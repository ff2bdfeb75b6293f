using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// BatchNormalization (inference): y = (x − mean)/√(var + ε)·scale + B per channel (axis 1). Its
/// parameters must be constants; normalization folds it into a preceding Conv or Dense, and what is
/// left runs as a per-channel affine kernel y = a[c]·x + b[c].
/// </summary>
public sealed class BatchNormalizationOperator() : Operator("BatchNormalization")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.BatchNormalizationRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 5, 5);
        RejectAttributes(graph, node, "epsilon", "momentum", "spatial", "training_mode", "is_test", "consumed_inputs");
        if (node.Int("training_mode", 0) != 0) throw Error(graph, node, "training_mode is set; ModelGen compiles inference", ErrorCodes.UnsupportedAttribute);
        if (node.Int("spatial", 1) != 1) throw Error(graph, node, "spatial=0 is not supported", ErrorCodes.UnsupportedAttribute);
        if (node.Outputs.Skip(1).Any(o => o.Length > 0)) throw Error(graph, node, "the training outputs (running mean, variance) are not supported", ErrorCodes.UnsupportedAttribute);
        var x = ShapeOf(graph, node, 0);
        if (x.Length < 2) throw Error(graph, node, "input needs a channel axis");
        for (int i = 1; i < 5; i++)
            if (TensorData.Size(ShapeOf(graph, node, i)) != x[1]) throw Error(graph, node, $"input {i} must have {x[1]} values (one per channel)");
        SetOutput(graph, node, 0, x);
    }

    /// <summary>The per-channel (a, b) with y = a·x + b, computed in double then rounded once.</summary>
    public static (float[] A, float[] B) Affine(Node node, TensorData scale, TensorData bias, TensorData mean, TensorData variance)
    {
        double eps = node.Float("epsilon", 1e-5f);
        int c = scale.Floats.Length;
        var a = new float[c];
        var b = new float[c];
        for (int i = 0; i < c; i++)
        {
            double ai = scale.Floats[i] / Math.Sqrt(variance.Floats[i] + eps);
            a[i] = (float)ai;
            b[i] = (float)(bias.Floats[i] - mean.Floats[i] * ai);
        }
        return (a, b);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        var (a, b) = Affine(node, inputs[1]!, inputs[2]!, inputs[3]!, inputs[4]!);
        return [ChannelAffine(x, a, b)];
    }

    public static TensorData ChannelAffine(TensorData x, float[] a, float[] b)
    {
        int c = x.Shape[1];
        long inner = TensorData.Size(x.Shape[2..]);
        var y = new float[x.Floats.Length];
        for (long i = 0; i < y.LongLength; i++)
        {
            int ch = (int)(i / inner % c);
            y[i] = x.Floats[i] * a[ch] + b[ch];
        }
        return new TensorData(x.Shape, y);
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var g = lowering.Graph;
        if (node.Inputs.Skip(1).Take(4).Any(i => g[i].Constant is null))
        {
            // Statistics given at run time: the kernel computes a and b itself.
            var k = lowering.AddNode(KernelKind.BatchNorm, "BatchNormalization", node.Name, [.. node.Inputs.Take(5).Select(lowering.Tensor)], [lowering.Tensor(node.Outputs[0])]);
            k.SetNormalization(NormalizationAttributes.BatchNorm(node.Float("epsilon", 1e-5f)));
            Plan.LoweringParts.Activation(k, node);
            return;
        }
        var (a, b) = Affine(node, g[node.Inputs[1]].Constant!, g[node.Inputs[2]].Constant!, g[node.Inputs[3]].Constant!, g[node.Inputs[4]].Constant!);
        var n = lowering.AddNode(KernelKind.ChannelAffine, "BatchNormalization", node.Name,
            [lowering.Tensor(node.Inputs[0]), lowering.Weight(node.Name + ".a", new TensorData([a.Length], a)), lowering.Weight(node.Name + ".b", new TensorData([b.Length], b))],
            [lowering.Tensor(node.Outputs[0])]);
        Plan.LoweringParts.Activation(n, node);
    }
}

/// <summary>InstanceNormalization: per sample and channel, (x − mean)/√(var + ε)·scale[c] + B[c] over the spatial axes.</summary>
public sealed class InstanceNormalizationOperator() : Operator("InstanceNormalization")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.NormalizationRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 3, 3);
        RejectAttributes(graph, node, "epsilon");
        var x = ShapeOf(graph, node, 0);
        if (x.Length < 3) throw Error(graph, node, "needs an input of rank 3 or more");
        for (int i = 1; i < 3; i++)
            if (TensorData.Size(ShapeOf(graph, node, i)) != x[1]) throw Error(graph, node, $"input {i} must have {x[1]} values");
        SetOutput(graph, node, 0, x);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        int c = x.Shape[1];
        int inner = (int)TensorData.Size(x.Shape[2..]);
        return [new TensorData(x.Shape, Normalize(x.Floats, x.Shape[0] * c, inner, node.Float("epsilon", 1e-5f), (p, i) => inputs[1]!.Floats[p % c], (p, i) => inputs[2]!.Floats[p % c]))];
    }

    /// <summary>Normalizes each of <paramref name="groups"/> runs of <paramref name="size"/> values; scale and bias by (group, index).</summary>
    public static float[] Normalize(float[] x, long groups, int size, float epsilon, Func<long, int, float> scale, Func<long, int, float> bias, float[]? means = null, float[]? invStdDevs = null)
    {
        var y = new float[x.Length];
        for (long g = 0; g < groups; g++)
        {
            long b = g * size;
            double mean = 0;
            for (int i = 0; i < size; i++) mean += x[b + i];
            mean /= size;
            double variance = 0;
            for (int i = 0; i < size; i++) variance += (x[b + i] - mean) * (x[b + i] - mean);
            variance /= size;
            double inv = 1 / Math.Sqrt(variance + epsilon);
            if (means is not null) means[g] = (float)mean;
            if (invStdDevs is not null) invStdDevs[g] = (float)inv;
            for (int i = 0; i < size; i++) y[b + i] = (float)((x[b + i] - mean) * inv * scale(g, i) + bias(g, i));
        }
        return y;
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var x = lowering.Graph[node.Inputs[0]].Shape!;
        var n = lowering.AddNode(KernelKind.Normalize, "InstanceNormalization", node.Name,
            [lowering.Tensor(node.Inputs[0]), lowering.Tensor(node.Inputs[1]), lowering.Tensor(node.Inputs[2])], [lowering.Tensor(node.Outputs[0])]);
        n.SetNormalization(NormalizationAttributes.Normalize(x[0] * x[1], checked((int)TensorData.Size(x[2..])), x[1], perIndex: false, node.Float("epsilon", 1e-5f)));
    }
}

/// <summary>
/// LayerNormalization (opset 17): normalize over the axes from <c>axis</c> on, then ·Scale + B
/// (broadcast over those axes); optionally also the Mean and InvStdDev of each run.
/// </summary>
public sealed class LayerNormalizationOperator() : Operator("LayerNormalization")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.NormalizationRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 3);
        RejectAttributes(graph, node, "axis", "epsilon", "stash_type");
        var x = ShapeOf(graph, node, 0);
        int axis = NormalizeAxis(graph, node, node.Int("axis", -1), x.Length);
        if (axis >= x.Length) throw Error(graph, node, "axis out of range");
        int[] normalized = x[axis..];
        for (int i = 1; i < 3; i++)
        {
            if (!node.HasInput(i)) continue;
            var s = ShapeOf(graph, node, i);
            if (Broadcast.Shape(s, normalized) is not { } b || !b.SequenceEqual(normalized)) throw Error(graph, node, $"input {i} does not broadcast to [{string.Join(",", normalized)}]");
            if (graph[node.Inputs[i]].Constant is null && TensorData.Size(s) != TensorData.Size(normalized))
                throw Error(graph, node, $"input {i} is computed at run time and broadcast; give it the full shape [{string.Join(",", normalized)}]", ErrorCodes.UnsupportedAttribute);
        }
        SetOutput(graph, node, 0, x);
        int[] stats = [.. x[..axis], .. Enumerable.Repeat(1, x.Length - axis)];
        for (int o = 1; o < Math.Min(3, node.Outputs.Count); o++)
            if (node.Outputs[o].Length > 0) SetOutput(graph, node, o, stats);
    }

    /// <summary>Scale or bias broadcast to the normalized axes, as a flat vector.</summary>
    static float[] Expand(TensorData? t, int[] normalized, float fallback)
    {
        var v = new float[TensorData.Size(normalized)];
        if (t is null) { Array.Fill(v, fallback); return v; }
        var strides = Broadcast.Strides(t.Shape, normalized);
        for (long i = 0; i < v.LongLength; i++) v[i] = t.Floats[Broadcast.Offset(i, normalized, strides)];
        return v;
    }

    static int Axis(Node node, int rank) => (int)(node.Int("axis", -1) is var a && a < 0 ? a + rank : a);

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        int axis = Axis(node, x.Shape.Length);
        int[] normalized = x.Shape[axis..];
        var scale = Expand(inputs[1], normalized, 1f);
        var bias = Expand(inputs.Length > 2 ? inputs[2] : null, normalized, 0f);
        int size = (int)TensorData.Size(normalized);
        long groups = x.Floats.Length / size;
        var mean = new float[groups];
        var inv = new float[groups];
        var y = InstanceNormalizationOperator.Normalize(x.Floats, groups, size, node.Float("epsilon", 1e-5f), (g, i) => scale[i], (g, i) => bias[i], mean, inv);
        int[] stats = [.. x.Shape[..axis], .. Enumerable.Repeat(1, x.Shape.Length - axis)];
        return [new TensorData(x.Shape, y), new TensorData(stats, mean), new TensorData(stats, inv)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var g = lowering.Graph;
        var x = g[node.Inputs[0]].Shape!;
        int axis = Axis(node, x.Length);
        int[] normalized = x[axis..];
        int size = (int)TensorData.Size(normalized);
        int Param(int input, string name, float fallback) =>
            node.HasInput(input) && g[node.Inputs[input]].Constant is null
                ? lowering.Tensor(node.Inputs[input])
                : lowering.Weight(node.Name + name, new TensorData([size], Expand(node.HasInput(input) ? g[node.Inputs[input]].Constant : null, normalized, fallback)));
        var outputs = new List<int> { lowering.Tensor(node.Outputs[0]) };
        bool stats = node.Outputs.Skip(1).Any(o => o.Length > 0);
        if (stats)
        {
            int[] statShape = [.. x[..axis], .. Enumerable.Repeat(1, x.Length - axis)];
            for (int o = 1; o < 3; o++)
                outputs.Add(o < node.Outputs.Count && node.Outputs[o].Length > 0 ? lowering.Tensor(node.Outputs[o]) : lowering.Temporary($"{node.Name}.stat{o}", statShape));
        }
        var n = lowering.AddNode(KernelKind.Normalize, "LayerNormalization", node.Name,
            [lowering.Tensor(node.Inputs[0]), Param(1, ".scale", 1f), Param(2, ".bias", 0f)], [.. outputs]);
        n.SetNormalization(NormalizationAttributes.Normalize(checked((int)(TensorData.Size(x) / size)), size, size, perIndex: true, node.Float("epsilon", 1e-5f)));
    }
}

/// <summary>LRN across channels: y = x / (bias + α/size·Σ x²)^β over a window of <c>size</c> channels.</summary>
public sealed class LrnOperator() : Operator("LRN")
{
    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1);
        RejectAttributes(graph, node, "alpha", "beta", "bias", "size");
        if (node.Int("size", 0) < 1) throw Error(graph, node, "size is required and must be ≥ 1", ErrorCodes.InvalidGraph);
        var x = ShapeOf(graph, node, 0);
        if (x.Length < 2) throw Error(graph, node, "input needs a channel axis");
        SetOutput(graph, node, 0, x);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        float alpha = node.Float("alpha", 1e-4f), beta = node.Float("beta", 0.75f), bias = node.Float("bias", 1f);
        int size = (int)node.Int("size", 1), c = x.Shape[1];
        long inner = TensorData.Size(x.Shape[2..]);
        int before = (size - 1) / 2, after = size - 1 - before;
        var y = new float[x.Floats.Length];
        for (long i = 0; i < y.LongLength; i++)
        {
            int ch = (int)(i / inner % c);
            long plane = i - ch * inner;
            double sum = 0;
            for (int k = Math.Max(0, ch - before); k <= Math.Min(c - 1, ch + after); k++)
            {
                double v = x.Floats[plane + k * inner];
                sum += v * v;
            }
            y[i] = (float)(x.Floats[i] / Math.Pow(bias + alpha / size * sum, beta));
        }
        return [new TensorData(x.Shape, y)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var n = lowering.AddNode(KernelKind.LRN, "LRN", node.Name, [lowering.Tensor(node.Inputs[0])], [lowering.Tensor(node.Outputs[0])]);
        n.SetNormalization(NormalizationAttributes.Lrn(checked((int)node.Int("size", 1)), node.Float("alpha", 1e-4f), node.Float("beta", 0.75f), node.Float("bias", 1f)));
    }
}
