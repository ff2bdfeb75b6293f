using System.Numerics;
using System.Runtime.CompilerServices;

namespace ModelGen.Compiler.Training.Kernels;

/// <summary>
/// Fused multiply-adds for the training kernels. Every product that is summed goes through one of these,
/// never a separate multiply and add, so a result has the same bits whatever the vector width: a vector FMA
/// rounds each lane once, exactly as the scalar one does (on hardware without FMA .NET computes it in software,
/// still correctly rounded).
/// </summary>
public static class Fma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Add<T>(Vector<T> a, Vector<T> b, Vector<T> c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
            return Vector.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Vector.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
        throw new NotSupportedException(typeof(T).Name);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Add<T>(T a, T b, T c) where T : unmanaged, IFloatingPointIeee754<T> => T.FusedMultiplyAdd(a, b, c);
}
