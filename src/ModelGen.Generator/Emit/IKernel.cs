using System;
using System.Collections.Generic;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// One kind of artifact kernel: writes the method for a node, specialised to its shapes. A new kernel
/// is a class implementing this, listed in KernelEmitter's registry (the only dispatch on the kind).
/// </summary>
internal interface IKernel
{
    /// <summary>The kind this class emits.</summary>
    KernelKind Kernel { get; }

    /// <summary>The name of the kernel method's i-th input parameter (for some kinds it depends on the node's form).</summary>
    string InputName(ArtifactNode node, int i);

    /// <summary>Writes the comment and the method <c>public static void {Name}({Signature})</c>.</summary>
    void Emit(KernelContext k);
}

/// <summary>What a kernel emitter needs: the writer, the node, its tensors and the method's name and signature.</summary>
internal sealed class KernelContext(CodeWriter w, ModelArtifact model, ArtifactNode node, string name, string signature,
    ArtifactTensor[] inputs, ArtifactTensor[] outputs, ISet<string> helpers)
{
    public CodeWriter W { get; } = w;
    public ModelArtifact Model { get; } = model;
    public ArtifactNode Node { get; } = node;
    public string Name { get; } = name;
    public string Signature { get; } = signature;
    public ArtifactTensor[] Inputs { get; } = inputs;
    public ArtifactTensor[] Outputs { get; } = outputs;
    /// <summary>Shared helpers to emit once per class: "Dot", "Axpy", "Erf".</summary>
    public ISet<string> Helpers { get; } = helpers;

    public ArtifactTensor Y => Outputs[0];
    public SimdLevel Simd => Model.Simd;

    /// <summary>The node's window (Conv, pools, ConvInt8, DepthwiseInt8).</summary>
    public KernelWindow Window => KernelEmitter.Window(Node);
    /// <summary>The node's group, method and weight form (Conv, ConvInt8).</summary>
    public ConvAttributes Conv => KernelEmitter.ConvOf(Node);
    /// <summary>The node's Dense attributes (Dense only).</summary>
    public DenseAttributes Dense => KernelEmitter.Dense(Node);
    /// <summary>The node's quantization (DenseInt8, ConvInt8, DepthwiseInt8).</summary>
    public Int8LayerAttributes Int8Layer =>
        Node.Int8Layer ?? throw new FormatException($"kernel {Node.Kernel} of node '{Node.Name}' has no int8 quantization (scale, zero)");

    /// <summary>The node's normalization attributes (Normalize, LRN, BatchNorm).</summary>
    public NormalizationAttributes Normalization =>
        Node.Normalization ?? throw new FormatException($"kernel {Node.Kernel} of node '{Node.Name}' has no normalization attributes");

    /// <summary>The fused activation applied to the local variable <paramref name="v"/>.</summary>
    public string Act(string v = "v") => KernelEmitter.Act(Node, v);
    public string ActName() => KernelEmitter.ActName(Node);

    /// <summary>Opens the kernel method; the scope returned closes it (<c>using (k.OpenMethod()) { … }</c>).</summary>
    public CodeWriter.Scope OpenMethod() => KernelEmitter.OpenKernel(W, Name, Signature);

    public static string N(long v) => CodeWriter.N(v);
    public static string F(float v) => Activations.Literal(v);
}
