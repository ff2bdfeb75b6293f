using ModelGen.Compiler.Compress;

namespace ModelGen.Tests;

/// <summary>The integer arithmetic int8 kernels will share, and the calibration range choices, against known values.</summary>
public sealed class QuantizationMathTests
{
    [Fact]
    public void QuantParamsHoldZeroExactlyAndRoundTrip()
    {
        var q = QuantParams.ForRange(-1f, 3f);
        Assert.Equal(4f / 255f, q.Scale, 6);
        Assert.Equal(64, q.ZeroPoint); // round(1 / (4/255)) = round(63.75)
        Assert.Equal(0f, q.Dequantize(q.Quantize(0f)));
        Assert.Equal(255, q.Quantize(100f));
        Assert.Equal(0, q.Quantize(-100f));
        // A range not holding 0 is widened to it (ReLU outputs: zero point 0).
        Assert.Equal(0, QuantParams.ForRange(0.5f, 2f).ZeroPoint);
        Assert.Equal(new QuantParams(1f, 0), QuantParams.ForRange(0f, 0f));
    }

    [Fact]
    public void Uint8AddsAreTheRealSumQuantized()
    {
        // Known values: scales 0.5 and 0.25 over an output scale of 1 are exact multipliers. a = 0.5·(20 − 10) = 5,
        // b = 0.25·(8 − 0) = 2: 7 in the output's units, plus its zero point 5.
        var exact = Int8Add.For(new QuantParams(0.5f, 10), new QuantParams(0.25f, 0), new QuantParams(1f, 5), null)!;
        Assert.Equal(12, exact.Apply(20, 8));
        Assert.Equal(191, exact.Apply(255, 255)); // 0.5·245 + 0.25·255 = 186.25
        Assert.Equal(3, exact.Apply(6, 0)); // −2 + 5
        Assert.Equal(6, exact.Apply(10, 3)); // 0.75 rounds to 1
        Assert.Equal(6, exact.Apply(11, 0)); // ties round up: 0.5 to 1
        Assert.Equal(5, exact.Apply(9, 0)); // and −0.5 to 0
        Assert.Equal(255, Int8Add.For(new QuantParams(2f, 0), new QuantParams(2f, 0), new QuantParams(1f, 0), null)!.Apply(100, 100)); // 400 saturates
        // ReLU's clamp is the output's zero point; Clip's bounds are quantized.
        Assert.Equal(5, Int8Add.For(new QuantParams(0.5f, 10), new QuantParams(0.25f, 0), new QuantParams(1f, 5), "Relu")!.Apply(0, 0));
        Assert.Equal(11, Int8Add.For(new QuantParams(0.5f, 10), new QuantParams(0.25f, 0), new QuantParams(1f, 5), "Clip:0:6")!.Apply(40, 40));
        // Arbitrary scales: against the real sum in double, rounded half up. Off by one only next to a tie.
        var random = new Random(7);
        for (int t = 0; t < 200; t++)
        {
            // An Add's output range is about its inputs' (here 0.5 to 2.5 times the larger input scale): the multipliers'
            // rounding (2^-21 of the larger, over up to 255 steps of each input) moves a result by 2.4e-4 of a step at most.
            var (a, b) = (new QuantParams((float)(0.001 + random.NextDouble()), random.Next(256)), new QuantParams((float)(0.001 + random.NextDouble()), random.Next(256)));
            var y = new QuantParams((float)((0.5 + 2 * random.NextDouble()) * Math.Max(a.Scale, b.Scale)), random.Next(256));
            var add = Int8Add.For(a, b, y, null)!;
            Assert.InRange(add.MultiplierA, 0, 1 << 20);
            Assert.InRange(add.MultiplierB, 0, 1 << 20);
            for (int i = 0; i < 50; i++)
            {
                byte qa = (byte)random.Next(256), qb = (byte)random.Next(256);
                double real = ((double)a.Scale * (qa - a.ZeroPoint) + (double)b.Scale * (qb - b.ZeroPoint)) / y.Scale + y.ZeroPoint;
                int expected = (int)Math.Clamp(Math.Floor(real + 0.5), 0, 255);
                double fromTie = Math.Abs(real - Math.Floor(real) - 0.5);
                if (fromTie > 1e-3) Assert.Equal(expected, add.Apply(qa, qb));
                else Assert.InRange(add.Apply(qa, qb), expected - 1, expected);
            }
        }
        // An input 2^20 times the output's scale has no shift that keeps the multipliers in 2^20: no uint8 form.
        Assert.Null(Int8Add.For(new QuantParams(1f, 0), new QuantParams(1f, 0), new QuantParams(1f / (1 << 21), 0), null));
    }

    [Theory]
    [InlineData(0.5, 1 << 30, 0)]
    [InlineData(0.25, 1 << 30, -1)]
    [InlineData(1.0, 1 << 30, 1)]
    [InlineData(0.75, 1610612736, 0)]
    public void MultipliersAreQ31WithAShift(double real, int multiplier, int shift) =>
        Assert.Equal((multiplier, shift), FixedPoint.Quantize(real));

    [Fact]
    public void FixedPointMultiplyRoundsToNearestLikeTheRealProduct()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 20000; trial++)
        {
            double real = Math.Exp(rng.NextDouble() * 12 - 10); // 4.5e-5 … 7.4
            int x = rng.Next(-1 << 20, 1 << 20);
            var (m, s) = FixedPoint.Quantize(real);
            int y = FixedPoint.Multiply(x, m, s);
            double exact = x * (m * Math.Pow(2, s - 31));
            // Two roundings (the high multiply, the shift): within one unit of the real product.
            Assert.True(Math.Abs(y - exact) <= 1.0, $"x={x} real={real}: {y} vs {exact}");
        }
        Assert.Equal(int.MaxValue, FixedPoint.SaturatingRoundingDoublingHighMul(int.MinValue, int.MinValue));
        Assert.Equal(3, FixedPoint.RoundingDivideByPowerOfTwo(5, 1)); // 2.5 → 3 (ties away from zero)
        Assert.Equal(-3, FixedPoint.RoundingDivideByPowerOfTwo(-5, 1));
        Assert.Equal(2, FixedPoint.RoundingDivideByPowerOfTwo(9, 2)); // 2.25 → 2
    }

    [Fact]
    public void ChannelScalesInSixteenBitsRoundUpAndAreTheKernelsFloats()
    {
        // Four channels: the largest, a third of it, a tiny one (still a normal float16 ratio) and an all-zero one.
        float[] rowScales = [0.02f, 0.02f / 3, 0.02f / 10000, 0];
        var scales = ChannelScales.For(0.05f, rowScales);
        Assert.NotNull(scales.Ratios);
        Assert.Equal(0.05f * 0.02f, scales.Layer);
        for (int m = 0; m < 4; m++)
        {
            var r = scales.Ratios![m];
            Assert.InRange((float)r, 0f, 1f);
            // The multiplier is the float product the kernel forms from the stored bits: the same float, not a close one.
            Assert.Equal(BitConverter.SingleToInt32Bits((float)r * scales.Layer), BitConverter.SingleToInt32Bits(scales.Multipliers[m]));
            if (rowScales[m] == 0) continue;
            // Rounded up, never down (no weight clips), and by less than one float16 step (11 bits).
            Assert.True(scales.WeightScales[m] >= rowScales[m] * (1 - 1e-6f), $"channel {m}: {scales.WeightScales[m]} < {rowScales[m]}");
            Assert.True(scales.WeightScales[m] <= rowScales[m] * (1 + 1f / 1024), $"channel {m}: {scales.WeightScales[m]} vs {rowScales[m]}");
        }
        // The widening the generated code does, (bits << 13) + (112 << 23), is (float)Half for these positive normal ratios.
        foreach (var r in scales.Ratios!)
            Assert.Equal((float)r, BitConverter.Int32BitsToSingle((BitConverter.HalfToInt16Bits(r) << 13) + 0x38000000));
        // A channel below 2^-14 of the largest would be a float16 subnormal: that layer keeps float32 multipliers.
        var wide = ChannelScales.For(0.05f, [1f, 1e-6f]);
        Assert.Null(wide.Ratios);
        Assert.Equal(0.05f * 1e-6f, wide.Multipliers[1]);
    }

    [Fact]
    public void LargeBiasesAreRoundedToAShiftThatFitsSixteenBits()
    {
        int[] rowSums = [0, 0, 0];
        float[] multipliers = [1e-3f, 1e-3f, 1e-3f];
        // Biases of 100,000, −7 and 33 units of the multiplier: 100,000 needs a shift of 2 (25,000 · 4).
        var folded = AccumulatorBias.Fold([100f, -0.007f, 0.033f], 0, rowSums, multipliers);
        int shift = AccumulatorBias.Shift(folded);
        Assert.Equal(2, shift);
        Assert.Equal([100_000, -8, 32], folded);
        Assert.All(folded, v => Assert.Equal(0, v % (1 << shift)));
        // A bias that would need a shift beyond 2 (here 5: a million units) keeps every bias exact, for int32.
        var large = AccumulatorBias.Fold([1000f, -0.007f], 0, [0, 0], [1e-3f, 1e-3f]);
        Assert.Equal([1_000_000, -7], large);
        Assert.False(AccumulatorBias.Narrow(large));
        Assert.True(AccumulatorBias.Narrow(folded));
        // Small biases need no shift and stay exact, the zero point's share included.
        var exact = AccumulatorBias.Fold([0.5f, -0.25f], 3, [10, -20], [1e-3f, 1e-3f]);
        Assert.Equal([500 - 30, -250 + 60], exact);
        Assert.Equal(0, AccumulatorBias.Shift(exact));
    }

    [Fact]
    public void RequantizationRoundsTheRealProductOnceAndClampsToTheActivation()
    {
        // Output scale 2^-3, zero point 10; a channel multiplier (sx·sw) of 2^-7: each accumulator unit is 1/16 of an output step.
        var output = new QuantParams(0.125f, 10);
        var r = Requantization.For(output, [0.0078125f, 0.004f], "Relu")!;
        Assert.Equal((10, 255), (r.Lo, r.Hi)); // ReLU: nothing below the zero point
        long m = r.Multiplier(0.0078125f);
        Assert.InRange(m, 1L << 30, 1L << 31); // the largest channel keeps 31 bits
        Assert.Equal(12, r.Apply(24, m)); // 1.5 steps: half up, 2
        Assert.Equal(11, r.Apply(23, m)); // 1.4375 → 1
        Assert.Equal(10, r.Apply(-50, m)); // −5 steps: clamped at the ReLU's zero
        Assert.Equal(255, r.Apply(1 << 30, m)); // far beyond: saturates, no wrap-around
        // Against the real product, over many sums and multipliers: within half a step plus the multiplier's rounding.
        var rng = new Random(9);
        var wide = Requantization.For(new QuantParams(0.05f, 128), [3e-4f, 1e-5f, 2e-6f], null)!;
        foreach (float multiplier in new[] { 3e-4f, 1e-5f, 2e-6f })
            for (int i = 0; i < 5000; i++)
            {
                int sum = rng.Next(-1 << 24, 1 << 24);
                double exact = 128 + sum * (double)multiplier / 0.05;
                int q = wide.Apply(sum, wide.Multiplier(multiplier));
                if (exact > 0.5 && exact < 254.5) Assert.True(Math.Abs(q - exact) <= 0.5 + 1e-6 * Math.Abs(exact - 128) + 1e-9, $"sum {sum}, multiplier {multiplier}: {q} vs {exact}");
            }
        // Clip(0, 6) clamps at the quantized bounds; an activation with no uint8 form, or a multiplier of a whole step or more, is no requantization.
        var clip = Requantization.For(new QuantParams(0.05f, 0), [0.001f], "Clip:0:6")!;
        Assert.Equal((0, 120), (clip.Lo, clip.Hi));
        Assert.Null(Requantization.For(output, [0.01f], "Sigmoid"));
        Assert.Null(Requantization.For(output, [0.075f], null)); // 0.6 of a step per unit
    }

    [Fact]
    public void NarrowRequantizationStaysInInt32ForEverySumTheLayerCanReachAndKeepsTenBits()
    {
        // A 3x3 depthwise-like layer: per channel at most 255·Σ|w| + |bias| in the accumulator.
        var output = new QuantParams(0.02f, 7);
        float[] multipliers = [4e-5f, 1.5e-5f, 9e-5f];
        long[] bounds = [255L * 700 + 900, 255L * 1143, 255L * 300 + 40];
        var wide = Requantization.For(output, multipliers, "Relu")!;
        var narrow = Requantization.For(output, multipliers, "Relu", bounds)!;
        Assert.False(wide.Narrow);
        Assert.True(narrow.Narrow);
        Assert.True(narrow.Shift < wide.Shift);
        var rng = new Random(5);
        for (int c = 0; c < multipliers.Length; c++)
        {
            long m = narrow.Multiplier(multipliers[c]);
            Assert.InRange(m, 1L << 10, int.MaxValue); // at least 10 bits
            int offset = checked((1 << (narrow.Shift - 1)) + (output.ZeroPoint << narrow.Shift));
            for (int i = 0; i < 4000; i++)
            {
                int sum = i < 2 ? (int)(i == 0 ? bounds[c] : -bounds[c]) : rng.Next((int)-bounds[c], (int)bounds[c] + 1);
                // What the vector helper computes in 32-bit lanes (vpmulld, vpaddd, vpsrad), checked: no wrap-around.
                int lanes = Math.Clamp(checked(sum * (int)m + offset) >> narrow.Shift, narrow.Lo, narrow.Hi);
                Assert.Equal(narrow.Apply(sum, m), lanes);
                // Within one step of the 31-bit multiplier's result (a relative error under 2^-11 of the product).
                Assert.InRange(narrow.Apply(sum, m) - wide.Apply(sum, wide.Multiplier(multipliers[c])), -1, 1);
            }
        }
        // Sums too large for int32 at any shift that keeps 10 bits: the wide requantization.
        Assert.False(Requantization.For(output, multipliers, "Relu", [1L << 40, 1L << 40, 1L << 40])!.Narrow);
        // A channel whose multiplier is 2^-12 of the largest would keep under 10 bits: the wide one too.
        Assert.False(Requantization.For(output, [4e-5f, 4e-5f / 4096], "Relu", [255L * 1143, 255L * 1143])!.Narrow);
    }

    static ActivationRange Seen(float[] values)
    {
        var r = new ActivationRange();
        r.Observe(values);
        r.Accumulate(values);
        return r;
    }

    [Fact]
    public void RangeMethodsTreatOutliersDifferently()
    {
        // 100,000 values in [0, 1) and one outlier at 100.
        var rng = new Random(3);
        var values = Enumerable.Range(0, 100_000).Select(_ => rng.NextSingle()).Append(100f).ToArray();
        var seen = Seen(values);
        Assert.Equal((values.Min(), 100f), seen.Range(RangeMethod.MinMax));
        var (_, percentileMax) = seen.Range(RangeMethod.Percentile);
        Assert.InRange(percentileMax, 0.9f, 1.2f);
        var (_, mseMax) = seen.Range(RangeMethod.Mse);
        Assert.True(mseMax < 100f, $"MSE keeps the outlier's whole range: {mseMax}");
        // The MSE choice quantizes what was seen better than MinMax does.
        double Error((float Min, float Max) range)
        {
            var q = QuantParams.ForRange(range.Min, range.Max);
            return values.Sum(v => Math.Pow(v - q.Dequantize(q.Quantize(v)), 2));
        }
        Assert.True(Error(seen.Range(RangeMethod.Mse)) < Error(seen.Range(RangeMethod.MinMax)));
    }

    [Fact]
    public void WithoutOutliersEveryMethodKeepsTheRange()
    {
        var values = Enumerable.Range(0, 10_001).Select(i => -2f + 4f * i / 10_000).ToArray();
        var seen = Seen(values);
        foreach (var method in Enum.GetValues<RangeMethod>())
        {
            var (lo, hi) = seen.Range(method);
            Assert.InRange(lo, -2.05f, -1.5f);
            Assert.InRange(hi, 1.5f, 2.05f);
        }
    }
}
