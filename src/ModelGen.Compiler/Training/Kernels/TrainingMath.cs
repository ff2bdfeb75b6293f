using System.Numerics;
using System.Runtime.CompilerServices;

namespace ModelGen.Compiler.Training.Kernels;

/// <summary>
/// exp, log and the functions made of them, for the training rules and losses. In float32 they are our own
/// (range reduction and a polynomial in basic IEEE operations and explicit FMAs), because MathF.Exp calls the
/// platform's C library, whose last bit differs between Windows, glibc and ARM64, and trained weights must not.
/// In double (the gradient checks) they are the BCL's: there only accuracy matters.
/// </summary>
public static class TrainingMath
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Exp<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? T.CreateTruncating(ExpF(float.CreateTruncating(x))) : T.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Log<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? T.CreateTruncating(LogF(float.CreateTruncating(x))) : T.Log(x);

    /// <summary>1 / (1 + e^-x), without overflow for large |x|.</summary>
    public static T Sigmoid<T>(T x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x >= T.Zero) return T.One / (T.One + Exp(-x));
        var e = Exp(x);
        return e / (T.One + e);
    }

    /// <summary>tanh x = 2·sigmoid(2x) − 1, and its odd symmetry kept exactly.</summary>
    public static T Tanh<T>(T x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) != typeof(float)) return T.Tanh(x);
        T a = T.Abs(x);
        // Near zero 2·sigmoid(2x) − 1 cancels; the odd series is exact to float32 there.
        T t = a < T.CreateTruncating(0.0625f)
            ? a * (T.One - a * a * (T.One / T.CreateTruncating(3f) - a * a * T.CreateTruncating(2f / 15f)))
            : T.One - T.CreateTruncating(2f) / (Exp(a + a) + T.One);
        return x < T.Zero ? -t : t;
    }

    /// <summary>e^x in float32 (Cephes expf's polynomial): relative error below 2 ulp, 0 below −103.9, ∞ above 88.72.</summary>
    public static float ExpF(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x > 88.72283f) return float.PositiveInfinity;
        if (x < -103.97208f) return 0f;
        float n = MathF.Round(x * 1.44269504088896341f);
        float r = MathF.FusedMultiplyAdd(n, -0.693359375f, x);
        r = MathF.FusedMultiplyAdd(n, 2.12194440e-4f, r);
        float p = 1.9875691500E-4f;
        p = MathF.FusedMultiplyAdd(p, r, 1.3981999507E-3f);
        p = MathF.FusedMultiplyAdd(p, r, 8.3334519073E-3f);
        p = MathF.FusedMultiplyAdd(p, r, 4.1665795894E-2f);
        p = MathF.FusedMultiplyAdd(p, r, 1.6666665459E-1f);
        p = MathF.FusedMultiplyAdd(p, r, 5.0000001201E-1f);
        p = MathF.FusedMultiplyAdd(p, r * r, r) + 1f;
        int e = (int)n;
        // 2^e in two steps so that results down to the subnormals are reached without an overflowing factor.
        if (e < -126) return p * BitConverter.Int32BitsToSingle((e + 127 + 64) << 23) * 5.42101086e-20f; // 2^-64
        if (e > 127) return p * 2f * BitConverter.Int32BitsToSingle((e - 1 + 127) << 23);
        return p * BitConverter.Int32BitsToSingle((e + 127) << 23);
    }

    /// <summary>ln x in float32 (Cephes logf's polynomial): −∞ at 0, NaN below, exact 0 at 1.</summary>
    public static float LogF(float x)
    {
        if (float.IsNaN(x) || x < 0f) return float.NaN;
        if (x == 0f) return float.NegativeInfinity;
        if (float.IsPositiveInfinity(x)) return x;
        int bits = BitConverter.SingleToInt32Bits(x);
        int e = 0;
        if (bits < 0x00800000) { x *= 16777216f; e = -24; bits = BitConverter.SingleToInt32Bits(x); } // subnormal
        e += (bits >> 23) - 126;
        float m = BitConverter.Int32BitsToSingle((bits & 0x007FFFFF) | 0x3F000000); // [0.5, 1)
        if (m < 0.707106781186547524f) { e--; m = m + m - 1f; }
        else m -= 1f;
        float z = m * m;
        float p = 7.0376836292E-2f;
        p = MathF.FusedMultiplyAdd(p, m, -1.1514610310E-1f);
        p = MathF.FusedMultiplyAdd(p, m, 1.1676998740E-1f);
        p = MathF.FusedMultiplyAdd(p, m, -1.2420140846E-1f);
        p = MathF.FusedMultiplyAdd(p, m, 1.4249322787E-1f);
        p = MathF.FusedMultiplyAdd(p, m, -1.6668057665E-1f);
        p = MathF.FusedMultiplyAdd(p, m, 2.0000714765E-1f);
        p = MathF.FusedMultiplyAdd(p, m, -2.4999993993E-1f);
        p = MathF.FusedMultiplyAdd(p, m, 3.3333331174E-1f);
        float y = p * m * z;
        float fe = e;
        y = MathF.FusedMultiplyAdd(fe, -2.12194440e-4f, y);
        y = MathF.FusedMultiplyAdd(z, -0.5f, y);
        return MathF.FusedMultiplyAdd(fe, 0.693359375f, m + y);
    }
}
