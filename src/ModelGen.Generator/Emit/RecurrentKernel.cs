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
        int[] dims = k.Ints("dims");
        int seq = dims[0], batch = dims[1], input = dims[2], h = dims[3], dirs = dims[4];
        int g = Lstm ? 4 : 3, gh = g * h;
        bool reverse = k.Attr("reverse") == "1", layout1 = k.Attr("layout") == "1";
        int per = Lstm ? 3 : 2;
        string clip = k.Has("clip") ? KernelContext.F(k.Float("clip")) : "";
        int[] lengths = k.Ints("lengths");
        string C(string e) => clip.Length == 0 ? e : $"global::System.Math.Clamp({e}, -{clip}, {clip})";
        string X(string t, string b) => layout1 ? $"({b} * {seq} + {t}) * {input}" : $"({t} * {batch} + {b}) * {input}";
        string Y(string t, string d, string b) => layout1 ? $"(({b} * {seq} + {t}) * {dirs} + {d}) * {h}" : $"(({t} * {dirs} + {d}) * {batch} + {b}) * {h}";
        string S(string d, string b) => layout1 ? $"({b} * {dirs} + {d}) * {h}" : $"({d} * {batch} + {b}) * {h}";
        string y = "y", yh = "y1", yc = "y2", gates = Lstm ? "y3" : "y2", previous = Lstm ? "y4" : "y3";

        w.Line($"// {Kernel}: {dirs} direction(s){(reverse ? " (reverse)" : "")}, {seq} steps, batch {batch}, input {input}, hidden {h}; gates {(Lstm ? "i o f c" : "z r h")} as ONNX orders them{(clip.Length > 0 ? $", clipped to ±{clip}" : "")}.");
        for (int i = 0; i < dirs * per; i++)
        {
            var (op, alpha, beta) = Activations.Parse(k.Attr($"f{i}"));
            w.Line($"static float {k.Name}F{i}(float v) => {Activations.Expression(op, alpha, beta, "v")}; // {op}");
        }
        w.Line($"static global::System.ReadOnlySpan<int> {k.Name}Lengths => new int[] {{ {string.Join(", ", lengths)} }};");
        k.OpenMethod();
        w.Open($"for (int d = 0; d < {dirs}; d++)");
        w.Line($"bool backward = {(reverse ? "true" : "d == 1")};");
        w.Open($"for (int n = 0; n < {batch}; n++)");
        w.Line($"global::System.Span<float> hs = {yh}.Slice({S("d", "n")}, {h});");
        w.Line($"h0.Slice({S("d", "n")}, {h}).CopyTo(hs);");
        if (Lstm)
        {
            w.Line($"global::System.Span<float> cs = {yc}.Slice({S("d", "n")}, {h});");
            w.Line($"c0.Slice({S("d", "n")}, {h}).CopyTo(cs);");
        }
        w.Line($"int length = {k.Name}Lengths[n];");
        w.Open("for (int step = 0; step < length; step++)");
        w.Line("int t = backward ? length - 1 - step : step;");
        w.Line($"global::System.ReadOnlySpan<float> xt = x.Slice({X("t", "n")}, {input});");
        w.Line($"hs.CopyTo({previous});");
        w.Line("// Input part (gates[row]) and recurrent part (gates[GH + row]) of every gate, each with its bias.");
        w.Open($"for (int row = 0; row < {gh}; row++)");
        w.Line($"{gates}[row] = Dot(xt, w.Slice((d * {gh} + row) * {input}, {input})) + b[d * {2 * gh} + row];");
        w.Line($"{gates}[{gh} + row] = Dot({previous}, r.Slice((d * {gh} + row) * {h}, {h})) + b[d * {2 * gh} + {gh} + row];");
        w.Close();
        k.Helpers.Add("Dot");
        string F(int i, string arg) => dirs == 1 ? $"{k.Name}F{i}({arg})" : $"(d == 0 ? {k.Name}F{i}({arg}) : {k.Name}F{per + i}({arg}))";
        if (Lstm)
        {
            bool inputForget = k.Has("inputforget");
            w.Open($"for (int j = 0; j < {h}; j++)");
            w.Line($"float it = {F(0, C($"{gates}[j] + {gates}[{gh} + j] + p[d * {3 * h} + j] * cs[j]"))};");
            w.Line(inputForget ? "float ft = 1f - it;" : $"float ft = {F(0, C($"{gates}[{2 * h} + j] + {gates}[{gh + 2 * h} + j] + p[d * {3 * h} + {2 * h} + j] * cs[j]"))};");
            w.Line($"float ct = {F(1, C($"{gates}[{3 * h} + j] + {gates}[{gh + 3 * h} + j]"))};");
            w.Line("cs[j] = ft * cs[j] + it * ct;");
            w.Line($"float ot = {F(0, C($"{gates}[{h} + j] + {gates}[{gh + h} + j] + p[d * {3 * h} + {h} + j] * cs[j]"))};");
            w.Line($"hs[j] = ot * {F(2, "cs[j]")};");
            w.Close();
        }
        else
        {
            bool linearBeforeReset = k.Has("linearbeforereset");
            if (!linearBeforeReset)
            {
                w.Line("// (r ⊙ H)·Rhᵀ + Rbh: the reset gate scales the previous state before the product.");
                w.Line($"global::System.Span<float> scaled = {gates}.Slice({gh + 2 * h}, {h});");
                w.Line($"for (int j = 0; j < {h}; j++) scaled[j] = {F(0, C($"{gates}[{h} + j] + {gates}[{gh + h} + j]"))} * {previous}[j];");
            }
            w.Open($"for (int j = 0; j < {h}; j++)");
            w.Line($"float zt = {F(0, C($"{gates}[j] + {gates}[{gh} + j]"))};");
            if (linearBeforeReset)
            {
                w.Line($"float rt = {F(0, C($"{gates}[{h} + j] + {gates}[{gh + h} + j]"))};");
                w.Line($"float candidate = {gates}[{2 * h} + j] + rt * {gates}[{gh + 2 * h} + j];");
            }
            else
                w.Line($"float candidate = {gates}[{2 * h} + j] + Dot(scaled, r.Slice((d * {gh} + {2 * h} + j) * {h}, {h})) + b[d * {2 * gh} + {gh + 2 * h} + j];");
            w.Line($"float ht = {F(1, C("candidate"))};");
            w.Line($"hs[j] = (1f - zt) * ht + zt * {previous}[j];");
            w.Close();
        }
        w.Line($"hs.CopyTo({y}.Slice({Y("t", "d", "n")}, {h}));");
        w.Close();
        w.Close();
        w.Close();
        w.Close();
    }
}
