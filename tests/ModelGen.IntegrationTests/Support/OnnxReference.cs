using Microsoft.ML.OnnxRuntime;

namespace ModelGen.IntegrationTests.Support;

/// <summary>The teacher: ONNX Runtime on the original model, the reference every output is checked against.</summary>
internal static class OnnxReference
{
    /// <summary>Runs <paramref name="modelPath"/> on <paramref name="count"/> inputs of
    /// <paramref name="inputShape"/> (without the batch dimension), 100 at a time.</summary>
    public static float[] Run(string modelPath, float[] inputs, int count, long[] inputShape, int outputLength)
    {
        using var session = new InferenceSession(modelPath);
        string inputName = session.InputMetadata.Keys.Single();
        string outputName = session.OutputMetadata.Keys.Single();
        long inputLength = inputShape.Aggregate(1L, (a, b) => a * b);
        var outputs = new float[count * outputLength];
        using var runOptions = new RunOptions();
        const int Batch = 100;
        for (int start = 0; start < count; start += Batch)
        {
            int n = Math.Min(Batch, count - start);
            float[] slice = inputs.AsSpan((int)(start * inputLength), (int)(n * inputLength)).ToArray();
            using var input = OrtValue.CreateTensorValueFromMemory(slice, [n, .. inputShape]);
            using var results = session.Run(runOptions, [inputName], [input], [outputName]);
            ReadOnlySpan<float> batchOutput = results[0].GetTensorDataAsSpan<float>();
            Assert.Equal(n * outputLength, batchOutput.Length);
            batchOutput.CopyTo(outputs.AsSpan(start * outputLength));
        }

        return outputs;
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
