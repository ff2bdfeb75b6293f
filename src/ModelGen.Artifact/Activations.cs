using System;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>
/// Element-wise functions of one float, as ONNX defines them, by name with up to two parameters, and
/// the C# expression the emitter writes for each. The compiler's ActivationMath evaluates the same
/// formulas with the same float32 operations; a test holds the two together.
/// </summary>
public static class Activations
{
    /// <summary>The unary ONNX operators in this table, with their attribute defaults (alpha, beta).</summary>
    public static readonly string[] Names =
    [
        "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign",
        "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Clip",
    ];

    /// <summary>Functions that recurrent layers (LSTM, GRU) may name in <c>activations</c> but that are not operators.</summary>
    public static readonly string[] RecurrentOnly = ["Affine", "ThresholdedRelu", "ScaledTanh"];

    /// <summary>
    /// Steps of a fused chain that come from binary nodes with a constant: "Scale" (a Mul by a constant, alpha·x).
    /// A Max or Min with a constant is a Clip with one bound.
    /// </summary>
    public static readonly string[] ConstantSteps = ["Scale"];

    /// <summary>
    /// Separates the steps of a fused chain, applied left to right: "LeakyRelu:0.2:0|Clip:-0.4:Infinity" is an exporter's
    /// LeakyRelu followed by a Max with −0.4, computed in the kernel that produces the value.
    /// </summary>
    public const char ChainSeparator = '|';

    /// <summary>The steps of a chain (one step: a single function).</summary>
    public static (string Op, float Alpha, float Beta)[] ParseChain(string text)
    {
        string[] parts = text.Split(ChainSeparator);
        var steps = new (string, float, float)[parts.Length];
        for (int i = 0; i < parts.Length; i++) steps[i] = Parse(parts[i]);
        return steps;
    }

    /// <summary>Appends a step to a chain (or starts one).</summary>
    public static string Append(string? chain, string step) => chain is null ? step : chain + ChainSeparator + step;

    /// <summary>
    /// The chain as one clamp to [Lo, Hi] when every step is ReLU or Clip (clamping twice is clamping once: the second
    /// clamp's bounds applied to the first's), else null.
    /// </summary>
    public static (float Lo, float Hi)? AsClamp(string chain)
    {
        float lo = float.NegativeInfinity, hi = float.PositiveInfinity;
        foreach (var (op, alpha, beta) in ParseChain(chain))
        {
            if (op is not ("Relu" or "Clip")) return null;
            float a = op == "Relu" ? 0f : alpha, b = op == "Relu" ? float.PositiveInfinity : beta;
            lo = Math.Min(Math.Max(lo, a), b);
            hi = Math.Min(Math.Max(hi, a), b);
        }
        return (lo, hi);
    }

    public static (float Alpha, float Beta) Defaults(string op) => op switch
    {
        "Affine" => (1f, 0f),
        "ThresholdedRelu" => (1f, 0f),
        "ScaledTanh" => (1f, 1f),
        "LeakyRelu" => (0.01f, 0f),
        "Elu" => (1f, 0f),
        "Selu" => (1.67326319217681884765625f, 1.05070102214813232421875f),
        "HardSigmoid" => (0.2f, 0.5f),
        "Clip" => (float.NegativeInfinity, float.PositiveInfinity),
        _ => (0f, 0f),
    };

    /// <summary>The text form used in artifacts: "Op" or "Op:alpha:beta" (round-trip floats).</summary>
    public static string Format(string op, float alpha, float beta) =>
        op + ":" + alpha.ToString("R", CultureInfo.InvariantCulture) + ":" + beta.ToString("R", CultureInfo.InvariantCulture);

    public static (string Op, float Alpha, float Beta) Parse(string text)
    {
        string[] parts = text.Split(':');
        if (Array.IndexOf(Names, parts[0]) < 0 && Array.IndexOf(RecurrentOnly, parts[0]) < 0 && Array.IndexOf(ConstantSteps, parts[0]) < 0) throw new FormatException($"unknown activation '{parts[0]}'");
        if (parts.Length == 1) { var d = Defaults(parts[0]); return (parts[0], d.Alpha, d.Beta); }
        if (parts.Length != 3) throw new FormatException($"bad activation '{text}'");
        return (parts[0], float.Parse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture), float.Parse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture));
    }

    /// <summary>The same function as a C# expression of <paramref name="v"/> (a simple variable name).</summary>
    public static string Expression(string op, float alpha, float beta, string v)
    {
        string a = Literal(alpha), b = Literal(beta);
        const string M = "MathF";
        return op switch
        {
            "Relu" => $"({v} < 0f ? 0f : {v})",
            "LeakyRelu" => $"({v} < 0f ? {a} * {v} : {v})",
            "Elu" => $"({v} < 0f ? {a} * ({M}.Exp({v}) - 1f) : {v})",
            "Selu" => $"({v} <= 0f ? {b} * ({a} * {M}.Exp({v}) - {a}) : {b} * {v})",
            "Sigmoid" => $"(1f / (1f + {M}.Exp(-{v})))",
            "HardSigmoid" => $"{M}.Max(0f, {M}.Min(1f, {a} * {v} + {b}))",
            "HardSwish" => $"({v} * {M}.Max(0f, {M}.Min(1f, {v} / 6f + 0.5f)))",
            "Tanh" => $"{M}.Tanh({v})",
            "Softplus" => $"({v} > 0f ? {v} + {M}.Log(1f + {M}.Exp(-{v})) : {M}.Log(1f + {M}.Exp({v})))",
            "Softsign" => $"({v} / (1f + {M}.Abs({v})))",
            "Erf" => $"Erf({v})",
            "Exp" => $"{M}.Exp({v})",
            "Log" => $"{M}.Log({v})",
            "Sqrt" => $"{M}.Sqrt({v})",
            "Neg" => $"(-{v})",
            "Abs" => $"{M}.Abs({v})",
            "Clip" => $"(float.IsNaN({v}) ? {v} : {M}.Min({M}.Max({v}, {a}), {b}))",
            "Affine" => $"({a} * {v} + {b})",
            "ThresholdedRelu" => $"({v} > {a} ? {v} : 0f)",
            "ScaledTanh" => $"({a} * {M}.Tanh({b} * {v}))",
            "Scale" => $"({a} * {v})",
            _ => throw new FormatException($"unknown activation '{op}'"),
        };
    }

    /// <summary>The binary element-wise operators the emitted Binary kernel computes.</summary>
    public static readonly string[] BinaryNames = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu"];

    /// <summary>A binary operator as a C# expression of two simple variables (NaN propagates through Max and Min, as in ONNX Runtime).</summary>
    public static string BinaryExpression(string op, string a, string b) => op switch
    {
        "Add" => $"{a} + {b}",
        "Sub" => $"{a} - {b}",
        "Mul" => $"{a} * {b}",
        "Div" => $"{a} / {b}",
        "Pow" => $"MathF.Pow({a}, {b})",
        "Max" => $"(float.IsNaN({a}) || float.IsNaN({b}) ? float.NaN : MathF.Max({a}, {b}))",
        "Min" => $"(float.IsNaN({a}) || float.IsNaN({b}) ? float.NaN : MathF.Min({a}, {b}))",
        "PRelu" => $"({a} < 0f ? {b} * {a} : {a})",
        _ => throw new FormatException($"unknown binary operator '{op}'"),
    };

    /// <summary>A float as a C# literal that round-trips.</summary>
    public static string Literal(float f)
    {
        if (float.IsPositiveInfinity(f)) return "float.PositiveInfinity";
        if (float.IsNegativeInfinity(f)) return "float.NegativeInfinity";
        if (float.IsNaN(f)) return "float.NaN";
        string s = f.ToString("R", CultureInfo.InvariantCulture);
        return (s.Contains("E") || s.Contains(".") ? s : s + ".0") + "f";
    }

    /// <summary>The C# text of ActivationMath.Erf, emitted into models that use it.</summary>
    public const string ErfSource = @"static float Erf(float x)
{
    float ax = MathF.Abs(x);
    if (ax < 0.5f)
    {
        float x2 = x * x;
        return 1.1283791670955126f * x * (1f + x2 * (-1f / 3f + x2 * (1f / 10f + x2 * (-1f / 42f + x2 * (1f / 216f + x2 * (-1f / 1320f))))));
    }
    float t = 1f / (1f + 0.5f * ax);
    float erfc = t * MathF.Exp(-ax * ax - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
        + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f)))))))));
    return x >= 0f ? 1f - erfc : erfc - 1f;
}";
}
