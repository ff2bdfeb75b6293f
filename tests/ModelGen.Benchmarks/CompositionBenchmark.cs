using ModelGen.Compiler;
using static PruneBenchmark;

/// <summary>
/// Issue 24's figures: Deep Compression's recipe (pruned, shared, fine-tuned) on LeNet-300-100 and LeNet-5, sharing
/// alone, and low rank, each compiled as a build would and run beside our dense float32 model in prune's table.
/// `compose [name…]` runs the recipes whose names contain one of the names.
/// </summary>
public static class CompositionBenchmark
{
    static readonly Recipe[] Recipes =
    [
        new("lenet300 pruned 92% + shared 4-bit + fine-tuning", "lenet300.onnx", o => FineTuned(o with { Pruning = 0.92, WeightSharing = 4 }, 12, 1e-3f)),
        new("lenet300 pruned 95% + shared 4-bit + fine-tuning", "lenet300.onnx", o => FineTuned(o with { Pruning = 0.95, WeightSharing = 4 }, 12, 1e-3f)),
        new("lenet5 pruned 92% + shared 4-bit + fine-tuning", "lenet5.onnx", o => FineTuned(o with { Pruning = 0.92, WeightSharing = 4 }, 6, 1e-3f)),
        new("lenet5 pruned 95% + shared 4-bit + fine-tuning", "lenet5.onnx", o => FineTuned(o with { Pruning = 0.95, WeightSharing = 4 }, 6, 1e-3f)),
        new("lenet5 shared 4-bit + fine-tuning", "lenet5.onnx", o => FineTuned(o with { WeightSharing = 4 }, 4, 1e-4f)),
        new("lenet300 low rank 0.9 + fine-tuning", "lenet300.onnx", o => FineTuned(o with { LowRank = "0.9" }, 8, 1e-4f)), // as LowRankFineTuneTests: 1e-3 overshoots (94.75%)
    ];

    public static void Run(string[] args) => PruneBenchmark.Run(args, Recipes);
}
