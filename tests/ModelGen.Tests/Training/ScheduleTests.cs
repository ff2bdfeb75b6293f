using ModelGen.Compiler.Training;
using Xunit;

namespace ModelGen.Tests.Training;

public class ScheduleTests
{
    [Fact]
    public void ConstantKeepsTheRate()
    {
        var schedule = new LearningRateSchedule();
        Assert.All(Enumerable.Range(0, 50), s => Assert.Equal(0.01, schedule.Rate(0.01, s, 10, 5)));
    }

    [Fact]
    public void StepMultipliesByGammaEveryNEpochs()
    {
        var schedule = new LearningRateSchedule(ScheduleKind.Step, StepEpochs: 2, Gamma: 0.5);
        // 10 steps an epoch: epochs 0–1 at η, 2–3 at η/2, 4 at η/4 (torch's StepLR, epochs from 0).
        Assert.Equal(0.1, schedule.Rate(0.1, 19, 10, 5));
        Assert.Equal(0.05, schedule.Rate(0.1, 20, 10, 5));
        Assert.Equal(0.05, schedule.Rate(0.1, 39, 10, 5));
        Assert.Equal(0.025, schedule.Rate(0.1, 40, 10, 5));
    }

    [Fact]
    public void CosineWithWarmUp()
    {
        var schedule = new LearningRateSchedule(ScheduleKind.Cosine, WarmupEpochs: 1);
        // Warm-up: 10 steps from η/10 to η; then ½η(1 + cos(π t)) over the 30 steps left, t = 0 … 1.
        Assert.Equal(0.1, schedule.Rate(1, 0, 10, 4), 15);
        Assert.Equal(1.0, schedule.Rate(1, 9, 10, 4), 15);
        for (int s = 10; s < 40; s++)
            Assert.Equal(0.5 * (1 + Math.Cos(Math.PI * (s - 10) / 29.0)), schedule.Rate(1, s, 10, 4), 14);
        Assert.Equal(0, schedule.Rate(1, 39, 10, 4), 15);
    }

    [Fact]
    public void OurCosineMatchesTheLibrary()
    {
        for (int i = 0; i <= 1000; i++)
        {
            double x = Math.PI * i / 1000;
            Assert.True(Math.Abs(Math.Cos(x) - LearningRateSchedule.Cosine(x)) < 1e-14, $"cos {x}");
        }
    }
}
