namespace ModelGen.Compiler.Training;

/// <summary>The learning-rate schedules <see cref="TrainingOptions.Schedule"/> names.</summary>
public enum ScheduleKind { Constant, Step, Cosine }

/// <summary>
/// The learning rate at each optimizer step. Step: η·γ^⌊epoch / N⌋ (torch's StepLR). Cosine: a linear warm-up over
/// the first <see cref="WarmupEpochs"/> epochs (from η/steps to η, per step), then η·½(1 + cos(π·t)) with t going
/// from 0 to 1 over the remaining steps (torch's CosineAnnealingLR with η_min 0, per step instead of per epoch).
/// The cosine is a series in double written here: Math.Cos is the platform's libm, whose last bit varies.
/// </summary>
public sealed record LearningRateSchedule(ScheduleKind Kind = ScheduleKind.Constant, int StepEpochs = 10, double Gamma = 0.1, int WarmupEpochs = 0)
{
    /// <summary>The rate for step <paramref name="step"/> (0-based) of <paramref name="stepsPerEpoch"/> × <paramref name="epochs"/>.</summary>
    public double Rate(double baseRate, int step, int stepsPerEpoch, int epochs)
    {
        int epoch = step / Math.Max(1, stepsPerEpoch);
        int warmup = Math.Min(WarmupEpochs, epochs) * stepsPerEpoch;
        if (step < warmup) return baseRate * (step + 1) / warmup;
        switch (Kind)
        {
            case ScheduleKind.Step:
                double rate = baseRate;
                for (int e = StepEpochs; e <= epoch && StepEpochs > 0; e += StepEpochs) rate *= Gamma;
                return rate;
            case ScheduleKind.Cosine:
                int total = epochs * stepsPerEpoch - warmup;
                double t = total <= 1 ? 0 : (double)(step - warmup) / (total - 1);
                return baseRate * 0.5 * (1 + Cosine(Math.PI * Math.Min(1, t)));
            default:
                return baseRate;
        }
    }

    /// <summary>cos x for x in [0, π]: cos x = −cos(π − x) folds it into [0, π/2], where the Taylor series to x²⁰ is exact to double.</summary>
    internal static double Cosine(double x)
    {
        double sign = 1;
        if (x > Math.PI / 2) { x = Math.PI - x; sign = -1; }
        double x2 = x * x, term = 1, sum = 1;
        for (int k = 1; k <= 10; k++)
        {
            term *= -x2 / ((2 * k - 1) * (2 * k));
            sum += term;
        }
        return sign * sum;
    }
}
