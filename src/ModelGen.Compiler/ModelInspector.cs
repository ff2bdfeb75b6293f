using ModelGen.Compiler.Import;
using ModelGen.Compiler.Normalize;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler;

/// <summary>One thing that keeps a model from compiling, with its MGnnnn code; the message says what would lift it.</summary>
public sealed record Blocker(string Code, string Message);

/// <summary>What <c>modelgen inspect</c> reports: a model's operators (supported or not), parameters, shapes and every blocker.</summary>
public sealed record ModelReport(
    string File, string Producer, long Opset, long Parameters,
    IReadOnlyList<(string Name, int[]? Shape)> Inputs, IReadOnlyList<(string Name, int[]? Shape)> Outputs,
    IReadOnlyList<(string OpType, int Count, bool Supported)> Operators, IReadOnlyList<Blocker> Blockers)
{
    /// <summary>Each input's shape as the model declares it ([batch, samples]), for inputs whose shape is not fixed.</summary>
    public IReadOnlyDictionary<string, string> Declared { get; init; } = new Dictionary<string, string>();

    /// <summary>Supported nodes whose shapes were not checked: they read what a blocker left unknown.</summary>
    public int Unchecked { get; init; }

    /// <summary>The first blocker as "MGnnnn: message", or null when the model compiles.</summary>
    public string? Problem => Blockers.Count == 0 ? null : $"{Blockers[0].Code}: {Blockers[0].Message}";
}

public static class ModelInspector
{
    /// <summary>
    /// Reads the model and reports on it. A model ModelGen cannot compile still gets its operator list, and every
    /// blocker found, not only the first: unsupported operators (with their nodes), inputs of other element types or
    /// with symbolic sizes, foreign operator domains, and nodes whose shapes fail (nodes after those are not checked).
    /// A file that cannot be read at all, or a bad InputShape, is still an error.
    /// </summary>
    public static ModelReport Inspect(string path, int batchSize = 1, string? inputShape = null) =>
        Inspect(OnnxModelLoader.Load(path), path, batchSize, inputShape);

    /// <summary>The same on a model already read (<paramref name="path"/> names it in messages).</summary>
    public static ModelReport Inspect(Onnx.Proto.ModelProto proto, string path, int batchSize = 1, string? inputShape = null)
    {
        var blockers = new List<Blocker>();
        var graph = OnnxImporter.Import(proto, path, batchSize, InputShapes.Parse(inputShape, path), blockers);
        var operators = graph.Nodes.GroupBy(n => n.OpType, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Count(), OperatorSet.IsSupported(g.Key)))
            .ToList();
        long parameters = graph.Values.Values.Where(v => v.Constant is not null).Sum(v => v.Constant!.Count)
            + graph.Nodes.Where(n => n.OpType == "Constant").Sum(n => n.Attributes.Values.FirstOrDefault()?.T?.Dims.Aggregate(1L, (a, b) => a * b) ?? 0);
        foreach (var g in graph.Nodes.Where(n => !OperatorSet.IsSupported(n.OpType)).GroupBy(n => n.OpType, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var names = g.Select(n => n.Name).ToList();
            string listed = string.Join(", ", names.Take(10).Select(n => $"'{n}'")) + (names.Count > 10 ? $" and {names.Count - 10} more" : "");
            blockers.Add(new Blocker(ErrorCodes.UnsupportedOperator,
                $"operator '{g.Key}' (opset {graph.Opset}) is not supported, {(names.Count == 1 ? "node" : $"{names.Count} nodes")} {listed}: re-export the model without it (replace it with supported operators, or simplify it with onnxsim), or ask for it in an issue"));
        }
        // An opset ModelGen does not read gives operators meanings it does not know: no shapes then.
        int unchecked_ = graph.Opset >= 0 ? ShapeInference.Run(graph, blockers) : graph.Nodes.Count;
        var declared = proto.Graph.Input.Where(i => i.Type?.TensorType?.Shape is not null)
            .GroupBy(i => i.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => InputShapes.Declared(g.First().Type.TensorType), StringComparer.Ordinal);
        return new ModelReport(path, graph.Producer, graph.Opset, parameters,
            [.. graph.Inputs.Select(i => (i, graph[i].Shape))],
            [.. graph.Outputs.Select(o => (o, graph.Values.TryGetValue(o, out var v) ? v.Shape : null))],
            operators, blockers) { Declared = declared, Unchecked = unchecked_ };
    }
}
