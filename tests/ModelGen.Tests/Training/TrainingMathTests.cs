using ModelGen.Compiler.Training.Kernels;
using Xunit;

namespace ModelGen.Tests.Training;

public class TrainingMathTests
{
    /// <summary>Against the double-precision BCL over the whole useful range, including the subnormal results.</summary>
    [Fact]
    public void ExpIsWithinTwoUlpOfTheTrueValue()
    {
        int worst = 0;
        for (float x = -103f; x < 88.7f; x += 0.0137f)
        {
            double exact = Math.Exp(x);
            float ours = TrainingMath.ExpF(x);
            if (exact < 1.2e-38) { Assert.True(Math.Abs(ours - exact) <= 1.5e-45 * 2, $"exp({x})"); continue; }
            int ulps = Math.Abs(BitConverter.SingleToInt32Bits(ours) - BitConverter.SingleToInt32Bits((float)exact));
            worst = Math.Max(worst, ulps);
        }
        Assert.InRange(worst, 0, 2);
        Assert.Equal(1f, TrainingMath.ExpF(0f));
        Assert.Equal(float.PositiveInfinity, TrainingMath.ExpF(89f));
        Assert.Equal(0f, TrainingMath.ExpF(-104f));
    }

    [Fact]
    public void LogIsWithinTwoUlpOfTheTrueValue()
    {
        int worst = 0;
        foreach (float x in Enumerable.Range(0, 200_000).Select(i => MathF.Pow(2f, -140f + i * 0.0013f)))
        {
            float exact = (float)Math.Log(x);
            int ulps = Math.Abs(BitConverter.SingleToInt32Bits(TrainingMath.LogF(x)) - BitConverter.SingleToInt32Bits(exact));
            if (Math.Abs(exact) > 1e-6) worst = Math.Max(worst, ulps);
        }
        Assert.InRange(worst, 0, 2);
        Assert.Equal(0f, TrainingMath.LogF(1f));
        Assert.Equal(float.NegativeInfinity, TrainingMath.LogF(0f));
        Assert.True(float.IsNaN(TrainingMath.LogF(-1f)));
    }

    [Fact]
    public void TanhAndSigmoidMatchTheBcl()
    {
        for (float x = -12f; x < 12f; x += 0.00731f)
        {
            Assert.True(Math.Abs(TrainingMath.Tanh(x) - Math.Tanh(x)) <= 2e-7, $"tanh({x})");
            Assert.True(Math.Abs(TrainingMath.Sigmoid(x) - 1 / (1 + Math.Exp(-x))) <= 2e-7 * Math.Max(1e-3, 1 / (1 + Math.Exp(-x))) + 1e-9, $"sigmoid({x})");
        }
    }
}
