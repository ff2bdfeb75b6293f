using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>ConvTranspose: y = bias, then every input pixel adds x·w over its kernel window in the output.</summary>
internal sealed class ConvTransposeKernel : IKernel
{
    public KernelKind Kernel => KernelKind.ConvTranspose;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "w", "b" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var geometry = k.Node.ConvTranspose ?? throw new System.FormatException($"ConvTranspose '{k.Node.Name}' has no geometry");
        int[] input = geometry.In, output = geometry.Out, kernel = geometry.Kernel, s = geometry.Strides, d = geometry.Dilations, p = geometry.PadBegin;
        int group = geometry.Group;
        var x = k.Inputs[0];
        int n = x.Shape[0], c = x.Shape[1], mpg = k.Inputs[1].Shape[1], m = mpg * group, cpg = c / group;
        int planeIn = input[0] * input[1], planeOut = output[0] * output[1];
        bool hasBias = k.Inputs.Length > 2;
        w.Line($"// ConvTranspose: y{CodeWriter.Shape(k.Y.Shape)} from x{CodeWriter.Shape(x.Shape)} and w{CodeWriter.Shape(k.Inputs[1].Shape)}: each input pixel scatters x·w over a {kernel[0]}x{kernel[1]} window, stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, leading pads {p[0]},{p[1]}, group {group}{k.ActName()}.");
        using var method = k.OpenMethod();
        using var images = w.For("n", n, out string image);
        using (w.Block($"for (int m = 0; m < {m}; m++)"))
            w.Line($"y.Slice({Expr.Times(Expr.Plus(Expr.Times(image, m), "m"), planeOut)}, {planeOut}).Fill({(hasBias ? "b[m]" : "0f")});");
        using (w.Block($"for (int c = 0; c < {c}; c++)"))
        {
            w.Line(group == 1 ? "const int g = 0;" : $"int g = c / {cpg};");
            using (w.Block($"for (int j = 0; j < {mpg}; j++)"))
            {
                w.Line($"int yBase = {Expr.Times(Expr.Sum(Expr.Times(image, m), Expr.Times("g", mpg), "j"), planeOut)};");
                w.Line($"int wBase = {Expr.Times(Expr.Plus(Expr.Times("c", mpg), "j"), kernel[0] * kernel[1])};");
                using (w.Block($"for (int ih = 0; ih < {input[0]}; ih++)"))
                using (w.Block($"for (int iw = 0; iw < {input[1]}; iw++)"))
                {
                    w.Line($"float v = x[{Expr.Sum(Expr.Times(Expr.Plus(Expr.Times(image, c), "c"), planeIn), Expr.Times("ih", input[1]), "iw")}];");
                    using (w.Block($"for (int kh = 0; kh < {kernel[0]}; kh++)"))
                    {
                        w.Line($"int oh = {Expr.Plus(Expr.Minus(Expr.Times("ih", s[0]), p[0]), Expr.Times("kh", d[0]))};");
                        w.Line($"if ((uint)oh >= {output[0]}u) continue;");
                        using (w.Block($"for (int kw = 0; kw < {kernel[1]}; kw++)"))
                        {
                            w.Line($"int ow = {Expr.Plus(Expr.Minus(Expr.Times("iw", s[1]), p[1]), Expr.Times("kw", d[1]))};");
                            w.Line($"if ((uint)ow < {output[1]}u) y[yBase + oh * {output[1]} + ow] += v * w[wBase + kh * {kernel[1]} + kw];");
                        }
                    }
                }
            }
        }
        if (k.Node.Activation is not null)
        {
            w.Line($"Span<float> all = y.Slice({Expr.Times(image, (long)m * planeOut)}, {m * planeOut});");
            w.Line($"for (int i = 0; i < all.Length; i++) {{ float v = all[i]; all[i] = {k.Act()}; }}");
        }
    }
}
