using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// LSTM and GRU: for each direction and batch entry, each time step computes the input and recurrent
/// parts of every gate (dot products against rows of W and R), then the gate equations of ONNX.
/// The running state lives in the Y_h (and Y_c) outputs; gates and the previous state in scratch.
/// </summary>
internal sealed class RecurrentKernel(KernelKind kind) : IKernel
{
    public KernelKind Kernel { get; } = kind;

    bool Lstm => Kernel == KernelKind.LSTM;

    public string InputName(ArtifactNode node, int i) => (Lstm ? new[] { "x", "w", "r", "b", "h0", "c0", "p" } : new[] { "x", "w", "r", "b", "h0" })[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var layer = k.Node.Recurrent ?? throw new System.FormatException($"{Kernel} '{k.Node.Name}' has no dims");
        int seq = layer.Steps, batch = layer.Batch, input = layer.Input, h = layer.Hidden, dirs = layer.Directions;
        int g = Lstm ? 4 : 3, gh = g * h;
        bool reverse = layer.Reverse, layout1 = layer.Layout1;
        int per = Lstm ? 3 : 2;
        string clip = layer.Clip is { } bound ? KernelContext.F(bound) : "";
        int[] lengths = layer.Lengths;
        string C(string e) => clip.Length == 0 ? e : $"Math.Clamp({e}, -{clip}, {clip})";
        string X(string t, string b) => layout1 ? Expr.Times(Expr.Plus(Expr.Times(b, seq), t), input) : Expr.Times(Expr.Plus(Expr.Times(t, batch), b), input);
        string Y(string t, string d, string b) => layout1
            ? Expr.Times(Expr.Plus(Expr.Times(Expr.Plus(Expr.Times(b, seq), t), dirs), d), h)
            : Expr.Times(Expr.Plus(Expr.Times(Expr.Plus(Expr.Times(t, dirs), d), batch), b), h);
        string S(string d, string b) => layout1 ? Expr.Times(Expr.Plus(Expr.Times(b, dirs), d), h) : Expr.Times(Expr.Plus(Expr.Times(d, batch), b), h);
        string y = "y", yh = "y1", yc = "y2", gates = Lstm ? "y3" : "y2", previous = Lstm ? "y4" : "y3";

        w.Line($"// {Kernel}: {dirs} direction(s){(reverse ? " (reverse)" : "")}, {seq} steps, batch {batch}, input {input}, hidden {h}; gates {(Lstm ? "i o f c" : "z r h")} as ONNX orders them{(clip.Length > 0 ? $", clipped to ±{clip}" : "")}.");
        // Named after the kernel, after what they hold: a kernel's name never starts with "F0Of" or "LengthsOf" (it starts with an ONNX operator).
        for (int i = 0; i < dirs * per; i++)
        {
            var (op, alpha, beta) = (layer.Functions[i].Op, layer.Functions[i].Alpha, layer.Functions[i].Beta);
            w.Line($"static float F{i}Of{k.Name}(float v) => {Activations.Expression(op, alpha, beta, "v")}; // {op}");
        }
        w.Line($"static ReadOnlySpan<int> LengthsOf{k.Name} => new int[] {{ {string.Join(", ", lengths)} }};");
        using var method = k.OpenMethod();
        using var directions = w.For("d", dirs, out string d);
        w.Line($"bool backward = {(reverse ? "true" : dirs == 1 ? "false" : "d == 1")};");
        using var sequences = w.For("n", batch, out string n);
        w.Line($"Span<float> hs = {yh}.Slice({S(d, n)}, {h});");
        w.Line($"h0.Slice({S(d, n)}, {h}).CopyTo(hs);");
        if (Lstm)
        {
            w.Line($"Span<float> cs = {yc}.Slice({S(d, n)}, {h});");
            w.Line($"c0.Slice({S(d, n)}, {h}).CopyTo(cs);");
        }
        w.Line($"int length = LengthsOf{k.Name}[{n}];");
        using var steps = w.Block("for (int step = 0; step < length; step++)");
        w.Line("int t = backward ? length - 1 - step : step;");
        w.Line($"ReadOnlySpan<float> xt = x.Slice({X("t", n)}, {input});");
        w.Line($"hs.CopyTo({previous});");
        w.Line("// Input part (gates[row]) and recurrent part (gates[GH + row]) of every gate, each with its bias.");
        using (w.Block($"for (int row = 0; row < {gh}; row++)"))
        {
            w.Line($"{gates}[row] = Dot(xt, w.Slice({Expr.Times(Expr.Plus(Expr.Times(d, gh), "row"), input)}, {input})) + b[{Expr.Plus(Expr.Times(d, 2 * gh), "row")}];");
            w.Line($"{gates}[{gh} + row] = Dot({previous}, r.Slice({Expr.Times(Expr.Plus(Expr.Times(d, gh), "row"), h)}, {h})) + b[{Expr.Sum(Expr.Times(d, 2 * gh), CodeWriter.N(gh), "row")}];");
        }
        k.Helpers.Add("Dot");
        string F(int i, string arg) => dirs == 1 ? $"F{i}Of{k.Name}({arg})" : $"(d == 0 ? F{i}Of{k.Name}({arg}) : F{per + i}Of{k.Name}({arg}))";
        // Peephole weights of gate g (0 input, 1 output, 2 forget) at j.
        string P(int gate) => $"p[{Expr.Sum(Expr.Times(d, 3 * h), CodeWriter.N(gate * h), "j")}]";
        if (Lstm)
        {
            bool inputForget = layer.InputForget;
            using (w.Block($"for (int j = 0; j < {h}; j++)"))
            {
                w.Line($"float it = {F(0, C($"{gates}[j] + {gates}[{gh} + j] + {P(0)} * cs[j]"))};");
                w.Line(inputForget ? "float ft = 1f - it;" : $"float ft = {F(0, C($"{gates}[{2 * h} + j] + {gates}[{gh + 2 * h} + j] + {P(2)} * cs[j]"))};");
                w.Line($"float ct = {F(1, C($"{gates}[{3 * h} + j] + {gates}[{gh + 3 * h} + j]"))};");
                w.Line("cs[j] = ft * cs[j] + it * ct;");
                w.Line($"float ot = {F(0, C($"{gates}[{h} + j] + {gates}[{gh + h} + j] + {P(1)} * cs[j]"))};");
                w.Line($"hs[j] = ot * {F(2, "cs[j]")};");
            }
        }
        else
        {
            bool linearBeforeReset = layer.LinearBeforeReset;
            if (!linearBeforeReset)
            {
                w.Line("// (r ⊙ H)·Rhᵀ + Rbh: the reset gate scales the previous state before the product.");
                w.Line($"Span<float> scaled = {gates}.Slice({gh + 2 * h}, {h});");
                w.Line($"for (int j = 0; j < {h}; j++) scaled[j] = {F(0, C($"{gates}[{h} + j] + {gates}[{gh + h} + j]"))} * {previous}[j];");
            }
            using (w.Block($"for (int j = 0; j < {h}; j++)"))
            {
                w.Line($"float zt = {F(0, C($"{gates}[j] + {gates}[{gh} + j]"))};");
                if (linearBeforeReset)
                {
                    w.Line($"float rt = {F(0, C($"{gates}[{h} + j] + {gates}[{gh + h} + j]"))};");
                    w.Line($"float candidate = {gates}[{2 * h} + j] + rt * {gates}[{gh + 2 * h} + j];");
                }
                else
                {
                    string recurrent = $"Dot(scaled, r.Slice({Expr.Times(Expr.Sum(Expr.Times(d, gh), CodeWriter.N(2 * h), "j"), h)}, {h}))";
                    w.Line($"float candidate = {gates}[{2 * h} + j] + {recurrent} + b[{Expr.Sum(Expr.Times(d, 2 * gh), CodeWriter.N(gh + 2 * h), "j")}];");
                }
                w.Line($"float ht = {F(1, C("candidate"))};");
                w.Line($"hs[j] = (1f - zt) * ht + zt * {previous}[j];");
            }
        }
        w.Line($"hs.CopyTo({y}.Slice({Y("t", d, n)}, {h}));");
    }
}
