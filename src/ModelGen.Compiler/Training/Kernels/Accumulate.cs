using System.Numerics;

namespace ModelGen.Compiler.Training.Kernels;

/// <summary>Element-wise gradient accumulation: each element is one addition, so vectors change the speed, not the bits.</summary>
public static class Accumulate
{
    /// <summary>sum[i] += add[i].</summary>
    public static void Add<T>(ReadOnlySpan<T> add, Span<T> sum) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        for (; i <= add.Length - Vector<T>.Count; i += Vector<T>.Count)
            (new Vector<T>(sum[i..]) + new Vector<T>(add[i..])).CopyTo(sum[i..]);
        for (; i < add.Length; i++) sum[i] += add[i];
    }
}
