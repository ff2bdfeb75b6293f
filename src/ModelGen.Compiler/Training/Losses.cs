using System.Numerics;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training;

/// <summary>A loss over one mini-batch: its mean over the samples, and its gradient for the model's output.</summary>
public sealed record LossValue<T>(double Loss, Tensor<T> Gradient) where T : unmanaged, IFloatingPointIeee754<T>;

/// <summary>
/// The weights of a mixed loss: cross-entropy on the labels, Hinton's distillation (KL divergence to the teacher's
/// temperature-softened outputs, times T²) and mean squared error to the teacher's outputs. Zero leaves a term out.
/// </summary>
public sealed record LossMix(double CrossEntropy = 0, double Distillation = 0, double MeanSquaredError = 0)
{
    public static LossMix Labels { get; } = new(CrossEntropy: 1);
    public static LossMix Distill { get; } = new(Distillation: 1);

    public bool NeedsLabels => CrossEntropy != 0;
    public bool NeedsTeacher => Distillation != 0 || MeanSquaredError != 0;
}

/// <summary>
/// The training losses, over an output [batch, …] whose elements after the batch axis are one sample's
/// scores (the class axis for the classification losses). Each returns the mean over the batch, summed in
/// double in sample order, and dLoss/dOutput.
/// <para>
/// Outputs are logits unless <c>probabilities</c> is set: a model whose last node is a Softmax outputs
/// probabilities p, and the losses then read its logits as ln p (softmax(ln p) = p), so cross-entropy is
/// −ln p[label] and the gradient reaches p through d ln p / dp = 1/p. p is floored at
/// <see cref="ProbabilityFloor"/> so that a zero probability gives a large, finite loss instead of ∞.
/// </para>
/// exp and ln are <see cref="TrainingMath"/>'s (never the platform's libm).
/// </summary>
public static class Losses
{
    public const double ProbabilityFloor = 1e-12;

    /// <summary>Softmax cross-entropy with integer class labels (PyTorch's CrossEntropyLoss, mean reduction).</summary>
    public static LossValue<T> CrossEntropy<T>(Tensor<T> output, ReadOnlySpan<long> labels, bool probabilities = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (batch, classes) = Rows(output);
        if (labels.Length != batch) throw new ArgumentException($"{labels.Length} labels for a batch of {batch}");
        var logits = probabilities ? LogOf(output) : output;
        var gradient = new Tensor<T>(output.Shape);
        T invBatch = T.One / T.CreateChecked(batch);
        double total = 0;
        var softmax = new T[classes];
        for (int b = 0; b < batch; b++)
        {
            long label = labels[b];
            if (label < 0 || label >= classes) throw new ArgumentException($"label {label} of sample {b} is not a class of an output with {classes}");
            var row = logits.Data.AsSpan(b * classes, classes);
            T logSum = Softmax(row, T.One, softmax);
            total += double.CreateChecked(logSum - row[(int)label]);
            var g = gradient.Data.AsSpan(b * classes, classes);
            for (int c = 0; c < classes; c++) g[c] = (softmax[c] - (c == label ? T.One : T.Zero)) * invBatch;
        }
        if (probabilities) ThroughLog(output, gradient);
        return new LossValue<T>(total / batch, gradient);
    }

    /// <summary>
    /// Hinton's distillation loss: T² · KL(softmax(teacher/T) ‖ softmax(output/T)), mean over the batch
    /// (PyTorch's KLDivLoss with reduction 'batchmean', times T²). The T² keeps the gradient's size independent
    /// of the temperature. <paramref name="teacher"/> is the teacher's logits (or probabilities, like the output).
    /// </summary>
    public static LossValue<T> Distillation<T>(Tensor<T> output, Tensor<T> teacher, double temperature, bool probabilities = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), "the temperature is a positive number");
        var (batch, classes) = Rows(output);
        if (teacher.Count != output.Count) throw new ArgumentException("the teacher's output does not have the output's size");
        var logits = probabilities ? LogOf(output) : output;
        var teacherLogits = probabilities ? LogOf(teacher) : teacher;
        var gradient = new Tensor<T>(output.Shape);
        T t = T.CreateChecked(temperature), invT = T.One / t;
        T scale = t / T.CreateChecked(batch); // d/dz of T²·KL is T²·(q − p)/T
        double total = 0;
        T[] p = new T[classes], q = new T[classes];
        for (int b = 0; b < batch; b++)
        {
            var student = logits.Data.AsSpan(b * classes, classes);
            var target = teacherLogits.Data.AsSpan(b * classes, classes);
            T logQSum = Softmax(student, invT, q), logPSum = Softmax(target, invT, p);
            double kl = 0;
            for (int c = 0; c < classes; c++)
            {
                if (p[c] == T.Zero) continue; // 0 · ln 0 = 0
                // ln p − ln q = (t/T − ln Σ_p) − (s/T − ln Σ_q)
                T logRatio = (target[c] * invT - logPSum) - (student[c] * invT - logQSum);
                kl += double.CreateChecked(p[c] * logRatio);
            }
            total += kl;
            var g = gradient.Data.AsSpan(b * classes, classes);
            for (int c = 0; c < classes; c++) g[c] = (q[c] - p[c]) * scale;
        }
        if (probabilities) ThroughLog(output, gradient);
        return new LossValue<T>(total * temperature * temperature / batch, gradient);
    }

    /// <summary>Mean squared error over every element (PyTorch's MSELoss, mean reduction): Σ (y − t)² / (batch · elements).</summary>
    public static LossValue<T> MeanSquaredError<T>(Tensor<T> output, Tensor<T> target) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (target.Count != output.Count) throw new ArgumentException("the target does not have the output's size");
        var gradient = new Tensor<T>(output.Shape);
        T factor = T.CreateChecked(2.0 / output.Count);
        double total = 0;
        for (int i = 0; i < output.Count; i++)
        {
            T d = output.Data[i] - target.Data[i];
            total += double.CreateChecked(d * d);
            gradient.Data[i] = factor * d;
        }
        return new LossValue<T>(total / output.Count, gradient);
    }

    /// <summary>The weighted sum of the losses <paramref name="mix"/> asks for (labels and teacher as each term needs).</summary>
    public static LossValue<T> Mixed<T>(LossMix mix, Tensor<T> output, ReadOnlySpan<long> labels, Tensor<T>? teacher,
        double temperature, bool probabilities = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var gradient = new Tensor<T>(output.Shape);
        double total = 0;
        void Add(double weight, LossValue<T> term)
        {
            total += weight * term.Loss;
            T w = T.CreateChecked(weight);
            for (int i = 0; i < gradient.Count; i++) gradient.Data[i] = Fma.Add(w, term.Gradient.Data[i], gradient.Data[i]);
        }
        if (mix.CrossEntropy != 0) Add(mix.CrossEntropy, CrossEntropy(output, labels, probabilities));
        if (mix.NeedsTeacher && teacher is null) throw new ArgumentException("the loss mix needs the teacher's outputs");
        if (mix.Distillation != 0) Add(mix.Distillation, Distillation(output, teacher!, temperature, probabilities));
        if (mix.MeanSquaredError != 0) Add(mix.MeanSquaredError, MeanSquaredError(output, teacher!));
        return new LossValue<T>(total, gradient);
    }

    /// <summary>Index of the largest score of each sample (the first on ties).</summary>
    public static int ArgMax<T>(ReadOnlySpan<T> scores) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int best = 0;
        for (int c = 1; c < scores.Length; c++) if (scores[c] > scores[best]) best = c;
        return best;
    }

    internal static (int Batch, int Classes) Rows<T>(Tensor<T> output) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (output.Shape.Length == 0 || output.Shape[0] == 0) throw new ArgumentException("the output has no batch axis or no samples");
        int batch = output.Shape[0];
        return (batch, output.Count / batch);
    }

    /// <summary>softmax(scale · row) into <paramref name="result"/>; returns ln Σ exp(scale · row), computed stably from the largest element.</summary>
    static T Softmax<T>(ReadOnlySpan<T> row, T scale, Span<T> result) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T max = row[0] * scale;
        for (int c = 1; c < row.Length; c++) max = T.Max(max, row[c] * scale);
        T sum = T.Zero;
        for (int c = 0; c < row.Length; c++) sum += result[c] = TrainingMath.Exp(row[c] * scale - max);
        T inv = T.One / sum;
        for (int c = 0; c < row.Length; c++) result[c] *= inv;
        return max + TrainingMath.Log(sum);
    }

    static Tensor<T> LogOf<T>(Tensor<T> probabilities) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var logs = new Tensor<T>(probabilities.Shape);
        T floor = T.CreateChecked(ProbabilityFloor);
        for (int i = 0; i < logs.Count; i++) logs.Data[i] = TrainingMath.Log(T.Max(probabilities.Data[i], floor));
        return logs;
    }

    /// <summary>Turns a gradient for ln p into one for p: divided by p (zero where p was floored, as ln's clamp has no slope there).</summary>
    static void ThroughLog<T>(Tensor<T> probabilities, Tensor<T> gradient) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T floor = T.CreateChecked(ProbabilityFloor);
        for (int i = 0; i < gradient.Count; i++)
        {
            T p = probabilities.Data[i];
            gradient.Data[i] = p > floor ? gradient.Data[i] / p : T.Zero;
        }
    }
}
