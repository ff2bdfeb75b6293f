using Microsoft.ML.OnnxRuntime;

namespace ModelGen.Tests.Support;

/// <summary>ONNX Runtime on the original model: the reference every test compares with.</summary>
public sealed class OnnxRuntimeOracle : IDisposable
{
    readonly InferenceSession _session;

    public OnnxRuntimeOracle(string modelPath) : this(File.ReadAllBytes(modelPath)) { }

    public OnnxRuntimeOracle(byte[] model)
    {
        var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        _session = new InferenceSession(model, options);
    }

    /// <summary>Runs the model with the given inputs (name → data, shape); returns every output's data in graph order.</summary>
    public float[][] Run(params (string Name, float[] Data, int[] Shape)[] inputs)
    {
        var values = inputs.Select(i => OrtValue.CreateTensorValueFromMemory(i.Data, [.. i.Shape.Select(d => (long)d)])).ToList();
        try
        {
            // Held in a using: a RunOptions nothing references during Run can be finalized mid-call (its native
            // handle freed), which ONNX Runtime reports as an invalid log severity level.
            using var runOptions = new RunOptions();
            using var results = _session.Run(runOptions, inputs.Select(i => i.Name).ToList(), values, _session.OutputNames);
            return [.. results.Select(r => r.GetTensorDataAsSpan<float>().ToArray())];
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Runs with inputs of any element type the caller builds (float32 or int64).</summary>
    public float[][] Run(params (string Name, OrtValue Value)[] inputs)
    {
        using var runOptions = new RunOptions();
        using var results = _session.Run(runOptions, inputs.Select(i => i.Name).ToList(), inputs.Select(i => i.Value).ToList(), _session.OutputNames);
        return [.. results.Select(r => r.GetTensorDataAsSpan<float>().ToArray())];
    }

    public void Dispose() => _session.Dispose();
}
