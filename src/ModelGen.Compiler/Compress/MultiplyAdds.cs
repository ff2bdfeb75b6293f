using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// The multiply-adds a graph computes per run, by layer: the convolutions' and matrix products' (what pruning and
/// low rank save); element-wise ops, pooling and normalization are not counted.
/// </summary>
public static class MultiplyAdds
{
    /// <summary>Each Conv, ConvTranspose, Dense, Gemm and MatMul node with its multiply-adds, in schedule order.</summary>
    public static IReadOnlyList<(Node Node, long MultiplyAdds)> ByLayer(Graph graph)
    {
        var layers = new List<(Node, long)>();
        foreach (var node in graph.Nodes)
        {
            if (node.Outputs.Count == 0 || graph[node.Outputs[0]].Shape is not { } y) continue;
            long outputs = TensorData.Size(y);
            long multiplyAdds = node.OpType switch
            {
                // Each output sums its group's input channels times the kernel's taps: the weight's [M, C/group, k…] without M.
                "Conv" when Shape(graph, node, 1) is { Length: >= 3 } w => outputs * TensorData.Size(w[1..]),
                // Each input element is multiplied into its group's M/group channels times the taps: the weight's [C, M/group, k…] without C.
                "ConvTranspose" when Shape(graph, node, 0) is { } x && Shape(graph, node, 1) is { Length: >= 3 } w => TensorData.Size(x) * TensorData.Size(w[1..]),
                DenseOperator.Name when Shape(graph, node, 1) is [_, int k] => outputs * k,
                "Gemm" when Shape(graph, node, 0) is [int a0, int a1] => outputs * (node.Int("transA", 0) != 0 ? a0 : a1),
                "MatMul" when Shape(graph, node, 0) is { Length: >= 1 } a => outputs * a[^1],
                _ => -1,
            };
            if (multiplyAdds >= 0) layers.Add((node, multiplyAdds));
        }
        return layers;
    }

    /// <summary>The whole graph's multiply-adds per run.</summary>
    public static long Total(Graph graph) => ByLayer(graph).Sum(l => l.MultiplyAdds);

    static int[]? Shape(Graph graph, Node node, int input) => node.HasInput(input) ? graph[node.Inputs[input]].Shape : null;
}
