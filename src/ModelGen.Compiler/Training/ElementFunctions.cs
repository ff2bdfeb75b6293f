using System.Numerics;
using ModelGen.Artifact;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training;

/// <summary>
/// The element-wise functions of <see cref="Activations"/> that train: value and derivative, for fused
/// activation chains and unary nodes alike. A derivative is taken where the function is differentiable and,
/// at a kink, from the side PyTorch takes (Relu'(0) = 0, Clip' = 1 inside [min, max] inclusive, Abs'(0) = 0,
/// HardSigmoid' and HardSwish' as torch.nn.functional's). The values follow <see cref="Evaluate.ActivationMath"/>'s
/// formulas, with <see cref="TrainingMath"/>'s exp, log and tanh in place of the platform's.
/// </summary>
public static class ElementFunctions
{
    public static bool IsTrainable(string op) => op is "Relu" or "LeakyRelu" or "Clip" or "Scale" or "Sigmoid" or "Tanh"
        or "HardSigmoid" or "HardSwish" or "Exp" or "Log" or "Sqrt" or "Neg" or "Abs" or "Softplus" or "Softsign" or "Elu" or "Selu";

    /// <summary>Applies the function to every element of <paramref name="x"/> into <paramref name="y"/>.</summary>
    public static void Apply<T>(string op, float alpha, float beta, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = T.CreateChecked(alpha), b = T.CreateChecked(beta);
        T six = T.CreateChecked(6), half = T.CreateChecked(0.5);
        switch (op)
        {
            case "Relu": for (int i = 0; i < x.Length; i++) y[i] = T.Max(x[i], T.Zero); break;
            case "LeakyRelu": for (int i = 0; i < x.Length; i++) y[i] = x[i] < T.Zero ? a * x[i] : x[i]; break;
            case "Clip": for (int i = 0; i < x.Length; i++) y[i] = T.Min(T.Max(x[i], a), b); break;
            case "Scale": for (int i = 0; i < x.Length; i++) y[i] = a * x[i]; break;
            case "Sigmoid": for (int i = 0; i < x.Length; i++) y[i] = TrainingMath.Sigmoid(x[i]); break;
            case "Tanh": for (int i = 0; i < x.Length; i++) y[i] = TrainingMath.Tanh(x[i]); break;
            case "HardSigmoid": for (int i = 0; i < x.Length; i++) y[i] = T.Max(T.Zero, T.Min(T.One, a * x[i] + b)); break;
            case "HardSwish": for (int i = 0; i < x.Length; i++) y[i] = x[i] * T.Max(T.Zero, T.Min(T.One, x[i] / six + half)); break;
            case "Exp": for (int i = 0; i < x.Length; i++) y[i] = TrainingMath.Exp(x[i]); break;
            case "Log": for (int i = 0; i < x.Length; i++) y[i] = TrainingMath.Log(x[i]); break;
            case "Sqrt": for (int i = 0; i < x.Length; i++) y[i] = T.Sqrt(x[i]); break; // IEEE: correctly rounded everywhere
            case "Neg": for (int i = 0; i < x.Length; i++) y[i] = -x[i]; break;
            case "Abs": for (int i = 0; i < x.Length; i++) y[i] = T.Abs(x[i]); break;
            case "Softplus": for (int i = 0; i < x.Length; i++) y[i] = Softplus(x[i]); break;
            case "Softsign": for (int i = 0; i < x.Length; i++) y[i] = x[i] / (T.One + T.Abs(x[i])); break;
            case "Elu": for (int i = 0; i < x.Length; i++) y[i] = x[i] < T.Zero ? a * (TrainingMath.Exp(x[i]) - T.One) : x[i]; break;
            case "Selu": for (int i = 0; i < x.Length; i++) y[i] = x[i] <= T.Zero ? b * (a * TrainingMath.Exp(x[i]) - a) : b * x[i]; break;
            default: throw new NotSupportedException($"activation '{op}' does not train");
        }
    }

    /// <summary>dx = dy · f'(x), from the function's input <paramref name="x"/>; written into <paramref name="dx"/> (which may be dy).</summary>
    public static void Backward<T>(string op, float alpha, float beta, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = T.CreateChecked(alpha), b = T.CreateChecked(beta);
        T three = T.CreateChecked(3), half = T.CreateChecked(0.5);
        switch (op)
        {
            case "Relu": for (int i = 0; i < x.Length; i++) dx[i] = x[i] > T.Zero ? dy[i] : T.Zero; break;
            case "LeakyRelu": for (int i = 0; i < x.Length; i++) dx[i] = x[i] < T.Zero ? a * dy[i] : dy[i]; break;
            case "Clip": for (int i = 0; i < x.Length; i++) dx[i] = x[i] >= a && x[i] <= b ? dy[i] : T.Zero; break;
            case "Scale": for (int i = 0; i < x.Length; i++) dx[i] = a * dy[i]; break;
            case "Sigmoid":
                for (int i = 0; i < x.Length; i++) { T s = TrainingMath.Sigmoid(x[i]); dx[i] = dy[i] * (s * (T.One - s)); }
                break;
            case "Tanh":
                for (int i = 0; i < x.Length; i++) { T t = TrainingMath.Tanh(x[i]); dx[i] = dy[i] * (T.One - t * t); }
                break;
            case "HardSigmoid":
                // Zero where the output is clamped (both ends strict, as torch's hardsigmoid_backward).
                for (int i = 0; i < x.Length; i++) { T v = a * x[i] + b; dx[i] = v > T.Zero && v < T.One ? a * dy[i] : T.Zero; }
                break;
            case "HardSwish":
                // torch's hardswish_backward: 0 below −3, x/3 + 1/2 up to 3 inclusive, 1 above.
                for (int i = 0; i < x.Length; i++)
                    dx[i] = x[i] < -three ? T.Zero : x[i] <= three ? dy[i] * (x[i] / three + half) : dy[i];
                break;
            case "Exp": for (int i = 0; i < x.Length; i++) dx[i] = dy[i] * TrainingMath.Exp(x[i]); break;
            case "Log": for (int i = 0; i < x.Length; i++) dx[i] = dy[i] / x[i]; break;
            case "Sqrt": for (int i = 0; i < x.Length; i++) dx[i] = dy[i] / (T.Sqrt(x[i]) + T.Sqrt(x[i])); break;
            case "Neg": for (int i = 0; i < x.Length; i++) dx[i] = -dy[i]; break;
            case "Abs": for (int i = 0; i < x.Length; i++) dx[i] = x[i] > T.Zero ? dy[i] : x[i] < T.Zero ? -dy[i] : T.Zero; break;
            case "Softplus": for (int i = 0; i < x.Length; i++) dx[i] = dy[i] * TrainingMath.Sigmoid(x[i]); break;
            case "Softsign":
                for (int i = 0; i < x.Length; i++) { T d = T.One + T.Abs(x[i]); dx[i] = dy[i] / (d * d); }
                break;
            case "Elu": for (int i = 0; i < x.Length; i++) dx[i] = x[i] < T.Zero ? dy[i] * (a * TrainingMath.Exp(x[i])) : dy[i]; break;
            case "Selu": for (int i = 0; i < x.Length; i++) dx[i] = x[i] <= T.Zero ? dy[i] * (b * a * TrainingMath.Exp(x[i])) : b * dy[i]; break;
            default: throw new NotSupportedException($"activation '{op}' does not train");
        }
    }

    /// <summary>ln(1 + eˣ) as the evaluator computes it (x + ln(1 + e⁻ˣ) for positive x: no overflow).</summary>
    static T Softplus<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> =>
        x > T.Zero ? x + TrainingMath.Log(T.One + TrainingMath.Exp(-x)) : TrainingMath.Log(T.One + TrainingMath.Exp(x));
}
