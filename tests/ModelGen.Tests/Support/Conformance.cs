using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;

namespace ModelGen.Tests.Support;

/// <summary>One conformance case: an ONNX model, the shapes of its inputs, the batch size to compile with.</summary>
public sealed record ConformanceCase(string Name, OnnxBuilder Model, (string Name, int[] Shape)[] Inputs, int BatchSize = 1)
{
    /// <summary>int64 inputs with the values to run with (after the float inputs, in graph order).</summary>
    public (string Name, long[] Values)[] IntInputs { get; init; } = [];
}

/// <summary>
/// Compiles a family of cases through the source generator into one assembly (one Roslyn compilation
/// for all: fast), then checks each against ONNX Runtime on seeded random inputs.
/// </summary>
public sealed class ConformanceSuite(ConformanceCase[] cases)
{
    readonly Lazy<(Dictionary<string, (ConformanceCase Case, string Path, ModelArtifact Artifact)> Compiled, GeneratedModels Models)> _built = new(() =>
    {
        var compiled = cases.ToDictionary(c => c.Name, c =>
        {
            string path = c.Model.Save(c.Name + ".onnx");
            var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = c.Name, Namespace = "Conformance", BatchSize = c.BatchSize });
            return (Case: c, Path: path, Artifact: artifact);
        });
        return (compiled, GeneratedModels.Build([.. compiled.Values.Select(v => v.Artifact)]));
    });

    public TheoryData<string> Names => [.. cases.Select(c => c.Name)];

    static (string Name, float[] Data, int[] Shape)[] Inputs(ConformanceCase c, float scale) =>
        [.. c.Inputs.Select((i, k) => (i.Name, OnnxBuilder.Random(i.Shape.Aggregate(1, (a, b) => a * b), 100 + k).Select(v => v * scale).ToArray(), i.Shape))];

    /// <summary>
    /// The generated class's outputs equal ONNX Runtime's (1e-4 relative, 1e-5 absolute), on a first call and on a
    /// second (large one-row layers read their weights in alternate directions from one call to the next).
    /// </summary>
    public void AssertGeneratedMatchesOnnxRuntime(string name, float inputScale = 1f, double relative = 1e-4, double absolute = 1e-5)
    {
        var (compiled, models) = _built.Value;
        var (c, path, artifact) = compiled[name];
        var inputs = Inputs(c, inputScale);
        using var ort = new OnnxRuntimeOracle(path);
        var expected = RunOrt(ort, c, inputs);
        var byName = inputs.ToDictionary(i => i.Name, i => (object)i.Data);
        foreach (var (n, values) in c.IntInputs) byName[n] = values;
        foreach (string call in new[] { "first call", "second call" })
        {
            var outputs = artifact.Outputs.Select(o => new float[artifact.Tensors[o.Tensor].ElementCount]).ToArray();
            models.Run(artifact, [.. artifact.Inputs.Select(b => byName[b.Name])], outputs);
            Assert.Equal(expected.Length, outputs.Length);
            for (int o = 0; o < outputs.Length; o++)
                Tolerance.AssertClose(expected[o], outputs[o], $"{name} output {o}, {call}", relative, absolute);
        }
    }

    static float[][] RunOrt(OnnxRuntimeOracle ort, ConformanceCase c, (string Name, float[] Data, int[] Shape)[] inputs)
    {
        if (c.IntInputs.Length == 0) return ort.Run(inputs);
        var values = inputs.Select(i => (i.Name, Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(i.Data, [.. i.Shape.Select(d => (long)d)])))
            .Concat(c.IntInputs.Select(i => (i.Name, Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(i.Values, [i.Values.Length])))).ToArray();
        try { return ort.Run(values); }
        finally { foreach (var (_, v) in values) v.Dispose(); }
    }

    /// <summary>The reference evaluator's outputs equal ONNX Runtime's.</summary>
    public void AssertEvaluatorMatchesOnnxRuntime(string name, float inputScale = 1f, double relative = 1e-4, double absolute = 1e-5)
    {
        var c = cases.Single(x => x.Name == name);
        string path = c.Model.Save();
        var graph = ModelCompiler.Import(path, c.BatchSize);
        var inputs = Inputs(c, inputScale);
        using var ort = new OnnxRuntimeOracle(path);
        var expected = RunOrt(ort, c, inputs);
        var feed = inputs.ToDictionary(i => i.Name, i => new TensorData(i.Shape, i.Data));
        foreach (var (n, values) in c.IntInputs) feed[n] = new TensorData(graph[n].Shape!, values);
        var actual = ReferenceEvaluator.Run(graph, feed);
        for (int o = 0; o < expected.Length; o++)
            Tolerance.AssertClose(expected[o], actual[graph.Outputs[o]].Floats, $"{name} output {o}", relative, absolute);
    }
}

/// <summary>
/// The two checks every operator family runs on each of its cases. A family derives from this, lists
/// its cases, and exposes them as <c>public static TheoryData&lt;string&gt; Names</c> (xunit finds it on the
/// derived class).
/// </summary>
public abstract class ConformanceTests
{
    protected abstract ConformanceSuite Suite { get; }

    // xUnit1015: the analyzer looks for Names on this class; at run time xunit reads it from the derived one.
#pragma warning disable xUnit1015

    [Theory]
    [MemberData("Names")]
    public void GeneratedCodeMatchesOnnxRuntime(string name) => Suite.AssertGeneratedMatchesOnnxRuntime(name);

    [Theory]
    [MemberData("Names")]
    public void ReferenceEvaluatorMatchesOnnxRuntime(string name) => Suite.AssertEvaluatorMatchesOnnxRuntime(name);
#pragma warning restore xUnit1015
}
