namespace ModelGen.Compiler.Operators;

/// <summary>Numpy-style multidirectional broadcasting, as ONNX defines it.</summary>
public static class Broadcast
{
    public static int[]? Shape(int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1) return null;
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Strides (in elements) to read <paramref name="shape"/> as if it had <paramref name="outShape"/>: 0 on broadcast axes.</summary>
    public static long[] Strides(int[] shape, int[] outShape)
    {
        int rank = outShape.Length;
        var strides = new long[rank];
        long stride = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            int j = i - (rank - shape.Length);
            int d = j >= 0 ? shape[j] : 1;
            strides[i] = d == 1 ? 0 : stride;
            stride *= d;
        }
        return strides;
    }

    /// <summary>Offset into a broadcast operand of the flat output index.</summary>
    public static long Offset(long flat, int[] outShape, long[] strides)
    {
        long offset = 0;
        for (int i = outShape.Length - 1; i >= 0; i--)
        {
            offset += flat % outShape[i] * strides[i];
            flat /= outShape[i];
        }
        return offset;
    }
}
