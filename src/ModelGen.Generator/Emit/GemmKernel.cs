using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>Gemm with operands computed at run time: Y = alpha·A'·B' + beta·C (C broadcast to [M, N]).</summary>
internal sealed class GemmKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Gemm;

    public string InputName(ArtifactNode node, int i) => new[] { "a", "b", "c" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var gemm = k.Node.Gemm ?? throw new System.FormatException($"Gemm '{k.Node.Name}' has no transA, transB, alpha and beta");
        bool ta = gemm.TransA, tb = gemm.TransB;
        string alpha = KernelContext.F(gemm.Alpha), beta = KernelContext.F(gemm.Beta);
        int m = k.Y.Shape[0], n = k.Y.Shape[1];
        int kk = ta ? k.Inputs[0].Shape[0] : k.Inputs[0].Shape[1];
        bool hasC = k.Inputs.Length > 2;
        w.Line($"// Gemm: y[{m}, {n}] = {alpha}·a{(ta ? "ᵀ" : "")}·b{(tb ? "ᵀ" : "")}{(hasC ? $" + {beta}·c{CodeWriter.Shape(k.Inputs[2].Shape)}" : "")}, inner dimension {kk}{k.ActName()}.");
        using var method = k.OpenMethod();
        using (w.Block($"for (int i = 0; i < {m}; i++)"))
        using (w.Block($"for (int j = 0; j < {n}; j++)"))
        {
            w.Line("float sum = 0f;");
            string aIndex = ta ? $"p * {m} + i" : $"i * {kk} + p";
            string bIndex = tb ? $"j * {kk} + p" : $"p * {n} + j";
            w.Line($"for (int p = 0; p < {kk}; p++) sum += a[{aIndex}] * b[{bIndex}];");
            string c = hasC ? $" + {beta} * c[{KernelEmitter.Index(k.Inputs[2].Shape, new[] { m, n }, $"(i * {n} + j)")}]" : "";
            w.Line($"float v = {alpha} * sum{c};");
            w.Line($"y[i * {n} + j] = {k.Act()};");
        }
    }
}

/// <summary>Clip whose bounds are inputs given at run time (scalars).</summary>
internal sealed class ClipRuntimeKernel : IKernel
{
    public KernelKind Kernel => KernelKind.ClipRuntime;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "first", "second" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var bounds = k.Node.ClipRuntime ?? throw new System.FormatException($"ClipRuntime '{k.Node.Name}' has no bounds");
        bool hasMin = bounds.HasMin, hasMax = bounds.HasMax;
        w.Line($"// Clip: y = clamp(x, {(hasMin ? "min" : "−∞")}, {(hasMax ? "max" : "+∞")}), the bounds given at run time.");
        using var method = k.OpenMethod();
        w.Line(hasMin ? "float lo = first[0];" : "float lo = float.NegativeInfinity;");
        w.Line(hasMax ? $"float hi = {(hasMin ? "second" : "first")}[0];" : "float hi = float.PositiveInfinity;");
        w.Line($"for (int i = 0; i < {k.Y.ElementCount}; i++) {{ float v = x[i]; y[i] = float.IsNaN(v) ? v : MathF.Min(MathF.Max(v, lo), hi); }}");
    }
}
