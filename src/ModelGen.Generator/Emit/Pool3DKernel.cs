using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>MaxPool and AveragePool over depth, height and width.</summary>
internal sealed class Pool3DKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Pool3D;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        int[] kernel = k.Ints("kernel"), s = k.Ints("strides"), d = k.Ints("dilations"), pb = k.Ints("padbegin"), pe = k.Ints("padend");
        bool average = k.Attr("op") == "average", countPad = k.Attr("countpad") == "1";
        int[] x = k.Inputs[0].Shape, y = k.Y.Shape;
        int planes = x[0] * x[1];
        w.Line($"// {(average ? "AveragePool" : "MaxPool")} 3-D: y{CodeWriter.Shape(y)} over {kernel[0]}x{kernel[1]}x{kernel[2]} windows of x{CodeWriter.Shape(x)}, stride {string.Join("x", s)}, dilation {string.Join("x", d)}, pads {string.Join(",", pb)} / {string.Join(",", pe)}{(average ? countPad ? ", padding counted" : ", padding not counted" : "")}.");
        k.OpenMethod();
        w.Line("int o = 0;");
        w.Open($"for (int plane = 0; plane < {planes}; plane++)");
        w.Open($"for (int od = 0; od < {y[2]}; od++)");
        w.Open($"for (int oh = 0; oh < {y[3]}; oh++)");
        w.Open($"for (int ow = 0; ow < {y[4]}; ow++)");
        w.Line($"int sd = od * {s[0]} - {pb[0]}, sh = oh * {s[1]} - {pb[1]}, sw = ow * {s[2]} - {pb[2]};");
        w.Line(average ? "float sum = 0f;" : "float max = float.NegativeInfinity;");
        if (average) w.Line("int cd = 0, ch = 0, cw = 0;");
        w.Open($"for (int kd = 0; kd < {kernel[0]}; kd++)");
        w.Line($"int id = sd + kd * {d[0]};");
        if (average) w.Line(countPad ? $"if (id < {x[2] + pe[0]}) cd++;" : $"if ((uint)id < {x[2]}u) cd++;");
        w.Line($"if ((uint)id >= {x[2]}u) continue;");
        w.Open($"for (int kh = 0; kh < {kernel[1]}; kh++)");
        w.Line($"int ih = sh + kh * {d[1]};");
        w.Line($"if ((uint)ih >= {x[3]}u) continue;");
        w.Open($"for (int kw = 0; kw < {kernel[2]}; kw++)");
        w.Line($"int iw = sw + kw * {d[2]};");
        w.Line($"if ((uint)iw >= {x[4]}u) continue;");
        w.Line($"float v = x[((plane * {x[2]} + id) * {x[3]} + ih) * {x[4]} + iw];");
        w.Line(average ? "sum += v;" : "if (v > max || float.IsNaN(v)) max = v;");
        w.Close(); w.Close(); w.Close();
        if (average)
        {
            w.Open($"for (int kh = 0; kh < {kernel[1]}; kh++)");
            w.Line($"int ih = sh + kh * {d[1]};");
            w.Line(countPad ? $"if (ih < {x[3] + pe[1]}) ch++;" : $"if ((uint)ih < {x[3]}u) ch++;");
            w.Close();
            w.Open($"for (int kw = 0; kw < {kernel[2]}; kw++)");
            w.Line($"int iw = sw + kw * {d[2]};");
            w.Line(countPad ? $"if (iw < {x[4] + pe[2]}) cw++;" : $"if ((uint)iw < {x[4]}u) cw++;");
            w.Close();
            w.Line("y[o++] = sum / (cd * ch * cw);");
        }
        else w.Line("y[o++] = max;");
        w.Close(); w.Close(); w.Close(); w.Close();
        w.Close();
    }
}
