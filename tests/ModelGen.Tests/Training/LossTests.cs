using ModelGen.Compiler.Training;
using Xunit;

namespace ModelGen.Tests.Training;

/// <summary>Each loss's gradient against central finite differences of its own value, in double; values against their formulas.</summary>
public class LossTests
{
    static Tensor<double> Random(int batch, int classes, int seed, double low = -2, double high = 2)
    {
        var random = new Random(seed);
        var t = new Tensor<double>([batch, classes]);
        for (int i = 0; i < t.Count; i++) t.Data[i] = low + (high - low) * random.NextDouble();
        return t;
    }

    /// <summary>Checks every element of <paramref name="output"/>'s gradient; 1e-6 relative (the losses are smooth, h = 1e-6).</summary>
    static void CheckGradient(Tensor<double> output, Func<Tensor<double>, LossValue<double>> loss)
    {
        var analytic = loss(output).Gradient;
        const double h = 1e-6;
        for (int i = 0; i < output.Count; i++)
        {
            double keep = output.Data[i];
            output.Data[i] = keep + h; double up = loss(output).Loss;
            output.Data[i] = keep - h; double down = loss(output).Loss;
            output.Data[i] = keep;
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(analytic.Data[i] - numeric) <= 1e-6 * Math.Max(1, Math.Abs(numeric)),
                $"element {i}: gradient {analytic.Data[i]:R}, finite differences {numeric:R}");
        }
    }

    static readonly long[] Labels = [2, 0, 4];

    [Fact]
    public void CrossEntropyFromLogits()
    {
        var logits = Random(3, 5, 1);
        CheckGradient(logits, y => Losses.CrossEntropy(y, Labels));
        // −ln softmax(z)[label], averaged: written out from the definition.
        double expected = 0;
        for (int b = 0; b < 3; b++)
        {
            var row = logits.Data.Skip(b * 5).Take(5).ToArray();
            expected += -Math.Log(Math.Exp(row[Labels[b]]) / row.Sum(Math.Exp));
        }
        Assert.Equal(expected / 3, Losses.CrossEntropy(logits, Labels).Loss, 12);
    }

    [Fact]
    public void CrossEntropyFromProbabilities()
    {
        var p = Random(3, 5, 2, 0.05, 1);
        CheckGradient(p, y => Losses.CrossEntropy(y, Labels, probabilities: true));
        // Normalized probabilities: the loss is −ln p[label].
        for (int b = 0; b < 3; b++)
        {
            double sum = p.Data.Skip(b * 5).Take(5).Sum();
            for (int c = 0; c < 5; c++) p.Data[b * 5 + c] /= sum;
        }
        double expected = Labels.Select((l, b) => -Math.Log(p.Data[b * 5 + l])).Sum() / 3;
        Assert.Equal(expected, Losses.CrossEntropy(p, Labels, probabilities: true).Loss, 12);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(3.5)]
    public void DistillationIsTemperatureSquaredKl(double temperature)
    {
        var student = Random(3, 7, 3);
        var teacher = Random(3, 7, 4);
        CheckGradient(student, y => Losses.Distillation(y, teacher, temperature));
        double expected = 0;
        for (int b = 0; b < 3; b++)
        {
            var s = student.Data.Skip(b * 7).Take(7).Select(v => Math.Exp(v / temperature)).ToArray();
            var t = teacher.Data.Skip(b * 7).Take(7).Select(v => Math.Exp(v / temperature)).ToArray();
            double ss = s.Sum(), ts = t.Sum();
            for (int c = 0; c < 7; c++) expected += t[c] / ts * Math.Log(t[c] / ts / (s[c] / ss));
        }
        Assert.Equal(expected * temperature * temperature / 3, Losses.Distillation(student, teacher, temperature).Loss, 12);
        // The student equal to the teacher: no loss, no gradient.
        var same = Losses.Distillation(teacher, teacher, temperature);
        Assert.Equal(0, same.Loss, 12);
        Assert.All(same.Gradient.Data, g => Assert.Equal(0, g, 12));
    }

    [Fact]
    public void DistillationFromProbabilities()
    {
        var student = Random(2, 4, 5, 0.05, 1);
        var teacher = Random(2, 4, 6, 0.05, 1);
        CheckGradient(student, y => Losses.Distillation(y, teacher, 2, probabilities: true));
    }

    [Fact]
    public void MeanSquaredError()
    {
        var y = Random(3, 4, 7);
        var t = Random(3, 4, 8);
        CheckGradient(y, o => Losses.MeanSquaredError(o, t));
        Assert.Equal(y.Data.Zip(t.Data, (a, b) => (a - b) * (a - b)).Sum() / 12, Losses.MeanSquaredError(y, t).Loss, 12);
    }

    [Fact]
    public void MixIsTheWeightedSum()
    {
        var y = Random(3, 5, 9);
        var t = Random(3, 5, 10);
        var mix = new LossMix(CrossEntropy: 0.5, Distillation: 0.3, MeanSquaredError: 0.2);
        CheckGradient(y, o => Losses.Mixed(mix, o, Labels, t, 2.0));
        double expected = 0.5 * Losses.CrossEntropy(y, Labels).Loss + 0.3 * Losses.Distillation(y, t, 2.0).Loss + 0.2 * Losses.MeanSquaredError(y, t).Loss;
        Assert.Equal(expected, Losses.Mixed(mix, y, Labels, t, 2.0).Loss, 12);
    }

    [Fact]
    public void Float32AgreesWithDouble()
    {
        var y = Random(4, 10, 11, -8, 8);
        var labels = new long[] { 1, 9, 0, 5 };
        var single = Losses.CrossEntropy(Tensor<float>.From(y.Shape, y.Data.Select(v => (float)v).ToArray()), labels);
        var exact = Losses.CrossEntropy(y, labels);
        Assert.Equal(exact.Loss, single.Loss, 5);
        for (int i = 0; i < y.Count; i++) Assert.Equal(exact.Gradient.Data[i], single.Gradient.Data[i], 6);
    }
}
