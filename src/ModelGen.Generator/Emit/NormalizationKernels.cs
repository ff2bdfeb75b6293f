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
        using var method = k.OpenMethod();
        using var images = w.For("n", n, out string image);
        using var channels = w.Block($"for (int c = 0; c < {c}; c++)");
        w.Line($"int start = {Expr.Times(Expr.Plus(Expr.Times(image, c), "c"), inner)};");
        w.Line("float scale = a[c], shift = b[c];");
        using var elements = w.Block($"for (int i = start; i < start + {inner}; i++)");
        w.Line("float v = x[i] * scale + shift;");
        w.Line($"y[i] = {k.Act()};");
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
        var norm = k.Normalization;
        int groups = norm.Groups, size = norm.Size;
        bool perIndex = norm.PerIndex;
        int paramCount = norm.ParamCount;
        string eps = KernelContext.F(norm.Epsilon);
        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: {groups} runs of {size} values, each (x − mean)/√(var + {eps})·scale + bias, scale and bias per {(perIndex ? "position in the run" : "channel")}.");
        using var method = k.OpenMethod();
        using var runs = w.For("g", groups, out string g);
        w.Line($"ReadOnlySpan<float> run = x.Slice({Expr.Times(g, size)}, {size});");
        w.Line("float mean = 0f;");
        w.Line($"for (int i = 0; i < {size}; i++) mean += run[i];");
        w.Line($"mean /= {size};");
        w.Line("float variance = 0f;");
        w.Line($"for (int i = 0; i < {size}; i++) {{ float d = run[i] - mean; variance += d * d; }}");
        w.Line($"float inv = 1f / MathF.Sqrt(variance / {size} + {eps});");
        if (k.Outputs.Length == 3)
        {
            w.Line($"y1[{g}] = mean; // the Mean output");
            w.Line($"y2[{g}] = inv; // the InvStdDev output");
        }
        string at = Expr.Plus(Expr.Times(g, size), "i");
        if (perIndex)
            w.Line($"for (int i = 0; i < {size}; i++) y[{at}] = (run[i] - mean) * inv * scale[i] + bias[i];");
        else
        {
            w.Line(paramCount == 1 ? "const int c = 0;" : $"int c = {g} % {paramCount};");
            w.Line($"for (int i = 0; i < {size}; i++) y[{at}] = (run[i] - mean) * inv * scale[c] + bias[c];");
        }
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
        int n = x.Shape[0], c = x.Shape[1], size = k.Normalization.Size;
        long inner = x.ElementCount / ((long)n * c);
        int before = (size - 1) / 2, after = size - 1 - before;
        string alpha = KernelContext.F(k.Normalization.Alpha), beta = KernelContext.F(k.Normalization.Beta), bias = KernelContext.F(k.Normalization.Bias);
        w.Line($"// LRN: y = x / ({bias} + {alpha}/{size}·Σ x²)^{beta}, the sum over channels c − {before} … c + {after}.");
        using var method = k.OpenMethod();
        using var images = w.For("n", n, out string image);
        using var channels = w.Block($"for (int c = 0; c < {c}; c++)");
        w.Line($"int first = Math.Max(0, {Expr.Minus("c", before)}), last = Math.Min({c - 1}, {Expr.Plus("c", after)});");
        using var elements = w.For("i", inner, out string i);
        w.Line("float sum = 0f;");
        w.Line($"for (int q = first; q <= last; q++) {{ float v = x[{Expr.Plus(Expr.Times(Expr.Plus(Expr.Times(image, c), "q"), inner), i)}]; sum += v * v; }}");
        w.Line($"int at = {Expr.Plus(Expr.Times(Expr.Plus(Expr.Times(image, c), "c"), inner), i)};");
        w.Line($"y[at] = x[at] / MathF.Pow({bias} + {alpha} / {size} * sum, {beta});");
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
        var pool = k.Node.AveragePool ?? throw new System.FormatException($"AveragePool '{k.Node.Name}' has no countpad");
        bool countPad = pool.CountPad, bytes = x.Element == TensorElement.UInt8;
        if (bytes != (k.Y.Element == TensorElement.UInt8) || bytes && pool.Zero is null)
            throw new System.FormatException($"AveragePool '{k.Node.Name}': uint8 input and output go together, with the zero point they share");
        int nc = x.Shape[0] * x.Shape[1];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = k.Y.Shape.Length == 4 ? k.Y.Shape[2] : 1, ow = k.Y.Shape[k.Y.Shape.Length - 1];
        w.Line($"// AveragePool{(bytes ? " on uint8 activations (the int8 layers around it share one quantization)" : "")}: y{CodeWriter.Shape(k.Y.Shape)} = mean over {kernel[0]}x{kernel[1]} windows of x{CodeWriter.Shape(x.Shape)},");
        w.Line($"// stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, padding {(countPad ? "counted" : "not counted")}{(bytes ? $" (as the zero point {pool.Zero}); the mean byte rounded half up" : "")}.");
        using var method = k.OpenMethod();
        using var planes = w.Block($"for (int plane = 0; plane < {nc}; plane++)");
        using var rows = w.Block($"for (int oh = 0; oh < {oh}; oh++)");
        using var columns = w.Block($"for (int ow = 0; ow < {ow}; ow++)");
        w.Line(bytes ? "int sum = 0, inside = 0;" : "float sum = 0f;");
        w.Line("int rows = 0, cols = 0;");
        string iw = Expr.Plus(Expr.Minus(Expr.Times("ow", s[1]), p[1]), Expr.Times("kw", d[1]));
        using (w.Block($"for (int kh = 0; kh < {kernel[0]}; kh++)"))
        {
            w.Line($"int ih = {Expr.Plus(Expr.Minus(Expr.Times("oh", s[0]), p[0]), Expr.Times("kh", d[0]))};");
            w.Line(countPad ? $"if (ih < {h + p[2]}) rows++;" : $"if ((uint)ih < {h}u) rows++;");
            w.Line($"if ((uint)ih >= {h}u) continue;");
            using (w.Block($"for (int kw = 0; kw < {kernel[1]}; kw++)"))
            {
                w.Line($"int iw = {iw};");
                w.Line($"if ((uint)iw < {wd}u) {{ sum += x[(plane * {h} + ih) * {wd} + iw];{(bytes ? " inside++;" : "")} }}");
            }
        }
        using (w.Block($"for (int kw = 0; kw < {kernel[1]}; kw++)"))
        {
            w.Line($"int iw = {iw};");
            w.Line(countPad ? $"if (iw < {wd + p[3]}) cols++;" : $"if ((uint)iw < {wd}u) cols++;");
        }
        if (bytes)
        {
            w.Line($"int count = rows * cols; sum += (count - inside) * {pool.Zero};");
            w.Line($"y[(plane * {oh} + oh) * {ow} + ow] = (byte)((sum + count / 2) / count);");
        }
        else w.Line($"y[(plane * {oh} + oh) * {ow} + ow] = sum / (rows * cols);");
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
        string eps = KernelContext.F(k.Normalization.Epsilon);
        w.Line($"// BatchNormalization (inference, statistics given at run time): y = (x − mean)/√(var + {eps})·scale + B per channel{k.ActName()}.");
        using var method = k.OpenMethod();
        using var channels = w.Block($"for (int c = 0; c < {c}; c++)");
        w.Line($"float a = scale[c] / MathF.Sqrt(variance[c] + {eps}), shift = bias[c] - mean[c] * a;");
        using var images = w.For("n", n, out string image);
        string plane = Expr.Plus(Expr.Times(image, c), "c");
        using var elements = w.Block($"for (int i = {Expr.Times(plane, inner)}; i < {Expr.Times(Expr.Plus(plane, "1"), inner)}; i++)");
        w.Line("float v = x[i] * a + shift;");
        w.Line($"y[i] = {k.Act()};");
    }
}
