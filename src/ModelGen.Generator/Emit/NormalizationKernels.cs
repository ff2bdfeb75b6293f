using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>BatchNormalization left unfolded: y = a[c]·x + b[c] per channel (a, b computed at build time).</summary>
internal sealed class ChannelAffineKernel : IKernel
{
    public string Kernel => "ChannelAffine";

    public string InputName(int i) => new[] { "x", "a", "b" }[i];

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
    public string Kernel => "Normalize";

    public string InputName(int i) => new[] { "x", "scale", "bias" }[i];

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
    public string Kernel => "LRN";

    public string InputName(int i) => "x";

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

/// <summary>AveragePool: window sums over real pixels divided by the ONNX divisor (padding counted or not).</summary>
internal sealed class AveragePoolKernel : IKernel
{
    public string Kernel => "AveragePool";

    public string InputName(int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0];
        int[] kernel = k.Ints("kernel"), s = k.Ints("strides"), p = k.Ints("pads");
        bool countPad = k.Attr("countpad") == "1";
        int nc = x.Shape[0] * x.Shape[1];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = k.Y.Shape.Length == 4 ? k.Y.Shape[2] : 1, ow = k.Y.Shape[k.Y.Shape.Length - 1];
        w.Line($"// AveragePool: y{CodeWriter.Shape(k.Y.Shape)} = mean over {kernel[0]}x{kernel[1]} windows of x{CodeWriter.Shape(x.Shape)}, stride {s[0]}x{s[1]}, pads {string.Join(",", p)}, padding {(countPad ? "counted" : "not counted")}.");
        k.OpenMethod();
        w.Open($"for (int plane = 0; plane < {nc}; plane++)");
        w.Open($"for (int oh = 0; oh < {oh}; oh++)");
        w.Open($"for (int ow = 0; ow < {ow}; ow++)");
        w.Line($"int hs = oh * {s[0]} - {p[0]}, ws = ow * {s[1]} - {p[1]};");
        w.Line($"int he = global::System.Math.Min(hs + {kernel[0]}, {h + p[2]}), we = global::System.Math.Min(ws + {kernel[1]}, {wd + p[3]});");
        if (countPad) w.Line("int divisor = (he - hs) * (we - ws);");
        w.Line($"hs = global::System.Math.Max(hs, 0); ws = global::System.Math.Max(ws, 0); he = global::System.Math.Min(he, {h}); we = global::System.Math.Min(we, {wd});");
        if (!countPad) w.Line("int divisor = (he - hs) * (we - ws);");
        w.Line("float sum = 0f;");
        w.Line($"for (int ih = hs; ih < he; ih++) for (int iw = ws; iw < we; iw++) sum += x[(plane * {h} + ih) * {wd} + iw];");
        w.Line($"y[(plane * {oh} + oh) * {ow} + ow] = sum / divisor;");
        w.Close(); w.Close(); w.Close(); w.Close();
    }
}
