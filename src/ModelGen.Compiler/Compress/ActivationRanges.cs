namespace ModelGen.Compiler.Compress;

/// <summary>How an activation's quantization range is chosen from what calibration saw.</summary>
public enum RangeMethod
{
    /// <summary>The smallest and largest value seen.</summary>
    MinMax,
    /// <summary>The 0.01% and 99.99% percentiles: rare outliers are clipped.</summary>
    Percentile,
    /// <summary>The clipping that minimises the mean squared quantization error over what was seen.</summary>
    Mse,
}

/// <summary>
/// What calibration saw of one activation tensor: its extremes and a histogram (2,048 bins over them),
/// from which each <see cref="RangeMethod"/> picks the range to quantize. Values are added in two
/// passes: <see cref="Observe"/> for the extremes, then <see cref="Accumulate"/> for the histogram.
/// </summary>
public sealed class ActivationRange
{
    public const int Bins = 2048;
    public float Min { get; private set; } = float.PositiveInfinity;
    public float Max { get; private set; } = float.NegativeInfinity;
    readonly long[] _histogram = new long[Bins];
    long _count;

    /// <summary>First pass: the extremes.</summary>
    public void Observe(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
        {
            if (float.IsNaN(v)) continue;
            if (v < Min) Min = v;
            if (v > Max) Max = v;
        }
    }

    /// <summary>Second pass: the histogram over [Min, Max].</summary>
    public void Accumulate(ReadOnlySpan<float> values)
    {
        if (!(Max > Min)) { _count += values.Length; return; }
        double width = ((double)Max - Min) / Bins;
        foreach (float v in values)
        {
            if (float.IsNaN(v)) continue;
            int bin = (int)Math.Clamp((v - Min) / width, 0, Bins - 1);
            _histogram[bin]++;
            _count++;
        }
    }

    double BinCenter(int i) => Min + (i + 0.5) * (((double)Max - Min) / Bins);

    /// <summary>The range to quantize by <paramref name="method"/> (always holding 0, as QuantParams needs).</summary>
    public (float Min, float Max) Range(RangeMethod method)
    {
        if (!(Max > Min) || _count == 0) return (Math.Min(0, Min is float.PositiveInfinity ? 0 : Min), Math.Max(0, Max is float.NegativeInfinity ? 0 : Max));
        return method switch
        {
            RangeMethod.MinMax => (Min, Max),
            RangeMethod.Percentile => (Quantile(0.0001), Quantile(0.9999)),
            _ => MseRange(),
        };
    }

    /// <summary>The value below which a fraction <paramref name="p"/> of what was seen lies (bin resolution).</summary>
    float Quantile(double p)
    {
        long target = (long)Math.Ceiling(p * _count), seen = 0;
        for (int i = 0; i < Bins; i++)
        {
            seen += _histogram[i];
            if (seen >= Math.Max(1, target)) return (float)(p < 0.5 ? Min + i * (((double)Max - Min) / Bins) : Min + (i + 1) * (((double)Max - Min) / Bins));
        }
        return Max;
    }

    /// <summary>
    /// Candidate ranges shrink the seen one symmetrically about its centre of mass in 128 steps; each is
    /// scored by the squared error of quantizing every histogram bin to 256 levels (clipped values
    /// included), and the lowest wins.
    /// </summary>
    (float Min, float Max) MseRange()
    {
        (float, float) best = (Min, Max);
        double bestError = double.PositiveInfinity;
        for (int step = 0; step < 128; step++)
        {
            double fraction = 1 - step / 128.0 * 0.99;
            float lo = (float)(Min * fraction), hi = (float)(Max * fraction);
            var q = QuantParams.ForRange(lo, hi);
            double error = 0;
            for (int i = 0; i < Bins; i++)
            {
                if (_histogram[i] == 0) continue;
                float x = (float)BinCenter(i);
                double d = x - q.Dequantize(q.Quantize(x));
                error += _histogram[i] * d * d;
            }
            if (error < bestError) { bestError = error; best = (Math.Min(lo, 0), Math.Max(hi, 0)); }
        }
        return best;
    }
}
