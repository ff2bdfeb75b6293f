using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training;

/// <summary>
/// The training engine's random numbers: xoshiro256** (Blackman and Vigna, 2018) seeded through SplitMix64,
/// written out here because System.Random's seeded sequence is not a documented contract and may change
/// between .NET versions, and trained weights must not. Streams: each (seed, stream) pair is an independent
/// generator, so an epoch's shuffle does not depend on how many numbers earlier epochs drew.
/// </summary>
public sealed class SeededRandom
{
    ulong _s0, _s1, _s2, _s3;

    public SeededRandom(ulong seed, ulong stream = 0)
    {
        // SplitMix64 expands the seed (and the stream, mixed in first) into the four words of state, never all zero.
        ulong x = seed ^ SplitMix64(ref stream);
        _s0 = SplitMix64(ref x); _s1 = SplitMix64(ref x); _s2 = SplitMix64(ref x); _s3 = SplitMix64(ref x);
    }

    /// <summary>A generator with the given state words (the reference implementation's test vectors start from one).</summary>
    internal SeededRandom(ulong s0, ulong s1, ulong s2, ulong s3) => (_s0, _s1, _s2, _s3) = (s0, s1, s2, s3);

    /// <summary>SplitMix64's next output for <paramref name="state"/> (advanced in place).</summary>
    public static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A whole number in [0, <paramref name="bound"/>), unbiased (rejection of the short last interval).</summary>
    public int NextInt(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound));
        ulong b = (ulong)bound, limit = ulong.MaxValue - ulong.MaxValue % b;
        ulong x;
        do x = NextUInt64(); while (x >= limit);
        return (int)(x % b);
    }

    /// <summary>A double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A float in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>A standard normal sample (Marsaglia's polar method: only log and square root, both ours or IEEE-exact).</summary>
    public float NextGaussian()
    {
        while (true)
        {
            float u = NextFloat() * 2 - 1, v = NextFloat() * 2 - 1;
            float s = MathF.FusedMultiplyAdd(u, u, v * v);
            if (s >= 1f || s == 0f) continue;
            return u * MathF.Sqrt(-2f * TrainingMath.LogF(s) / s);
        }
    }

    /// <summary>Fisher–Yates, from the last element down.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
