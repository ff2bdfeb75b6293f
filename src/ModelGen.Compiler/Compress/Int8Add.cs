namespace ModelGen.Compiler.Compress;

/// <summary>
/// An Add of two uint8 activations into a uint8 one (a residual connection between int8 layers), in integers
/// only: y = clamp(zy + ⌊((a − za)·Ma + (b − zb)·Mb + 2^(Shift−1)) / 2^Shift⌋, Lo, Hi), where Ma/2^Shift and
/// Mb/2^Shift are sa/sy and sb/sy (the inputs' scales over the output's). One rounding, half up, so the result is
/// the real sum quantized, but for the multipliers' own rounding (2^-21 of the larger). Ma and Mb are at most 2^20
/// and Shift at most 30: every intermediate is an int32 (|a − za| ≤ 255), so a kernel may add in any order.
/// The fused activation is the clamp, as in <see cref="Requantization"/>.
/// </summary>
public sealed record Int8Add(QuantParams A, QuantParams B, QuantParams Output, int MultiplierA, int MultiplierB, int Shift, int Lo, int Hi)
{
    /// <summary>The larger multiplier's bound: (255 · 2^20) · 2 + 2^29 &lt; 2^31.</summary>
    const int MaxMultiplier = 1 << 20;

    /// <summary>
    /// The integer form for inputs quantized as <paramref name="a"/> and <paramref name="b"/> and an output as
    /// <paramref name="output"/>; null when the activation has no uint8 form (only ReLU and Clip have) or an
    /// input's scale is 2^19 times the output's or more (no exact shift of at least 1).
    /// </summary>
    public static Int8Add? For(QuantParams a, QuantParams b, QuantParams output, string? activation)
    {
        if (Requantization.Clamp(output, activation) is not (int lo, int hi)) return null;
        double ra = a.Scale / (double)output.Scale, rb = b.Scale / (double)output.Scale;
        double top = Math.Max(ra, rb);
        if (!(ra > 0) || !(rb > 0) || double.IsInfinity(top)) return null;
        // The largest shift (at most 30) that keeps the larger multiplier within 2^20.
        int shift = 30;
        while (shift > 0 && Math.Round(top * Math.Pow(2, shift), MidpointRounding.AwayFromZero) > MaxMultiplier) shift--;
        if (shift < 1) return null;
        int Multiplier(double r) => (int)Math.Round(r * Math.Pow(2, shift), MidpointRounding.AwayFromZero);
        return new Int8Add(a, b, output, Multiplier(ra), Multiplier(rb), shift, lo, hi);
    }

    /// <summary>The uint8 sum of two uint8 inputs.</summary>
    public byte Apply(byte a, byte b)
    {
        long sum = (long)(a - A.ZeroPoint) * MultiplierA + (long)(b - B.ZeroPoint) * MultiplierB + (1L << (Shift - 1));
        return (byte)Math.Clamp((sum >> Shift) + Output.ZeroPoint, Lo, Hi);
    }

    /// <summary>
    /// The evaluator's Add: its inputs hold the real values of uint8 activations (each the dequantized byte, which
    /// quantizes back to itself); the output is the real value of the uint8 sum.
    /// </summary>
    public float[] Apply(float[] a, float[] b)
    {
        var y = new float[a.Length];
        for (int i = 0; i < y.Length; i++) y[i] = Output.Dequantize(Apply(A.Quantize(a[i]), B.Quantize(b[i])));
        return y;
    }

    /// <summary>
    /// The constant the kernels add to a·Ma + b·Mb (the zero points' share and the rounding): then
    /// y = clamp(⌊(a·Ma + b·Mb + Bias) / 2^Shift⌋ + zy, Lo, Hi), the same integers.
    /// </summary>
    public int Bias => (1 << (Shift - 1)) - A.ZeroPoint * MultiplierA - B.ZeroPoint * MultiplierB;
}
