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
