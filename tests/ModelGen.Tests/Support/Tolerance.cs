namespace ModelGen.Tests.Support;

/// <summary>DESIGN.md §6: float32 within 1e-4 relative, 1e-5 absolute near zero.</summary>
public static class Tolerance
{
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what, double relative = 1e-4, double absolute = 1e-5)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e) && double.IsNaN(a)) continue;
            double err = Math.Abs(e - a);
            Assert.True(err <= absolute + relative * Math.Abs(e), $"{what}[{i}]: {a} vs ONNX Runtime {e} (error {err:g3})");
        }
    }

    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
