using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// The emitted vector ln (VectorMath.EmitLog) against MathF.Log, the known values of the special cases, and the scalar
/// path: a Log node over values that cross every case (zero, negatives, NaN, infinity, subnormals, powers of two, the
/// √½ boundary of its reduction, large and small normals), at every SIMD level the generator emits.
/// </summary>
public sealed class VectorMathTests
{
    [Fact]
    public void VectorLogIsWithinTwoUlpOfMathFLogAndKeepsItsSpecialValues()
    {
        var values = new List<float> { 0f, -0f, -1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e-40f, 1.4e-45f, 1.17549435e-38f,
            1f, 2f, 0.5f, 0.70710677f, 0.70710683f, 1.4142135f, 3e38f, 1e-30f, 123.456f, 0.999999f, 1.000001f };
        var random = new Random(3);
        while (values.Count < 203) values.Add(MathF.Exp((random.NextSingle() - 0.5f) * 160f)); // ln from −80 to 80, 203: a tail too
        int n = values.Count;
        var model = new OnnxBuilder(13, "vectorlog").Input("x", 1, n).Node("Log", ["x"], ["y"]).Output("y");
        var options = new CompileOptions { ModelPath = model.Save("vectorlog.onnx"), Namespace = "Vector.Log" };
        var artifacts = new[] { "auto", "vector128", "none" }.Select(simd => ModelCompiler.Compile(options with { ClassName = "Log_" + simd.Replace("none", "scalar"), Simd = simd })).ToArray();
        var models = GeneratedModels.Build(artifacts);
        foreach (var artifact in artifacts)
        {
            var y = new float[n];
            models.Run(artifact, [values.ToArray()], [y]);
            for (int i = 0; i < n; i++)
            {
                float expected = MathF.Log(values[i]);
                if (float.IsNaN(expected) || float.IsInfinity(expected))
                    Assert.True(expected.Equals(y[i]), $"{artifact.ClassName}: ln({values[i]:R}) = {y[i]:R}, expected {expected:R}");
                else
                    Assert.True(Ulps(expected, y[i]) <= 2, $"{artifact.ClassName}: ln({values[i]:R}) = {y[i]:R}, expected {expected:R} ({Ulps(expected, y[i])} ulp)");
            }
        }
    }

    static long Ulps(float a, float b)
    {
        int ia = BitConverter.SingleToInt32Bits(a), ib = BitConverter.SingleToInt32Bits(b);
        if (ia < 0) ia = int.MinValue - ia;
        if (ib < 0) ib = int.MinValue - ib;
        return Math.Abs((long)ia - ib);
    }
}
