using System.Security.Cryptography;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Sharing;

/// <summary>
/// Codebooks train to the same bits on every machine, as the weights do (DeterminismTests): the name puts this test in
/// eng/test.sh's runs at each narrower SIMD level. The expected hash is the reproducibility contract, not an oracle of
/// correctness (the codebook gradient checks are); a deliberate change to the training arithmetic, or to the codebook
/// it starts from (4-bit codebooks are rounded to bfloat16), updates it.
/// </summary>
public sealed class SharedDeterminismTests(ITestOutputHelper output)
{
    const string ExpectedSha256 = "ec1ba653015998329164eabbeb83878b325d0e18298e8689e0bb95738a052b83";

    [Fact]
    public void TheTrainedWeightsAreTheSameBitsOnEveryMachineWhenShared()
    {
        string hash = Hash(7);
        output.WriteLine($"SHA-256 {hash} (Vector<float>.Count {System.Numerics.Vector<float>.Count})");
        Assert.Equal(hash, Hash(7));
        Assert.Equal(ExpectedSha256, hash);
    }

    /// <summary>LeNet-5 shared at 4 bits, its codebooks (and biases) fine-tuned one epoch on 320 training digits: the trained values' bytes in order.</summary>
    static string Hash(int seed)
    {
        var graph = ModelCompiler.Import(TestData.Mnist("lenet5.onnx"));
        Compiler.Normalize.Passes.Run(graph);
        WeightSharing.Apply(graph, WeightSharing.Layers(graph), 4);
        var model = TrainableModel.Build(graph);
        foreach (var node in graph.Nodes.Where(n => n.Form is SharedWeightsForm)) model.Share(node.Inputs[1], ((SharedWeightsForm)node.Form).Weights);
        var data = TrainingSet.Load(TestData.Mnist("train-images-u8.npy"), TestData.Mnist("train-labels.npy"),
            [new DataInput(graph.Inputs[0], graph[graph.Inputs[0]].Shape!)], 10, 255f).Take(320);
        Trainer.Fit(model, data, new TrainingOptions { Epochs = 1, BatchSize = 64, Seed = (ulong)seed, HeldOutFraction = 0.2, LearningRate = 1e-3 });
        return Convert.ToHexStringLower(SHA256.HashData([.. model.Trained.SelectMany(p => System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Values.AsSpan()).ToArray())]));
    }
}
