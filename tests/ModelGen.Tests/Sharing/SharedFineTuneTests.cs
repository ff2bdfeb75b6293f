using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using ModelGen.Tests.Training;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Sharing;

/// <summary>Weight sharing's codebooks fine-tuned by the training engine (issue 24, item 1).</summary>
public class SharedFineTuneTests(ITestOutputHelper output)
{
    /// <summary>
    /// Checks a shared weight's codebook gradient in double: each entry's is the sum of the gradients of the weights with
    /// its code, and agrees with central finite differences of the loss Σ R·y with the codebook entry moved (the weights
    /// following it); a zero code's entry gets none. Returns the entries checked against finite differences.
    /// </summary>
    internal static int CheckCodebookGradient(Graph graph, string weight, SharedWeights shared, int seed = 3)
    {
        var model = TrainableModel.Build(graph);
        var codebook = model.Share(weight, shared);
        var random = new Random(seed);
        var inputs = graph.Inputs.ToDictionary(n => n, n =>
        {
            var t = new Tensor<double>([3, .. graph[n].Shape![1..]]);
            for (int i = 0; i < t.Count; i++) t.Data[i] = random.NextDouble() * 2 - 1;
            return t;
        }, StringComparer.Ordinal);
        var parameters = model.Parameters.ToDictionary(p => p.Name, p => Tensor<double>.From(p.Shape, p.Values), StringComparer.Ordinal);
        var entries = shared.Codebook.Select(v => (double)v).ToArray();
        void SetWeight()
        {
            for (int i = 0; i < shared.Codes.Length; i++) parameters[weight].Data[i] = entries[shared.Codes[i]];
        }
        SetWeight();
        var pass = model.Forward(inputs, parameterValues: parameters);
        var r = graph.Outputs.ToDictionary(o => o, o =>
        {
            var t = new Tensor<double>(pass[o].Shape);
            for (int i = 0; i < t.Count; i++) t.Data[i] = random.NextDouble() * 2 - 1;
            return t;
        }, StringComparer.Ordinal);
        var weightGradients = pass.Backward(r);
        var gradients = model.TrainedGradients(weightGradients);
        Assert.DoesNotContain(weight, gradients.Keys);
        var g = gradients[codebook.Name].Data;

        double Loss()
        {
            SetWeight();
            var p = model.Forward(inputs, parameterValues: parameters);
            return r.Sum(o => Enumerable.Range(0, o.Value.Count).Sum(i => o.Value.Data[i] * p[o.Key].Data[i]));
        }

        int checkedEntries = 0;
        for (int c = 0; c < entries.Length; c++)
        {
            double members = 0;
            for (int i = 0; i < shared.Codes.Length; i++) if (shared.Codes[i] == c) members += weightGradients[weight].Data[i];
            if (shared.ZeroCode && c == 0) { Assert.Equal(0, g[0]); continue; }
            Assert.Equal(members, g[c]);
            if (!shared.Codes.Contains((byte)c)) continue;
            const double h = 1e-5;
            double saved = entries[c];
            entries[c] = saved + h;
            double up = Loss();
            entries[c] = saved - h;
            double down = Loss();
            entries[c] = saved;
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric - g[c]) <= 1e-6 * Math.Max(1, Math.Abs(numeric)), $"entry {c}: engine {g[c]}, finite differences {numeric}");
            checkedEntries++;
        }
        return checkedEntries;
    }

    [Fact]
    public void ACodebookEntrysGradientIsTheSumOfItsWeightsGradients()
    {
        var w1 = OnnxBuilder.Random(48, 5);
        for (int i = 0; i < w1.Length; i += 5) w1[i] = 0; // pruned: code 0 is reserved for them
        var model = new OnnxBuilder().Input("x", 1, 8).Output("y")
            .Initializer("w1", [6, 8], w1).Initializer("b1", [6], OnnxBuilder.Random(6, 6)).Initializer("w2", [3, 6], OnnxBuilder.Random(18, 7))
            .Node("Gemm", ["x", "w1", "b1"], ["h"], ("transB", 1L)).Node("Tanh", ["h"], ["a"])
            .Node("Gemm", ["a", "w2"], ["y"], ("transB", 1L));
        var graph = GradientCheck.Prepare(model);
        string weight = graph.Nodes[0].Inputs[1];
        var shared = WeightSharing.Cluster(graph[weight].Constant!.Floats, 6, 8, 3);
        Assert.True(shared.ZeroCode);
        Assert.InRange(CheckCodebookGradient(graph, weight, shared), 5, 7); // the entries some of the 40 kept weights use
    }

    /// <summary>Accuracy on the 2,000 test digits, each run through the reference evaluator.</summary>
    internal static double EvaluatorAccuracy(Graph graph)
    {
        var images = Compiler.Data.NpyReader.Read(TestData.Mnist("test-images.npy"), 1).Data;
        var labels = Compiler.Data.NpyReader.Read(TestData.Mnist("test-labels.npy"), 1).Data;
        var shape = graph[graph.Inputs[0]].Shape!;
        int correct = 0;
        for (int s = 0; s < 2000; s++)
        {
            var y = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [graph.Inputs[0]] = new(shape, images[(s * 784)..((s + 1) * 784)]) })[graph.Outputs[0]].Floats;
            if (Losses.ArgMax<float>(y) == (int)labels[s]) correct++;
        }
        return correct / 2000.0;
    }

    internal static CompileOptions MnistOptions(string model) => new()
    {
        ModelPath = TestData.Mnist(model), CalibrationUint8Scale = 255,
        TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
    };

    /// <summary>
    /// LeNet-300-100 pruned by half (one-shot) and shared at 3 bits: fine-tuning the codebooks on the 8,000 training
    /// digits recovers accuracy on the 2,000 test digits (the reference evaluator's), the codes stay, the zero code stays 0
    /// and each layer's weight is its trained codebook at its codes.
    /// </summary>
    [Fact]
    public void FineTunedCodebooksRecoverLeNet300sAccuracyAtThreeBits()
    {
        var options = MnistOptions("lenet300.onnx") with { WeightSharing = 3, FineTune = true, Epochs = 3, LearningRate = 1e-4f };
        var plan = CompressionPlan.Parse(options);
        var graph = ModelCompiler.Normalized(options);
        var context = new PassContext(plan, null);
        CompressionPipeline.Run(graph, [new PruningPass(PruningKind.Unstructured, 0.5, refit: false), new WeightSharingPass(3)], context);
        var before = graph.Nodes.Where(n => n.Form is SharedWeightsForm).ToDictionary(n => n.Name, n => ((SharedWeightsForm)n.Form).Weights);
        Assert.Equal(3, before.Count);
        double shared = EvaluatorAccuracy(graph);

        new SharedFineTunePass(plan.FineTune!).Apply(graph, context);
        double tuned = EvaluatorAccuracy(graph);
        output.WriteLine($"LeNet-300-100 pruned 50%, shared at 3 bits: {shared:P2}; codebooks fine-tuned: {tuned:P2} ({context.Trained!.Summary()})");
        foreach (var node in graph.Nodes.Where(n => before.ContainsKey(n.Name)))
        {
            var after = Assert.IsType<SharedWeightsForm>(node.Form).Weights;
            Assert.Equal(before[node.Name].Codes, after.Codes);
            Assert.True(after.ZeroCode);
            Assert.Equal(0f, after.Codebook[0]);
            Assert.NotEqual(before[node.Name].Codebook, after.Codebook);
            Assert.Equal(after.Values(), graph[node.Inputs[1]].Constant!.Floats);
        }
        Assert.True(tuned > shared, $"codebooks fine-tuned {tuned:P2}, shared {shared:P2}");
    }
}
