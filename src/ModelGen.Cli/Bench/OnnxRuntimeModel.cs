using Microsoft.ML.OnnxRuntime;

namespace ModelGen.Cli.Bench;

/// <summary>
/// ONNX Runtime on the original model, at its best for one inference at a time: one thread, every
/// graph optimization, inputs and outputs bound once to pinned buffers (no allocation per run).
/// </summary>
public sealed class OnnxRuntimeModel : IDisposable
{
    readonly InferenceSession _session;
    readonly RunOptions _runOptions = new();
    readonly List<OrtValue> _inputs = [];
    readonly List<OrtValue> _outputs = [];
    readonly string[] _inputNames, _outputNames;

    public OnnxRuntimeModel(string modelPath, IReadOnlyList<(string Name, Array Data, int[] Shape)> inputs, IReadOnlyList<(string Name, Array Data, int[] Shape)> outputs)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(modelPath, options);
        foreach (var (_, data, shape) in inputs) _inputs.Add(Value(data, shape));
        foreach (var (_, data, shape) in outputs) _outputs.Add(Value(data, shape));
        _inputNames = [.. inputs.Select(i => i.Name)];
        _outputNames = [.. outputs.Select(o => o.Name)];
    }

    static OrtValue Value(Array data, int[] shape)
    {
        long[] dims = [.. shape.Select(d => (long)d)];
        return data is long[] ints ? OrtValue.CreateTensorValueFromMemory(ints, dims) : OrtValue.CreateTensorValueFromMemory((float[])data, dims);
    }

    /// <summary>One inference into the bound output buffers.</summary>
    public void Run() => _session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);

    public long Ticks(int count)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int n = 0; n < count; n++) Run();
        return System.Diagnostics.Stopwatch.GetTimestamp() - start;
    }

    public long Allocated(int count)
    {
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int n = 0; n < count; n++) Run();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    public void Dispose()
    {
        foreach (var v in _inputs.Concat(_outputs)) v.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }
}
