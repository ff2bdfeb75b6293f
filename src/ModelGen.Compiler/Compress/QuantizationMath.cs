namespace ModelGen.Compiler.Compress;

/// <summary>An asymmetric uint8 quantization of a real range: real = Scale·(q − ZeroPoint), q in 0…255.</summary>
public readonly record struct QuantParams(float Scale, int ZeroPoint)
{
    /// <summary>
    /// The parameters for [min, max], widened to hold 0 exactly (padding and ReLU outputs must be exact):
    /// scale = (max − min) / 255, zero point = round(−min / scale).
    /// </summary>
    public static QuantParams ForRange(float min, float max)
    {
        min = Math.Min(min, 0f);
        max = Math.Max(max, 0f);
        float scale = (max - min) / 255f;
        if (!(scale > 0) || float.IsInfinity(scale)) return new QuantParams(1f, 0);
        int zero = (int)Math.Clamp(MathF.Round(-min / scale, MidpointRounding.ToEven), 0, 255);
        return new QuantParams(scale, zero);
    }

    /// <summary>1 / Scale in float32: the emitted code multiplies by it (a divide per value is slow), and so does <see cref="Quantize"/>.</summary>
    public float InverseScale => 1f / Scale;

    /// <summary>Quantizes one value (round half to even, saturating), as the emitted code will: round(real·(1/scale)) + zero point.</summary>
    public byte Quantize(float real) => (byte)Math.Clamp(MathF.Round(real * InverseScale, MidpointRounding.ToEven) + ZeroPoint, 0, 255);

    public float Dequantize(byte q) => Scale * (q - ZeroPoint);
}

/// <summary>Symmetric int8 per output channel: one row of weights, scale = max |w| / 127, values in −127…127 (round half to even).</summary>
public static class SymmetricInt8
{
    /// <summary>Writes the row's int8 values and returns its scale (1 for an all-zero row).</summary>
    public static float Quantize(ReadOnlySpan<float> row, Span<sbyte> values)
    {
        float max = 0;
        foreach (float v in row) max = Math.Max(max, Math.Abs(v));
        float scale = max > 0 ? max / 127f : 1f;
        for (int i = 0; i < row.Length; i++) values[i] = (sbyte)Math.Clamp(MathF.Round(row[i] / scale, MidpointRounding.ToEven), -127, 127);
        return scale;
    }
}

/// <summary>
/// The one integer per output channel of an int8 layer: its bias in accumulator units (scale sx·sw, the
/// multiplier) with the input zero point's share taken out, round(b / multiplier) − zx·Σq. The kernel adds
/// it to the int32 sum, exactly, and converts once: y = (acc + bias)·multiplier (TFLite's int32 bias).
/// Rounding the bias moves y by at most half a multiplier, far below an output step.
/// </summary>
public static class AccumulatorBias
{
    /// <summary>Bounds every (sum + bias) in int32: sums stay below 2^30 (a row is at most 2^30 / (255·127) weights).</summary>
    const long Limit = 1L << 30;

    /// <param name="bias">Per channel, one value for all, or null.</param>
    public static int[] Fold(float[]? bias, int zeroPoint, int[] rowSums, float[] multipliers)
    {
        var folded = new int[rowSums.Length];
        for (int m = 0; m < folded.Length; m++)
        {
            double b = bias is null ? 0 : bias.Length == 1 ? bias[0] : bias[m];
            long v = (long)Math.Round(b / multipliers[m], MidpointRounding.ToEven) - (long)zeroPoint * rowSums[m];
            folded[m] = (int)Math.Clamp(v, -Limit, Limit); // beyond: the bias alone saturates the layer; both kernel and evaluator clamp
        }
        return folded;
    }
}

/// <summary>
/// Fixed-point requantization, integer only, so that every kernel path and the evaluator give the same
/// integers: a real multiplier M (an int32 accumulator's scale over the output's) is a Q31 integer
/// multiplier and a power-of-two shift, M ≈ multiplier · 2^(shift − 31); applying it is a rounding
/// doubling high multiply then a rounding right shift (the gemmlowp / TFLite reference arithmetic).
/// </summary>
public static class FixedPoint
{
    /// <summary>The Q31 multiplier (2^30 ≤ m &lt; 2^31) and shift for a positive real multiplier.</summary>
    public static (int Multiplier, int Shift) Quantize(double real)
    {
        if (!(real > 0) || double.IsInfinity(real)) throw new ArgumentOutOfRangeException(nameof(real), real, "a requantization multiplier is positive and finite");
        int exponent = (int)Math.Floor(Math.Log2(real)) + 1;
        double fraction = real / Math.Pow(2, exponent); // in [0.5, 1)
        if (fraction >= 1) { fraction /= 2; exponent++; }
        if (fraction < 0.5) { fraction *= 2; exponent--; }
        long q = (long)Math.Round(fraction * (1L << 31), MidpointRounding.AwayFromZero);
        if (q == 1L << 31) { q /= 2; exponent++; }
        if (exponent < -31) return (0, 0); // too small to matter: every accumulator maps to 0
        return ((int)q, exponent);
    }

    /// <summary>round(a·b / 2^31), saturating the one overflow (a = b = int.MinValue).</summary>
    public static int SaturatingRoundingDoublingHighMul(int a, int b)
    {
        if (a == int.MinValue && b == int.MinValue) return int.MaxValue;
        long product = (long)a * b;
        long nudge = product >= 0 ? 1L << 30 : 1 - (1L << 30);
        return (int)((product + nudge) / (1L << 31));
    }

    /// <summary>x / 2^exponent rounded to nearest, ties away from zero.</summary>
    public static int RoundingDivideByPowerOfTwo(int x, int exponent)
    {
        if (exponent == 0) return x;
        int mask = (1 << exponent) - 1;
        int remainder = x & mask;
        int threshold = (mask >> 1) + (x < 0 ? 1 : 0);
        return (x >> exponent) + (remainder > threshold ? 1 : 0);
    }

    /// <summary>x · M for the (multiplier, shift) of <see cref="Quantize"/>: left shift first when shift &gt; 0.</summary>
    public static int Multiply(int x, int multiplier, int shift)
    {
        int left = Math.Max(shift, 0), right = Math.Max(-shift, 0);
        long shifted = (long)x << left;
        int input = (int)Math.Clamp(shifted, int.MinValue, int.MaxValue);
        return RoundingDivideByPowerOfTwo(SaturatingRoundingDoublingHighMul(input, multiplier), right);
    }
}
