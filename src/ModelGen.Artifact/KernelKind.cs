using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// The kinds of kernel an artifact node may be (docs/artifact-format.md gives each one's inputs and attributes).
/// The artifact's <c>kernel=</c> value is the member's name.
/// </summary>
public enum KernelKind
{
    Conv,
    MaxPool,
    AveragePool,
    AddU8,
    Dense,
    DenseInt8,
    ConvInt8,
    GlobalAveragePoolU8,
    MaxPoolU8,
    DepthwiseInt8,
    Gemm,
    MatMul,
    Binary,
    Unary,
    Remap,
    Reduce,
    ReduceRuntime,
    Softmax,
    ChannelAffine,
    Normalize,
    LRN,
    GatherRows,
    BatchNorm,
    ClipRuntime,
    CheckShape,
    SliceRuntime,
    PadRuntime,
    ConvTranspose,
    ResizeLinear,
    ResizeRuntime,
    LSTM,
    GRU,
    Pool3D,
    Copy,
}

public static class KernelKinds
{
    static readonly Dictionary<string, KernelKind> ByName = Names();

    static Dictionary<string, KernelKind> Names()
    {
        var names = new Dictionary<string, KernelKind>(StringComparer.Ordinal);
        foreach (KernelKind kind in Enum.GetValues(typeof(KernelKind))) names[kind.ToString()] = kind;
        return names;
    }

    /// <summary>The kind a <c>kernel=</c> value names (exactly, by name: never a number).</summary>
    public static KernelKind Parse(string text) =>
        ByName.TryGetValue(text, out var kind) ? kind : throw new FormatException($"unknown kernel '{text}'");
}
