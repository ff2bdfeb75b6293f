using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>BatchNormalization left unfolded: y = a[c]·x + b[c] per channel (a, b computed at build time).</summary>
internal sealed class ChannelAffineKernel : IKernel
{
    public KernelKind Kernel => KernelKind.ChannelAffine;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "a", "b" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0];
        int n = x.Shape[0], c = x.Shape[1];
        long inner = x.ElementCount / ((long)n * c);
        w.Line($"// BatchNormalization (inference): y{CodeWriter.Shape(k.Y.Shape)} = a[c]·x + b[c], a = scale/√(var + ε), b = B − mean·a{k.ActName()}.");
        k.OpenMethod();
        w.Open($"for (int n = 0; n < {n}; n++)");
        w.Open($"for (int c = 0; c < {c}; c++)");
        w.Line($"int start = (n * {c} + c) * {inner};");
        w.Line("float scale = a[c], shift = b[c];");
        w.Open($"for (int i = start; i < start + {inner}; i++)");
        w.Line("float v = x[i] * scale + shift;");
        w.Line($"y[i] = {k.Act()};");
        w.Close(); w.Close(); w.Close(); w.Close();
    }
}

/// <summary>
/// InstanceNormalization and LayerNormalization: each run of <c>size</c> values is normalized,
/// (x − mean)/√(var + ε), then scaled and shifted per group (instance) or per index (layer).
/// </summary>
internal sealed class NormalizeKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Normalize;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "scale", "bias" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        int groups = k.Int("groups"), size = k.Int("size");
        string[] p = k.Attr("params").Split(',');
        bool perIndex = p[1] == "per-index";
        int paramCount = int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture);
        string eps = KernelContext.F(k.Float("epsilon"));
        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: {groups} runs of {size} values, each (x − mean)/√(var + {eps})·scale + bias, scale and bias per {(perIndex ? "position in the run" : "channel")}.");
        k.OpenMethod();
        w.Open($"for (int g = 0; g < {groups}; g++)");
        w.Line($"global::System.ReadOnlySpan<float> run = x.Slice(g * {size}, {size});");
        w.Line("float mean = 0f;");
        w.Line($"for (int i = 0; i < {size}; i++) mean += run[i];");
        w.Line($"mean /= {size};");
        w.Line("float variance = 0f;");
        w.Line($"for (int i = 0; i < {size}; i++) {{ float d = run[i] - mean; variance += d * d; }}");
        w.Line($"float inv = 1f / global::System.MathF.Sqrt(variance / {size} + {eps});");
        if (k.Outputs.Length == 3)
        {
            w.Line("y1[g] = mean; // the Mean output");
            w.Line("y2[g] = inv; // the InvStdDev output");
        }
        if (perIndex)
            w.Line($"for (int i = 0; i < {size}; i++) y[g * {size} + i] = (run[i] - mean) * inv * scale[i] + bias[i];");
        else
        {
            w.Line($"int c = g % {paramCount};");
            w.Line($"for (int i = 0; i < {size}; i++) y[g * {size} + i] = (run[i] - mean) * inv * scale[c] + bias[c];");
        }
        w.Close();
        w.Close();
    }
}

/// <summary>LRN across channels.</summary>
internal sealed class LrnKernel : IKernel
{
    public KernelKind Kernel => KernelKind.LRN;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0];
        int n = x.Shape[0], c = x.Shape[1], size = k.Int("size");
        long inner = x.ElementCount / ((long)n * c);
        int before = (size - 1) / 2, after = size - 1 - before;
        string alpha = KernelContext.F(k.Float("alpha")), beta = KernelContext.F(k.Float("beta")), bias = KernelContext.F(k.Float("bias"));
        w.Line($"// LRN: y = x / ({bias} + {alpha}/{size}·Σ x²)^{beta}, the sum over channels c − {before} … c + {after}.");
        k.OpenMethod();
        w.Open($"for (int n = 0; n < {n}; n++)");
        w.Open($"for (int c = 0; c < {c}; c++)");
        w.Line($"int first = global::System.Math.Max(0, c - {before}), last = global::System.Math.Min({c - 1}, c + {after});");
        w.Open($"for (int i = 0; i < {inner}; i++)");
        w.Line("float sum = 0f;");
        w.Line($"for (int q = first; q <= last; q++) {{ float v = x[(n * {c} + q) * {inner} + i]; sum += v * v; }}");
        w.Line($"int at = (n * {c} + c) * {inner} + i;");
        w.Line($"y[at] = x[at] / global::System.MathF.Pow({bias} + {alpha} / {size} * sum, {beta});");
        w.Close(); w.Close(); w.Close(); w.Close();
    }
}

/// <summary>
/// AveragePool: window sums over real pixels divided by the ONNX divisor (padding counted or not). On the uint8
/// activations between int8 layers (x and y uint8, one quantization, attribute "zero" its zero point): integer
/// sums, a counted pad adding the zero point (a real 0), the mean rounded half up, as the evaluator's
/// Int8Quantization.AverageBytes; the same loops in every SIMD level.
/// </summary>
internal sealed class AveragePoolKernel : IKernel
{
    public KernelKind Kernel => KernelKind.AveragePool;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0];
        int[] kernel = k.Window.Kernel, s = k.Window.Strides, p = k.Window.Pads;
        int[] d = k.Window.Dilations;
        bool countPad = k.Attr("countpad") == "1", bytes = x.Element == TensorElement.UInt8;
        if (bytes != (k.Y.Element == TensorElement.UInt8) || bytes && !k.Has("zero"))
            throw new System.FormatException($"AveragePool '{k.Node.Name}': uint8 input and output go together, with the zero point they share");
        int nc = x.Shape[0] * x.Shape[1];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = k.Y.Shape.Length == 4 ? k.Y.Shape[2] : 1, ow = k.Y.Shape[k.Y.Shape.Length - 1];
        w.Line($"// AveragePool{(bytes ? " on uint8 activations (the int8 layers around it share one quantization)" : "")}: y{CodeWriter.Shape(k.Y.Shape)} = mean over {kernel[0]}x{kernel[1]} windows of x{CodeWriter.Shape(x.Shape)},");
        w.Line($"// stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, padding {(countPad ? "counted" : "not counted")}{(bytes ? $" (as the zero point {k.Int("zero")}); the mean byte rounded half up" : "")}.");
        k.OpenMethod();
        w.Open($"for (int plane = 0; plane < {nc}; plane++)");
        w.Open($"for (int oh = 0; oh < {oh}; oh++)");
        w.Open($"for (int ow = 0; ow < {ow}; ow++)");
        w.Line(bytes ? "int sum = 0, inside = 0;" : "float sum = 0f;");
        w.Line("int rows = 0, cols = 0;");
        w.Open($"for (int kh = 0; kh < {kernel[0]}; kh++)");
        w.Line($"int ih = oh * {s[0]} - {p[0]} + kh * {d[0]};");
        w.Line(countPad ? $"if (ih < {h + p[2]}) rows++;" : $"if ((uint)ih < {h}u) rows++;");
        w.Line($"if ((uint)ih >= {h}u) continue;");
        w.Open($"for (int kw = 0; kw < {kernel[1]}; kw++)");
        w.Line($"int iw = ow * {s[1]} - {p[1]} + kw * {d[1]};");
        w.Line($"if ((uint)iw < {wd}u) {{ sum += x[(plane * {h} + ih) * {wd} + iw];{(bytes ? " inside++;" : "")} }}");
        w.Close();
        w.Close();
        w.Open($"for (int kw = 0; kw < {kernel[1]}; kw++)");
        w.Line($"int iw = ow * {s[1]} - {p[1]} + kw * {d[1]};");
        w.Line(countPad ? $"if (iw < {wd + p[3]}) cols++;" : $"if ((uint)iw < {wd}u) cols++;");
        w.Close();
        if (bytes)
        {
            w.Line($"int count = rows * cols; sum += (count - inside) * {k.Int("zero")};");
            w.Line($"y[(plane * {oh} + oh) * {ow} + ow] = (byte)((sum + count / 2) / count);");
        }
        else w.Line($"y[(plane * {oh} + oh) * {ow} + ow] = sum / (rows * cols);");
        w.Close(); w.Close(); w.Close(); w.Close();
    }
}

/// <summary>BatchNormalization with statistics given at run time: y = (x − mean)/√(var + ε)·scale + B.</summary>
internal sealed class BatchNormKernel : IKernel
{
    public KernelKind Kernel => KernelKind.BatchNorm;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "scale", "bias", "mean", "variance" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0];
        int n = x.Shape[0], c = x.Shape[1];
        long inner = x.ElementCount / ((long)n * c);
        string eps = KernelContext.F(k.Float("epsilon"));
        w.Line($"// BatchNormalization (inference, statistics given at run time): y = (x − mean)/√(var + {eps})·scale + B per channel{k.ActName()}.");
        k.OpenMethod();
        w.Open($"for (int c = 0; c < {c}; c++)");
        w.Line($"float a = scale[c] / global::System.MathF.Sqrt(variance[c] + {eps}), shift = bias[c] - mean[c] * a;");
        w.Open($"for (int n = 0; n < {n}; n++)");
        w.Open($"for (int i = (n * {c} + c) * {inner}; i < (n * {c} + c + 1) * {inner}; i++)");
        w.Line("float v = x[i] * a + shift;");
        w.Line($"y[i] = {k.Act()};");
        w.Close(); w.Close(); w.Close(); w.Close();
    }
}
