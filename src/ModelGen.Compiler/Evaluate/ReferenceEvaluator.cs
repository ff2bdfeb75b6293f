using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Evaluate;

/// <summary>
/// Runs a graph with the operators' float32 reference semantics, or a node's integer form when it has one. It is the oracle the emitted code is
/// checked against and, as compression passes arrive, the evaluator of every candidate model.
/// </summary>
public static class ReferenceEvaluator
{
    /// <summary>Runs the graph (shapes inferred) on one set of inputs, by input name; returns the outputs by name.</summary>
    public static Dictionary<string, TensorData> Run(Graph graph, IReadOnlyDictionary<string, TensorData> inputs)
    {
        var values = RunAll(graph, inputs);
        return graph.Outputs.ToDictionary(o => o, o => values.TryGetValue(o, out var t) ? t : graph[o].Constant!, StringComparer.Ordinal);
    }

    /// <summary>Runs the graph and returns every value it computed (and its inputs), by name: for calibration.</summary>
    public static Dictionary<string, TensorData> RunAll(Graph graph, IReadOnlyDictionary<string, TensorData> inputs)
    {
        var values = new Dictionary<string, TensorData>(StringComparer.Ordinal);
        foreach (var name in graph.Inputs)
        {
            var given = inputs[name];
            if (given.Count != TensorData.Size(graph[name].Shape!))
                throw new ArgumentException($"input '{name}' needs {TensorData.Size(graph[name].Shape!)} elements, got {given.Count}");
            values[name] = given.Type == ElementType.Float32 ? new TensorData(graph[name].Shape!, given.Floats) : new TensorData(graph[name].Shape!, given.Ints);
        }
        TensorData Lookup(string name) => values.TryGetValue(name, out var t) ? t : graph[name].Constant ?? throw new KeyNotFoundException(name);
        foreach (var node in graph.Nodes)
        {
            var outputs = EvaluateNode(node, graph, Lookup);
            for (int i = 0; i < outputs.Length && i < node.Outputs.Count; i++)
                if (node.Outputs[i].Length > 0) values[node.Outputs[i]] = outputs[i];
        }
        return values;
    }

    public static TensorData[] EvaluateNode(Node node, Graph graph, Func<string, TensorData> lookup)
    {
        var op = OperatorSet.Get(node, graph);
        var inputs = node.Inputs.Select(i => i.Length == 0 ? null : lookup(i)).ToArray();
        // A node in integers (int8 arithmetic, uint8 Add or pooling) computes as its kernel does; the rest as the operator does.
        var outputs = node.Form is Compress.IntegerForm integer ? integer.Evaluate(node, inputs) : op.Evaluate(node, inputs);
        if (node.Annotations.TryGetValue("activation", out var activation))
            outputs[0] = new TensorData(outputs[0].Shape, ActivationMath.ApplyAll(activation, outputs[0].Floats));
        return outputs;
    }
}
