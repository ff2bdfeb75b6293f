namespace ModelGen.Compiler.Ir;

/// <summary>
/// How a node is realised: the default <see cref="Float32Form"/> is the operator's own float32 semantics; the
/// compression passes (Compress/LayerForms.cs) give a node another form: int8 or int4 weights only, int8
/// arithmetic with its quantization parameters and output requantization, uint8 Add, Concat and average pooling
/// between int8 layers. Forms are immutable records, so a cloned graph shares them safely. Forms to come go
/// beside those (a sparse or N:M weight form, a codebook form), each read by the lowering of the node it is on.
/// </summary>
public abstract record LayerForm
{
    public static readonly LayerForm Float32 = new Float32Form();
}

/// <summary>The operator's float32 semantics (no compression): every node's form until a pass gives it another.</summary>
public sealed record Float32Form : LayerForm;

/// <summary>
/// A compression stage the pipeline ran, with the weight bytes the graph holds after it and, when the plan asks
/// (a report will evaluate each stage), a clone of the graph as that stage left it (null after the last stage: the graph itself).
/// </summary>
public sealed record CompressionStage(string Name, long WeightBytes, Graph? Snapshot = null)
{
    /// <summary>What training did in this stage (fine-tuning: the curve, the best epoch, why it stopped), if it trained.</summary>
    public Training.TrainingResult? Training { get; init; }
}
