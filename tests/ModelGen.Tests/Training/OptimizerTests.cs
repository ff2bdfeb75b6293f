using ModelGen.Compiler.Training;
using Xunit;

namespace ModelGen.Tests.Training;

/// <summary>
/// Two steps of each optimizer on four elements against PyTorch 1.13's torch.optim (the oracle: the numbers were
/// printed by /usr/bin/python3 with torch, θ = [0.5, −1.25, 2, 0], gradients g₁ and g₂ below). Within 2 float32 ulp-ish
/// (1e-6 relative): PyTorch rounds a separate multiply and add where we fuse them.
/// </summary>
public class OptimizerTests
{
    static readonly float[] Start = [0.5f, -1.25f, 2.0f, 0.0f];
    static readonly float[][] Gradients = [[0.1f, -0.2f, 0.3f, 1.5f], [-0.05f, 0.4f, 0.3f, -2.0f]];

    static void Check(Optimizer optimizer, double rate, float[] afterOne, float[] afterTwo)
    {
        var p = new Parameter("w", [4], (float[])Start.Clone());
        for (int step = 0; step < 2; step++)
        {
            optimizer.Step([p], new Dictionary<string, Tensor<float>> { ["w"] = new Tensor<float>([4], (float[])Gradients[step].Clone()) }, rate);
            var expected = step == 0 ? afterOne : afterTwo;
            for (int i = 0; i < 4; i++)
                Assert.True(Math.Abs(p.Values[i] - expected[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])),
                    $"step {step + 1}, element {i}: {p.Values[i]:R}, PyTorch {expected[i]:R}");
        }
    }

    // Hand check of SGD momentum 0.9, η 0.1: b₁ = g₁, θ₁ = θ − 0.1 g₁ (0.5 − 0.01 = 0.49); b₂ = 0.9 g₁ + g₂, θ₂ = θ₁ − 0.1 b₂ (0.49 − 0.1·0.04 = 0.486).
    [Fact]
    public void SgdWithMomentum() => Check(new Sgd(momentum: 0.9), 0.1,
        [0.49000000953674316f, -1.2300000190734863f, 1.9700000286102295f, -0.15000000596046448f],
        [0.4860000014305115f, -1.2519999742507935f, 1.9129999876022339f, -0.08499999344348907f]);

    [Fact]
    public void SgdNesterovWithWeightDecay() => Check(new Sgd(momentum: 0.9, weightDecay: 0.01, nesterov: true), 0.1,
        [0.4800499975681305f, -1.209625005722046f, 1.9392000436782837f, -0.2849999964237213f],
        [0.48013290762901306f, -1.2661142349243164f, 1.852595567703247f, -0.0259584691375494f]);

    // Hand check of Adam's first step: m̂ = g, v̂ = g², so θ₁ = θ − η·g/(|g| + ε) = θ − 0.01·sign(g).
    [Fact]
    public void Adam() => Check(new Adam(), 0.01,
        [0.49000000953674316f, -1.2400000095367432f, 1.9900000095367432f, -0.010000000707805157f],
        [0.4873366355895996f, -1.2436610460281372f, 1.9800000190734863f, -0.008064896799623966f]);

    [Fact]
    public void AdamWithL2WeightDecay() => Check(new Adam(weightDecay: 0.1), 0.01,
        [0.49000000953674316f, -1.2400000095367432f, 1.9900000095367432f, -0.010000000707805157f],
        [0.4833492040634155f, -1.2397119998931885f, 1.9800004959106445f, -0.008062539622187614f]);

    // AdamW: θ shrinks by (1 − ηλ) = 0.999 first: 0.5·0.999 − 0.01 = 0.4895.
    [Fact]
    public void AdamWDecoupledWeightDecay() => Check(new Adam(weightDecay: 0.1, decoupled: true), 0.01,
        [0.4895000159740448f, -1.2387499809265137f, 1.9880000352859497f, -0.010000000707805157f],
        [0.48634713888168335f, -1.2411723136901855f, 1.976012110710144f, -0.00805489718914032f]);
}
