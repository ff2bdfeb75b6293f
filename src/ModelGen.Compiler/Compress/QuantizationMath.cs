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
    /// <summary>max |w| / 127 for the row; 0 for an all-zero row.</summary>
    public static float Scale(ReadOnlySpan<float> row)
    {
        float max = 0;
        foreach (float v in row) max = Math.Max(max, Math.Abs(v));
        return max / 127f;
    }

    /// <summary>Writes the row's int8 values for a given scale (at least <see cref="Scale"/>: nothing clips).</summary>
    public static void Quantize(ReadOnlySpan<float> row, Span<sbyte> values, float scale)
    {
        for (int i = 0; i < row.Length; i++) values[i] = (sbyte)Math.Clamp(MathF.Round(row[i] / scale, MidpointRounding.ToEven), -127, 127);
    }
}

/// <summary>
/// The one integer per output channel of an int8 layer: its bias in accumulator units (scale sx·sw, the
/// multiplier) with the input zero point's share taken out, round(b / multiplier) − zx·Σq. The kernel adds
/// it to the int32 sum, exactly, and converts once: y = (acc + bias)·multiplier (TFLite's int32 bias).
/// Rounding the bias moves y by at most half a multiplier, far below an output step.
/// It is stored in 16 bits with a left shift for the layer (<see cref="Shift"/>): when some bias of the
/// layer is beyond ±32,767, every one is rounded to a multiple of 2^shift, which moves a sum by at most
/// 2^(shift−1) units of its channel's multiplier (the evaluator adds the same rounded integers). That is
/// kept to <see cref="MaxShift"/>, at most 2 units, far below what rounding the weights to int8 moves a sum
/// by; a layer needing more (a channel with tiny weights and a real bias, common after BatchNormalization
/// is folded, has a bias of millions of units) keeps exact int32 biases.
/// </summary>
public static class AccumulatorBias
{
    /// <summary>Bounds every (sum + bias) in int32: sums stay below 2^30 (a row is at most 2^30 / (255·127) weights).</summary>
    const long Limit = 1L << 30;

    /// <summary>The largest shift of int16 biases: a bias then moves by at most 2 units.</summary>
    public const int MaxShift = 2;

    /// <summary>Whether the folded biases are stored as int16 (with <see cref="Shift"/>) rather than int32.</summary>
    public static bool Narrow(int[] folded) => Shift(folded) <= MaxShift;

    /// <summary>Bytes an int8 layer carries per output channel beside its weights: the bias (2 or 4) and the multiplier (2 or 4).</summary>
    public static int PerChannelBytes(int[] folded, Half[]? ratios) => (Narrow(folded) ? 2 : 4) + (ratios is null ? 4 : 2);

    /// <summary>The smallest left shift that brings every folded bias (a multiple of 2^shift) into int16.</summary>
    public static int Shift(int[] folded)
    {
        int shift = 0;
        while (folded.Any(v => Math.Abs((long)v >> shift) > short.MaxValue)) shift++;
        return shift;
    }

    /// <param name="bias">Per channel, one value for all, or null.</param>
    public static int[] Fold(float[]? bias, int zeroPoint, int[] rowSums, float[] multipliers)
    {
        var exact = new long[rowSums.Length];
        for (int m = 0; m < exact.Length; m++)
        {
            double b = bias is null ? 0 : bias.Length == 1 ? bias[0] : bias[m];
            long v = (long)Math.Round(b / multipliers[m], MidpointRounding.ToEven) - (long)zeroPoint * rowSums[m];
            exact[m] = Math.Clamp(v, -Limit, Limit); // beyond: the bias alone saturates the layer; both kernel and evaluator clamp
        }
        // The int16 storage: round to a multiple of 2^shift, the least shift whose rounded values all fit;
        // beyond MaxShift, exact (int32 storage).
        long largest = exact.Length == 0 ? 0 : exact.Max(Math.Abs);
        int shift = 0;
        while (Math.Round((double)largest / (1L << shift), MidpointRounding.AwayFromZero) > short.MaxValue) shift++;
        if (shift > MaxShift) return [.. exact.Select(v => (int)v)];
        return [.. exact.Select(v => (int)((long)Math.Round((double)v / (1L << shift), MidpointRounding.AwayFromZero) << shift))];
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

/// <summary>
/// The per-output-channel scales of an int8 layer, stored in 16 bits where that loses nothing that matters:
/// each channel's weight scale is a float16 ratio r[m] in (0, 1] (rounded up, so no weight clips) of the
/// layer's largest, and its multiplier is (float)r[m]·<see cref="Layer"/> in float32 (Layer = sx·max sw), the
/// one product the kernel repeats, so the evaluator and the kernels use the same float. This halves what a
/// layer carries per channel beside its weights (with an int16 bias: 4 bytes, not 8), which on a small
/// depthwise-separable net is a tenth of the model. A layer with a channel below 2^-14 of the largest
/// (a float16 subnormal, fewer bits) keeps float32 multipliers (<see cref="Ratios"/> null).
/// </summary>
public sealed record ChannelScales(float[] WeightScales, float[] Multipliers, Half[]? Ratios, float Layer)
{
    /// <summary>The smallest normal float16: a smaller ratio has fewer than 11 significant bits.</summary>
    const float MinRatio = 1f / 16384;

    /// <param name="rowScales">max |w| / 127 per channel, 0 for an all-zero channel (<see cref="SymmetricInt8.Scale"/>).</param>
    public static ChannelScales For(float inputScale, float[] rowScales)
    {
        int n = rowScales.Length;
        var weightScales = new float[n];
        var multipliers = new float[n];
        float top = n == 0 ? 0 : rowScales.Max();
        if (top > 0 && rowScales.All(s => s == 0 || s / top >= MinRatio))
        {
            float layer = inputScale * top;
            var ratios = new Half[n];
            for (int m = 0; m < n; m++)
            {
                float r = rowScales[m] == 0 ? 1f : rowScales[m] / top;
                var h = (Half)r;
                if ((float)h < r) h = Half.BitIncrement(h);
                ratios[m] = h;
                weightScales[m] = (float)h * top;
                multipliers[m] = (float)h * layer;
            }
            return new ChannelScales(weightScales, multipliers, ratios, layer);
        }
        for (int m = 0; m < n; m++)
        {
            weightScales[m] = rowScales[m] > 0 ? rowScales[m] : 1f;
            multipliers[m] = inputScale * weightScales[m];
        }
        return new ChannelScales(weightScales, multipliers, null, 0);
    }
}

/// <summary>
/// An int8 layer's output written as uint8 for the int8 layers that read it, so no float32 passes between
/// them: q = clamp(zy + ⌊((acc + bias)·M[m] + 2^(Shift−1)) / 2^Shift⌋, Lo, Hi), the channel's multiplier
/// over the output's scale as an integer M[m] and a power-of-two shift (fixed-point, one rounding, half
/// up). M[m] = (long)round(multiplier[m]·<see cref="Scale"/>) with Scale = 2^Shift / sy in float32: the kernel
/// forms the same integer from the same two floats. Shift puts the largest M in [2^30, 2^31), an int32, so
/// every M keeps as many bits as its channel's multiplier has, and |acc + bias|·M stays below 2^62.
/// The fused activation becomes the clamp: ReLU's 0 is the zero point, Clip's bounds are quantized
/// (quantizing is monotone, so clamping the quantized value is quantizing the clipped one).
/// <see cref="Narrow"/>: a smaller shift, chosen when the layer's sums are small enough (a 3x3 depthwise layer, a
/// stem, a pointwise layer with few inputs), that keeps sum·M + 2^(Shift−1) + zy·2^Shift inside int32 for every sum
/// the layer can reach; the vector kernels then compute it with one 32-bit multiply (vpmulld) instead of two
/// 64-bit ones and a blend. The formula, and so every integer, is the same; M keeps at least 10 bits (a relative
/// error under 2^-11, a fraction of an int8 weight's rounding).
/// </summary>
public sealed record Requantization(QuantParams Output, int Shift, float Scale, int Lo, int Hi, bool Narrow = false)
{
    /// <summary>
    /// A fused activation as a clamp of uint8 outputs quantized as <paramref name="output"/>: ReLU's 0 is the zero point,
    /// Clip's bounds (and a chain of them, as one clamp) are quantized (quantizing is monotone). Null for any other
    /// activation (no uint8 form).
    /// </summary>
    public static (int Lo, int Hi)? Clamp(QuantParams output, string? activation)
    {
        if (activation is null) return (0, 255);
        return ModelGen.Artifact.Activations.AsClamp(activation) is var (lo, hi) ? (output.Quantize(lo), output.Quantize(hi)) : null;
    }

    /// <summary>The integer multiplier of a channel whose float32 multiplier (sx·sw) is <paramref name="multiplier"/>.</summary>
    public long Multiplier(float multiplier) => (long)MathF.Round(multiplier * Scale);

    /// <summary>The uint8 output for an int32 sum (bias included) and a channel's <see cref="Multiplier"/>.</summary>
    public byte Apply(int sum, long multiplier) =>
        (byte)Math.Clamp((((long)sum * multiplier + (1L << (Shift - 1))) >> Shift) + Output.ZeroPoint, Lo, Hi);

    /// <summary>
    /// The requantization of a layer with these multipliers and fused activation into <paramref name="output"/>;
    /// null when it cannot be exact or has no uint8 form (an activation other than ReLU or Clip, a multiplier
    /// over the output's scale beyond 2^30 or so small that 2^62 cannot hold its bits).
    /// </summary>
    /// <param name="sumBounds">Per channel, the largest |acc + bias| the layer can reach (null: not known). With a shift
    /// under 32, the vector kernels shift the sums left to 32 first (exact), so the largest bound·2^(32 − shift) must
    /// stay below 2^31; with them a <see cref="Narrow"/> requantization may be chosen.</param>
    public static Requantization? For(QuantParams output, float[] multipliers, string? activation, long[]? sumBounds = null)
    {
        if (Clamp(output, activation) is not (int lo, int hi)) return null;
        double largest = multipliers.Length == 0 ? 0 : multipliers.Max() / (double)output.Scale;
        if (!(largest > 0) || double.IsInfinity(largest) || multipliers.Any(m => !(m > 0))) return null;
        if (sumBounds is not null && (sumBounds.Length != multipliers.Length || sumBounds.Any(b => b < 0))) throw new ArgumentException("one non-negative sum bound per channel", nameof(sumBounds));
        long sumBound = sumBounds is null || sumBounds.Length == 0 ? 1L << 30 : sumBounds.Max();
        int shift = 30 - (int)Math.Floor(Math.Log2(largest));
        // The vector kernels take the high 32 bits of each 64-bit product and shift those: shift ≥ 32 (every channel
        // less than half an output step per accumulator unit, as most int8 layers are). A layer with larger
        // multipliers (a depthwise one with large weights) has its sums shifted left to 32 first, (acc·2^k)·M / 2^(shift+k)
        // being the same number, where every sum so shifted stays an int32. Shift ≤ 62: the bits fit.
        if (shift > 62 || shift < 1 || (shift < 32 && sumBound > (long)int.MaxValue >> (32 - shift))) return null;
        var r = At(output, shift, lo, hi, false);
        if (r is null || multipliers.Any(m => r.Multiplier(m) > int.MaxValue)) return null;
        if (sumBounds is null) return r;
        // Narrow: the largest shift whose every sum·M + 2^(shift−1) + zero·2^shift fits int32, if its multipliers keep 10 bits.
        for (int narrow = Math.Min(shift, 31); narrow >= 1; narrow--)
        {
            if (At(output, narrow, lo, hi, true) is not { } candidate) continue;
            Int128 offset = ((Int128)1 << (narrow - 1)) + ((Int128)output.ZeroPoint << narrow);
            bool fits = true, precise = true;
            for (int c = 0; c < multipliers.Length && fits; c++)
            {
                long m = candidate.Multiplier(multipliers[c]);
                fits = (Int128)sumBounds[c] * m + offset <= int.MaxValue;
                precise &= m >= 1 << 10;
            }
            if (fits) return precise ? candidate : r;
        }
        return r;
    }

    static Requantization? At(QuantParams output, int shift, int lo, int hi, bool narrow)
    {
        float scale = (float)(Math.Pow(2, shift) / output.Scale);
        return float.IsInfinity(scale) ? null : new Requantization(output, shift, scale, lo, hi, narrow);
    }
}
