using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Normalize;

/// <summary>
/// Infers every value's fixed shape in schedule order and folds each node whose inputs are all
/// constant (Constant nodes, shape arithmetic, weight reshapes) into a constant: what remains are the
/// nodes that compute at run time.
/// </summary>
public static class ShapeInference
{
    /// <summary>Largest tensor constant folding creates (16 M elements, 64 MB of float32).</summary>
    public const long MaxFoldedElements = 1 << 24;

    /// <summary>
    /// All folding together may create at most two elements (eight bytes) per byte of the model (its file and external
    /// data), and at least a million: the compiler's memory, and the weights it embeds, stay tied to the size
    /// of its input. Exporters fold shape arithmetic and weight reshapes, which stay within this; a few bytes
    /// broadcast into millions of constants (Add of a [1,N] and an [N,1] initializer) do not, and run at run
    /// time instead.
    /// </summary>
    public static long FoldingBudget(Graph graph) => Math.Max(MinFoldingBudget, 2 * graph.FileBytes);

    /// <summary>The budget of a small model: a million elements (4 MB of float32).</summary>
    public const long MinFoldingBudget = 1 << 20;

    public static void Run(Graph graph) => Run(graph, null);

    /// <summary>
    /// <paramref name="blockers"/>: when given (modelgen inspect), a node whose shapes cannot be inferred is added to it and
    /// the rest go on; nodes of an unsupported operator or domain (the inspector lists those itself) and nodes reading a
    /// value of unknown shape (after such a node, or an input InputShape must fix) are skipped.
    /// </summary>
    /// <returns>How many supported nodes were skipped because they read a value of unknown shape.</returns>
    public static int Run(Graph graph, List<Blocker>? blockers)
    {
        var remaining = new List<Node>(graph.Nodes.Count);
        long budget = FoldingBudget(graph);
        int skipped = 0;
        foreach (var node in graph.Nodes)
        {
            if (blockers is not null && (!OperatorSet.IsSupported(node.OpType) || node.Domain is { Length: > 0 } and not "ai.onnx"
                || node.Inputs.Any(i => i.Length > 0 && graph[i].Shape is null)))
            {
                if (OperatorSet.IsSupported(node.OpType) && node.Domain is "" or "ai.onnx") skipped++;
                remaining.Add(node);
                continue;
            }
            var op = OperatorSet.Get(node, graph);
            try { op.InferShapes(node, graph); }
            catch (ModelGenException e) when (blockers is not null)
            {
                blockers.Add(new Blocker(e.Code, e.Message));
                foreach (var o in node.Outputs) if (o.Length > 0) graph[o].Shape = null;
                remaining.Add(node);
                continue;
            }
            catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or KeyNotFoundException)
            {
                // A node of a hostile file without an input, output or attribute value its operator reads.
                throw new ModelGenException(ErrorCodes.InvalidGraph, graph.ModelPath,
                    $"{node.Describe}, opset {graph.Opset}: lacks an input, output or attribute value {node.OpType} needs (inputs [{string.Join(", ", node.Inputs)}], outputs [{string.Join(", ", node.Outputs)}]); check the node against the ONNX operator's definition");
            }
            bool foldable = node.Inputs.Any(i => i.Length > 0) && node.Inputs.All(i => i.Length == 0 || graph[i].IsConstant)
                // A folded constant is embedded in the assembly: only fold what stays small (a node
                // that would blow a few bytes up into gigabytes runs at run time instead).
                && node.Outputs.All(o => o.Length == 0 || TensorData.Size(graph[o].Shape ?? []) <= MaxFoldedElements)
                && node.Outputs.Sum(o => o.Length == 0 ? 0 : TensorData.Size(graph[o].Shape ?? [])) <= budget;
            // Constant and Shape (shapes are known at build time) define constants themselves.
            if (node.Outputs.All(o => o.Length == 0 || graph[o].IsConstant)) continue;
            if (foldable)
            {
                budget -= node.Outputs.Sum(o => o.Length == 0 ? 0 : TensorData.Size(graph[o].Shape ?? []));
                TensorData[] outputs;
                try { outputs = ReferenceEvaluator.EvaluateNode(node, graph, name => graph[name].Constant!); }
                catch (ArithmeticException e)
                {
                    throw new ModelGenException(ErrorCodes.InvalidGraph, graph.ModelPath, $"{node.Describe}, opset {graph.Opset}: its constant inputs cannot be computed ({e.Message})");
                }
                for (int i = 0; i < outputs.Length && i < node.Outputs.Count; i++)
                {
                    if (node.Outputs[i].Length == 0) continue; // an output left unnamed (not used)
                    var v = graph[node.Outputs[i]];
                    v.Constant = outputs[i];
                    v.Shape = outputs[i].Shape;
                    v.Type = outputs[i].Type;
                }
                continue;
            }
            remaining.Add(node);
        }
        graph.Nodes = remaining;
        return skipped;
    }
}
