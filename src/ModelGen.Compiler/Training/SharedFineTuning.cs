using ModelGen.Compiler.Compress;

namespace ModelGen.Compiler.Training;

/// <summary>
/// The codebooks' fine-tuning after weight sharing (stage SharedFineTune; FineTune with WeightSharing), as Deep
/// Compression fine-tunes its centroids: every shared layer's codes stay as clustering chose them, the optimizer trains
/// the codebook entries on the sum of the gradients of the weights with each code (<see cref="TrainableModel.Share"/>),
/// a pruned layer's zero code stays exactly 0, and the other parameters (biases, layers not shared) train as usual.
/// Data, teacher, epochs and early stopping are fine-tuning's (<see cref="FineTunePass.Prepare"/>). Layers tied to one
/// weight (WeightTying) train one codebook on the gradients of all of them.
/// Afterwards each layer's <see cref="SharedWeightsForm"/> carries the trained codebook and the graph's weight the values it stands for.
/// </summary>
public sealed class SharedFineTunePass(FineTuneSettings settings) : ICompressionPass
{
    public string Name => "codebooks fine-tuned";
    public CompressionStageOrder Stage => CompressionStageOrder.SharedFineTune;

    public void Apply(Graph graph, PassContext context)
    {
        var model = TrainableModel.Build(graph);
        // Each shared weight once: tied layers read one weight and carry one form.
        var shared = graph.Nodes.Where(n => n.Form is SharedWeightsForm).GroupBy(n => n.Inputs[1], StringComparer.Ordinal).ToList();
        foreach (var layers in shared) model.Share(layers.Key, Weights(layers.First()));
        var (data, teacher, options, progress) = FineTunePass.Prepare(graph, context.Original ?? graph, settings, context, "fine-tuning the codebooks");
        var result = Trainer.Fit(model, data, options, teacher, progress, settings.Cancellation);
        settings.Cancellation.ThrowIfCancellationRequested();
        FineTunePass.StoreParameters(graph, model);
        foreach (var layers in shared)
        {
            var weights = Weights(layers.First());
            var form = new SharedWeightsForm(weights with { Codebook = WeightSharing.Stored((float[])model.CodebookOf(layers.Key)!.Values.Clone(), weights.Bits) });
            foreach (var node in layers) node.Form = form;
            // The graph computes with the values the stored codebook gives (a 4-bit one is rounded to bfloat16).
            graph[layers.Key].Constant = new TensorData(graph[layers.Key].Constant!.Shape, form.Weights.Values());
        }
        context.Trained = result;
    }

    static SharedWeights Weights(Node node) => ((SharedWeightsForm)node.Form).Weights;
}
