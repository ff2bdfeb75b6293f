namespace ModelGen.Compiler.Ir;

/// <summary>
/// What a node's operator resolved at shape inference from the opset, attributes, shapes and constant inputs,
/// for its Evaluate and Lower to read (a Remap plan, reduction axes, Resize tables, a recurrent layer's sizes).
/// Kept on the node (<see cref="Node.Plan"/>) rather than recomputed because Evaluate sees only the node and its
/// input tensors, not the graph's opset or declared shapes. Plans are immutable records, so a cloned graph
/// shares them and need not infer shapes again.
/// </summary>
public abstract record OperatorPlan;
