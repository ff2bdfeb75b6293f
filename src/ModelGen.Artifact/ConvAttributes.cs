using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>How a float32 <see cref="KernelKind.Conv"/> kernel computes (docs/artifact-format.md, Conv).</summary>
public enum ConvMethod
{
    /// <summary>No <c>method</c> attribute: the direct kernels.</summary>
    Direct,
    /// <summary>Patches into scratch, then the GEMM.</summary>
    Gemm,
    /// <summary>One filter per channel.</summary>
    Depthwise,
    /// <summary>Horizontal stride 1: the GEMM's register tile with its vectors loaded from the (zero-padded) input, no patches.</summary>
    ImplicitGemm,
}

/// <summary>
/// The attributes of a convolution (<see cref="Has"/>) besides its window: <c>group</c>, and for the float32
/// <c>Conv</c> its <c>method</c> and whether its weights are int8 (<c>weights=int8</c>: inputs x, w, scales, b). The
/// compiler writes them with <see cref="ArtifactNode.SetConv"/>, the reader parses and checks them once, and the
/// generator reads <see cref="ArtifactNode.Conv"/>.
/// </summary>
public sealed class ConvAttributes : IEquatable<ConvAttributes>
{
    public ConvAttributes(int group, ConvMethod method = ConvMethod.Direct, bool int8Weights = false)
    {
        if (group < 1) throw new FormatException($"group {group} is not positive");
        Group = group; Method = method; Int8Weights = int8Weights;
    }

    public int Group { get; }
    public ConvMethod Method { get; }
    /// <summary>The weights are int8 with a float32 scale per output channel (widened into scratch each call).</summary>
    public bool Int8Weights { get; }

    /// <summary>The kernel kinds that have these attributes.</summary>
    public static bool Has(KernelKind kind) => kind is KernelKind.Conv or KernelKind.ConvInt8;

    internal static ConvAttributes Read(IDictionary<string, string> attributes)
    {
        int group = attributes.TryGetValue("group", out string? g) ? ArtifactText.ParseInt(g) : throw new FormatException("missing attribute 'group'");
        ConvMethod method = !attributes.TryGetValue("method", out string? m) ? ConvMethod.Direct : m switch
        {
            "gemm" => ConvMethod.Gemm,
            "depthwise" => ConvMethod.Depthwise,
            "implicit-gemm" => ConvMethod.ImplicitGemm,
            _ => throw new FormatException($"unknown Conv method '{m}'"),
        };
        bool int8 = attributes.TryGetValue("weights", out string? w) && (w == "int8" ? true : throw new FormatException($"unknown Conv weights '{w}'"));
        return new ConvAttributes(group, method, int8);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["group"] = ArtifactText.Int(Group);
        if (Method != ConvMethod.Direct) attributes["method"] = Method switch { ConvMethod.Gemm => "gemm", ConvMethod.ImplicitGemm => "implicit-gemm", _ => "depthwise" };
        if (Int8Weights) attributes["weights"] = "int8";
    }

    public bool Equals(ConvAttributes? other) => other is not null && Group == other.Group && Method == other.Method && Int8Weights == other.Int8Weights;

    public override bool Equals(object? obj) => Equals(obj as ConvAttributes);

    public override int GetHashCode() => (Group * 31 + (int)Method) * 2 + (Int8Weights ? 1 : 0);
}
