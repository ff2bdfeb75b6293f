using System.Numerics;
using ModelGen.Artifact;

namespace ModelGen.Compiler.Training;

/// <summary>
/// The element-wise functions of <see cref="Activations"/> that train: value and derivative, for fused
/// activation chains and unary nodes alike. A derivative is taken where the function is differentiable and,
/// at a kink, from the side PyTorch takes (Relu'(0) = 0, Clip' = 1 inside [min, max] inclusive).
/// </summary>
public static class ElementFunctions
{
    public static bool IsTrainable(string op) => op is "Relu" or "LeakyRelu" or "Clip" or "Scale";

    /// <summary>Applies the function to every element of <paramref name="x"/> into <paramref name="y"/>.</summary>
    public static void Apply<T>(string op, float alpha, float beta, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = T.CreateChecked(alpha), b = T.CreateChecked(beta);
        switch (op)
        {
            case "Relu": for (int i = 0; i < x.Length; i++) y[i] = T.Max(x[i], T.Zero); break;
            case "LeakyRelu": for (int i = 0; i < x.Length; i++) y[i] = x[i] < T.Zero ? a * x[i] : x[i]; break;
            case "Clip": for (int i = 0; i < x.Length; i++) y[i] = T.Min(T.Max(x[i], a), b); break;
            case "Scale": for (int i = 0; i < x.Length; i++) y[i] = a * x[i]; break;
            default: throw new NotSupportedException($"activation '{op}' does not train");
        }
    }

    /// <summary>dx = dy · f'(x), from the function's input <paramref name="x"/>; written into <paramref name="dx"/> (which may be dy).</summary>
    public static void Backward<T>(string op, float alpha, float beta, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = T.CreateChecked(alpha), b = T.CreateChecked(beta);
        switch (op)
        {
            case "Relu": for (int i = 0; i < x.Length; i++) dx[i] = x[i] > T.Zero ? dy[i] : T.Zero; break;
            case "LeakyRelu": for (int i = 0; i < x.Length; i++) dx[i] = x[i] < T.Zero ? a * dy[i] : dy[i]; break;
            case "Clip": for (int i = 0; i < x.Length; i++) dx[i] = x[i] >= a && x[i] <= b ? dy[i] : T.Zero; break;
            case "Scale": for (int i = 0; i < x.Length; i++) dx[i] = a * dy[i]; break;
            default: throw new NotSupportedException($"activation '{op}' does not train");
        }
    }
}
