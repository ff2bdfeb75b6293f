using System.Globalization;
using ModelGen.Compiler;
using ModelGen.Tests.Distillation;
using ModelGen.Tests.Support;
using static PruneBenchmark;

/// <summary>
/// Issue 25's second figure: an MLP 784-100-10 (a student of another architecture) from LeNet-5 on the 8,000 training
/// digits: trained on the labels alone, on the labels and the teacher, and on the teacher alone (label-free), each
/// compiled as a build would and timed beside the teacher's generated code (prune's table: "dense float32" is the teacher).
/// `distill [name…] [--epochs N] [--seed S] [--temperature T] [--label-weight A]` runs the recipes whose names contain one of the names.
/// </summary>
public static class DistillBenchmark
{
    public static void Run(string[] args)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        var names = new List<string> { args[0] };
        for (int i = 1; i < args.Length; i++)
            if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length) values[args[i]] = double.Parse(args[++i], CultureInfo.InvariantCulture);
            else names.Add(args[i]);
        int epochs = (int)values.GetValueOrDefault("--epochs", 20), seed = (int)values.GetValueOrDefault("--seed", 0);
        double? temperature = values.TryGetValue("--temperature", out double t) ? t : null;
        double? labelWeight = values.TryGetValue("--label-weight", out double a) ? a : null;
        string mlp = Students.Mlp().Save("mlp.onnx");
        CompileOptions Distilled(CompileOptions o, bool labels, double? weight) => o with
        {
            Student = mlp, Epochs = epochs, Seed = seed, TrainingDataPath = TestData.Mnist("train-images-u8.npy"),
            TrainingLabelsPath = labels ? TestData.Mnist("train-labels.npy") : null, DistillationLabelWeight = weight, DistillationTemperature = temperature,
        };
        Recipe[] recipes =
        [
            new("lenet5 -> MLP 784-100-10, labels alone", "lenet5.onnx", o => Distilled(o, true, 1)),
            new("lenet5 -> MLP 784-100-10, labels + teacher", "lenet5.onnx", o => Distilled(o, true, labelWeight)),
            new("lenet5 -> MLP 784-100-10, label-free", "lenet5.onnx", o => Distilled(o, false, null)),
        ];
        Console.WriteLine(FormattableString.Invariant($"{epochs} epochs at most (early stopping after 3 without a better held-out loss), Adam 1e-3, batch 64, seed {seed}, the MLP's own initial weights; temperature {temperature ?? ModelGen.Compiler.Compress.DistillationSettings.DefaultTemperature}, label weight {labelWeight ?? ModelGen.Compiler.Compress.DistillationSettings.DefaultLabelWeight}"));
        PruneBenchmark.Run([.. names], recipes);
    }
}
