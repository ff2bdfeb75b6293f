using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Training;

/// <summary>The MNIST networks and digits of data/mnist, ready to train (the training tests and the `train` benchmark).</summary>
public static class MnistTraining
{
    /// <summary>Imports and normalizes a model of data/mnist and makes it trainable.</summary>
    public static TrainableModel Model(string file)
    {
        var graph = ModelCompiler.Import(TestData.Mnist(file));
        Compiler.Normalize.Passes.Run(graph);
        return TrainableModel.Build(graph);
    }

    static readonly Dictionary<string, float[]> Cache = new(StringComparer.Ordinal);

    static float[] Read(string file, float uint8Scale = 1)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(file, out var values)) Cache[file] = values = NpyReader.Read(TestData.Mnist(file), uint8Scale).Data;
            return values;
        }
    }

    /// <summary>The model's only input as data must match it: its name and its shape.</summary>
    static DataInput Input(TrainableModel model) => new(model.Graph.Inputs[0], model.Graph[model.Graph.Inputs[0]].Shape!);

    /// <summary>The first <paramref name="count"/> of the 8,000 training digits (uint8 / 255) and their labels, shaped for <paramref name="model"/>.</summary>
    public static TrainingSet TrainingDigits(TrainableModel model, int count = 8000, bool labels = true)
    {
        var images = Read("train-images-u8.npy", 255)[..(count * 784)];
        var classes = Read("train-labels.npy");
        return new TrainingSet(new DataSet([Input(model)], [images], count),
            labels ? [.. classes.Take(count).Select(l => (long)l)] : null);
    }

    /// <summary>Accuracy on the 2,000 test digits against their labels.</summary>
    public static double TestAccuracy(TrainableModel model)
    {
        var images = Read("test-images.npy");
        var labels = Read("test-labels.npy");
        var input = Input(model);
        int correct = 0;
        for (int start = 0; start < 2000; start += 500)
        {
            var batch = new Tensor<float>([500, .. input.Shape[1..]], images[(start * 784)..((start + 500) * 784)]);
            var scores = model.Forward(new Dictionary<string, Tensor<float>> { [input.Name] = batch })[model.Graph.Outputs[0]];
            int classes = scores.Count / 500;
            for (int s = 0; s < 500; s++)
                if (Losses.ArgMax<float>(scores.Data.AsSpan(s * classes, classes)) == (int)labels[start + s]) correct++;
        }
        return correct / 2000.0;
    }
}
