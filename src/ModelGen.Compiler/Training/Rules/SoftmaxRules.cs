using System.Numerics;
using ModelGen.Artifact;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// Softmax and LogSoftmax as <see cref="Operators.SoftmaxOperator"/> computes them: the input seen as [outer, length,
/// inner] and normalized over length, which is the one axis from opset 13 and everything from the axis on before it
/// (the coerced 2-D form). The batch is part of outer; an axis of 0 (normalizing across samples) is refused.
/// Backward: dx = y·(dy − Σ dy·y) for Softmax, dx = dy − softmax·Σ dy for LogSoftmax (sums in axis order).
/// </summary>
public sealed class SoftmaxRule : GradientRule
{
    static int Axis(Node node, Graph graph, int rank)
    {
        long axis = node.Int("axis", graph.Opset >= 13 ? -1 : 1);
        return (int)(axis < 0 ? axis + rank : axis);
    }

    public override string? Refusal(Node node, Graph graph) =>
        Axis(node, graph, graph[node.Inputs[0]].Shape!.Length) == 0 ? "it normalizes over the batch axis (axis 0)" : null;

    /// <summary>(outer, length, inner) of the batched input.</summary>
    static (int Outer, int Length, int Inner) Layout(Node node, Graph graph, int[] x)
    {
        int axis = Axis(node, graph, x.Length);
        int outer = (int)TensorData.Size(x[..axis]);
        return graph.Opset >= 13 ? (outer, x[axis], (int)TensorData.Size(x[(axis + 1)..])) : (outer, (int)TensorData.Size(x[axis..]), 1);
    }

    public override void Forward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var (outer, length, inner) = Layout(run.Node, run.Graph, x.Shape);
        bool log = run.Node.OpType == "LogSoftmax";
        var y = new Tensor<T>(x.Shape);
        var (xd, yd) = (x.Data, y.Data);
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int start = o * length * inner + i;
                T max = T.NegativeInfinity;
                for (int a = 0, at = start; a < length; a++, at += inner) max = T.Max(max, xd[at]);
                T sum = T.Zero;
                for (int a = 0, at = start; a < length; a++, at += inner)
                {
                    T e = TrainingMath.Exp(xd[at] - max);
                    sum += e;
                    if (!log) yd[at] = e;
                }
                if (log)
                {
                    T logSum = TrainingMath.Log(sum);
                    for (int a = 0, at = start; a < length; a++, at += inner) yd[at] = xd[at] - max - logSum;
                }
                else
                    for (int a = 0, at = start; a < length; a++, at += inner) yd[at] /= sum;
            }
        run.Saved = y;
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var y = (Tensor<T>)run.Saved!;
        var (outer, length, inner) = Layout(run.Node, run.Graph, y.Shape);
        bool log = run.Node.OpType == "LogSoftmax";
        var (yd, dy, dxd) = (y.Data, run.OutputGrads[0]!.Data, dx.Data);
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int start = o * length * inner + i;
                T sum = T.Zero;
                if (log)
                {
                    for (int a = 0, at = start; a < length; a++, at += inner) sum += dy[at];
                    for (int a = 0, at = start; a < length; a++, at += inner) dxd[at] = Fma.Add(-TrainingMath.Exp(yd[at]), sum, dxd[at] + dy[at]);
                }
                else
                {
                    for (int a = 0, at = start; a < length; a++, at += inner) sum = Fma.Add(dy[at], yd[at], sum);
                    for (int a = 0, at = start; a < length; a++, at += inner) dxd[at] = Fma.Add(yd[at], dy[at] - sum, dxd[at]);
                }
            }
    }
}
