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
        var pool = k.Node.Pool3D ?? throw new System.FormatException($"Pool3D '{k.Node.Name}' has no window");
        int[] kernel = pool.Kernel, s = pool.Strides, d = pool.Dilations, pb = pool.PadBegin, pe = pool.PadEnd;
        bool average = pool.Average, countPad = pool.CountPad;
        int[] x = k.Inputs[0].Shape, y = k.Y.Shape;
        int planes = x[0] * x[1];
        w.Line($"// {(average ? "AveragePool" : "MaxPool")} 3-D: y{CodeWriter.Shape(y)} over {kernel[0]}x{kernel[1]}x{kernel[2]} windows of x{CodeWriter.Shape(x)}, stride {string.Join("x", s)}, dilation {string.Join("x", d)}, pads {string.Join(",", pb)} / {string.Join(",", pe)}{(average ? countPad ? ", padding counted" : ", padding not counted" : "")}.");
        using var method = k.OpenMethod();
        w.Line("int o = 0;");
        using var planeLoop = w.Block($"for (int plane = 0; plane < {planes}; plane++)");
        using var depths = w.Block($"for (int od = 0; od < {y[2]}; od++)");
        using var rows = w.Block($"for (int oh = 0; oh < {y[3]}; oh++)");
        using var columns = w.Block($"for (int ow = 0; ow < {y[4]}; ow++)");
        w.Line($"int sd = {Expr.Minus(Expr.Times("od", s[0]), pb[0])}, sh = {Expr.Minus(Expr.Times("oh", s[1]), pb[1])}, sw = {Expr.Minus(Expr.Times("ow", s[2]), pb[2])};");
        w.Line(average ? "float sum = 0f;" : "float max = float.NegativeInfinity;");
        if (average) w.Line("int cd = 0, ch = 0, cw = 0;");
        using (w.Block($"for (int kd = 0; kd < {kernel[0]}; kd++)"))
        {
            w.Line($"int id = {Expr.Plus("sd", Expr.Times("kd", d[0]))};");
            if (average) w.Line(countPad ? $"if (id < {x[2] + pe[0]}) cd++;" : $"if ((uint)id < {x[2]}u) cd++;");
            w.Line($"if ((uint)id >= {x[2]}u) continue;");
            KernelEmitter.WindowTaps(w, [kernel[1], kernel[2]], [s[1], s[2]], [d[1], d[2]], [pb[1], pb[2]], x[3], x[4], "oh", "ow", () =>
            {
                w.Line($"float v = x[((plane * {x[2]} + id) * {x[3]} + ih) * {x[4]} + iw];");
                w.Line(average ? "sum += v;" : "if (v > max || float.IsNaN(v)) max = v;");
            });
        }
        if (average)
        {
            using (w.Block($"for (int kh = 0; kh < {kernel[1]}; kh++)"))
            {
                w.Line($"int ih = {Expr.Plus("sh", Expr.Times("kh", d[1]))};");
                w.Line(countPad ? $"if (ih < {x[3] + pe[1]}) ch++;" : $"if ((uint)ih < {x[3]}u) ch++;");
            }
            using (w.Block($"for (int kw = 0; kw < {kernel[2]}; kw++)"))
            {
                w.Line($"int iw = {Expr.Plus("sw", Expr.Times("kw", d[2]))};");
                w.Line(countPad ? $"if (iw < {x[4] + pe[2]}) cw++;" : $"if ((uint)iw < {x[4]}u) cw++;");
            }
            w.Line("y[o++] = sum / (cd * ch * cw);");
        }
        else w.Line("y[o++] = max;");
    }
}
