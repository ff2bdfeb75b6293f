using System.Numerics;

namespace ModelGen.Compiler.Training;

/// <summary>
/// How one operator trains: its forward pass over a mini-batch and its reverse-mode gradient. An operator
/// that can be trained returns its rule from <see cref="Operators.Operator.Gradient"/>, beside its shape
/// inference and reference semantics; the rules themselves live in Training/Rules.
/// <para>
/// Activations are batched (axis 0 is the mini-batch, the IR's per-sample shape after it); parameters and
/// other constants keep the IR's shape. Rules are generic over the element type: the engine trains in
/// float32 and the tests check every gradient in double against finite differences. A rule must be
/// deterministic (see <see cref="Kernels.Gemm"/>): no reduction whose order depends on threads or vector width.
/// </para>
/// </summary>
public abstract class GradientRule
{
    /// <summary>Why this node cannot train although its operator can (a form the rule does not cover), or null.</summary>
    public virtual string? Refusal(Node node, Graph graph) => null;

    /// <summary>Whether input <paramref name="input"/>, when a float32 constant, is a trained parameter (a weight, a bias).</summary>
    public virtual bool IsParameter(Node node, int input) => false;

    /// <summary>The same, for a rule that decides by the constant itself (a one-value constant is no bias).</summary>
    public virtual bool IsParameter(Node node, int input, Graph graph) => IsParameter(node, input);

    /// <summary>Sets <see cref="NodeRun{T}.Outputs"/> (and <see cref="NodeRun{T}.Saved"/>) from the inputs.</summary>
    public abstract void Forward<T>(NodeRun<T> run) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Adds the gradient of each input that needs one (<see cref="NodeRun{T}.InputGrads"/> not null) from the outputs' gradients.</summary>
    public abstract void Backward<T>(NodeRun<T> run) where T : unmanaged, IFloatingPointIeee754<T>;
}

/// <summary>One node's work in one training step: what its rule reads and writes.</summary>
public sealed class NodeRun<T>(Node node, Graph graph, int batch, Tensor<T>?[] inputs) where T : unmanaged, IFloatingPointIeee754<T>
{
    public Node Node { get; } = node;
    public Graph Graph { get; } = graph;
    /// <summary>Samples in the mini-batch (axis 0 of every activation).</summary>
    public int Batch { get; } = batch;
    /// <summary>The inputs in the node's order: batched activations, parameters and float constants; null where absent or integer.</summary>
    public Tensor<T>?[] Inputs { get; } = inputs;
    public Tensor<T>[] Outputs { get; set; } = [];
    /// <summary>Whatever the rule keeps from its forward pass for its backward one (an argmax, an im2col buffer).</summary>
    public object? Saved { get; set; }
    /// <summary>The gradient of the loss with respect to each output (null: nothing downstream needs it).</summary>
    public Tensor<T>?[] OutputGrads { get; internal set; } = [];
    /// <summary>Where the rule adds each input's gradient: zeroed by the engine, null when the input needs none.</summary>
    public Tensor<T>?[] InputGrads { get; internal set; } = [];

    /// <summary>Whether input <paramref name="input"/> is a batched activation (not a constant).</summary>
    public bool IsActivation(int input) => Node.HasInput(input) && Graph[Node.Inputs[input]].Constant is null;

    /// <summary>Input <paramref name="input"/>'s per-sample shape without the batch axis ([C, H, W] of [1, C, H, W]).</summary>
    public int[] SampleShape(int input) => Graph[Node.Inputs[input]].Shape![1..];

    /// <summary>Output <paramref name="output"/>'s shape for this mini-batch: the IR's with the batch as axis 0.</summary>
    public int[] BatchedOutputShape(int output) => [Batch, .. Graph[Node.Outputs[output]].Shape![1..]];
}
