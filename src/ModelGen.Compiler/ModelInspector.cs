using ModelGen.Compiler.Import;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Normalize;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx;

namespace ModelGen.Compiler;

/// <summary>What <c>modelgen inspect</c> reports: a model's operators (supported or not), parameters and shapes.</summary>
public sealed record ModelReport(
    string File, string Producer, long Opset, long Parameters,
    IReadOnlyList<(string Name, int[]? Shape)> Inputs, IReadOnlyList<(string Name, int[]? Shape)> Outputs,
    IReadOnlyList<(string OpType, int Count, bool Supported)> Operators, string? Problem);

public static class ModelInspector
{
    /// <summary>Reads the model and reports on it; a model ModelGen cannot compile still gets its operator list, with the reason.</summary>
    public static ModelReport Inspect(string path, int batchSize = 1)
    {
        var proto = OnnxModelLoader.Load(path);
        var graph = OnnxImporter.Import(proto, path, batchSize);
        var operators = graph.Nodes.GroupBy(n => n.OpType, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Count(), OperatorSet.IsSupported(g.Key)))
            .ToList();
        long parameters = graph.Values.Values.Where(v => v.Constant is not null).Sum(v => v.Constant!.Count)
            + graph.Nodes.Where(n => n.OpType == "Constant").Sum(n => n.Attributes.Values.FirstOrDefault()?.T?.Dims.Aggregate(1L, (a, b) => a * b) ?? 0);
        string? problem = null;
        try
        {
            ShapeInference.Run(graph);
        }
        catch (ModelGenException e)
        {
            problem = $"{e.Code}: {e.Message}";
        }
        return new ModelReport(path, graph.Producer, graph.Opset, parameters,
            [.. graph.Inputs.Select(i => (i, graph[i].Shape))],
            [.. graph.Outputs.Select(o => (o, graph.Values.TryGetValue(o, out var v) ? v.Shape : null))],
            operators, problem);
    }
}
