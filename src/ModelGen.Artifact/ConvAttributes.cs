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
    /// <summary>Pruned weights stored sparse (<see cref="ConvAttributes.Sparse"/>): each output channel sums only its kept taps.</summary>
    Sparse,
}

/// <summary>
/// The storage of a sparse convolution's weights (<c>sparse=</c>): <c>unstructured-B</c> for B of 4, 5, 6 or 8 (relative
/// column indices of B bits, 5 and 6 read as 16-bit words, padding entries of value 0 where a gap is wider), or <c>N:M</c> (N entries in each
/// group of M columns, their positions in the group in 2 bits for M = 4, else 4 bits). docs/artifact-format.md, Conv.
/// Values float32, or with <c>,cB</c> after the format codebook codes of B (2 to 8) bits packed one after another, the
/// codebook's 2^B float32 values an input after the row counts (<see cref="WithCodes"/>).
/// </summary>
public sealed class SparseConvFormat : IEquatable<SparseConvFormat>
{
    SparseConvFormat(int n, int m, int indexBits, int codeBits = 0)
    {
        N = n; M = m; IndexBits = indexBits; CodeBits = codeBits;
    }

    /// <summary>The same storage with its values as codebook codes of <paramref name="codeBits"/> bits (2 to 8).</summary>
    public SparseConvFormat WithCodes(int codeBits) =>
        codeBits is >= 2 and <= 8 ? new SparseConvFormat(N, M, IndexBits, codeBits) : throw new FormatException($"codebook codes are 2 to 8 bits, not {codeBits}");

    /// <summary>Bits of a value's codebook code (0: the values are float32).</summary>
    public int CodeBits { get; }
    /// <summary>The values are codebook codes (<see cref="CodeBits"/>).</summary>
    public bool Shared => CodeBits > 0;

    /// <summary>Unstructured with relative indices of <paramref name="indexBits"/> bits (4, 5, 6 or 8).</summary>
    public static SparseConvFormat Unstructured(int indexBits) =>
        indexBits is 4 or 5 or 6 or 8 ? new SparseConvFormat(0, 0, indexBits) : throw new FormatException($"relative indices are 4, 5, 6 or 8 bits, not {indexBits}");

    /// <summary>N:M, 1 ≤ N &lt; M, M of 4, 8 or 16.</summary>
    public static SparseConvFormat NOfM(int n, int m) =>
        m is 4 or 8 or 16 && n >= 1 && n < m ? new SparseConvFormat(n, m, m == 4 ? 2 : 4) : throw new FormatException($"N:M needs M of 4, 8 or 16 and 1 ≤ N < M, not {n}:{m}");

    /// <summary>Whether the entries are N:M (else unstructured: each row's entry count in an int16 input).</summary>
    public bool IsNOfM => M > 0;
    public int N { get; }
    public int M { get; }
    /// <summary>Bits per stored index.</summary>
    public int IndexBits { get; }

    internal static SparseConvFormat Parse(string text)
    {
        int comma = text.IndexOf(',');
        if (comma > 0)
            return text.Length > comma + 1 && text[comma + 1] == 'c' ? Parse(text.Substring(0, comma)).WithCodes(ArtifactText.ParseInt(text.Substring(comma + 2)))
                : throw new FormatException($"unknown sparse values '{text.Substring(comma + 1)}'");
        if (text is "unstructured-4" or "unstructured-5" or "unstructured-6" or "unstructured-8") return Unstructured(text[text.Length - 1] - '0');
        int colon = text.IndexOf(':');
        if (colon > 0) return NOfM(ArtifactText.ParseInt(text.Substring(0, colon)), ArtifactText.ParseInt(text.Substring(colon + 1)));
        throw new FormatException($"unknown sparse format '{text}'");
    }

    public override string ToString() => (IsNOfM ? ArtifactText.Int(N) + ":" + ArtifactText.Int(M) : "unstructured-" + ArtifactText.Int(IndexBits)) + (Shared ? ",c" + ArtifactText.Int(CodeBits) : "");

    public bool Equals(SparseConvFormat? other) => other is not null && N == other.N && M == other.M && IndexBits == other.IndexBits && CodeBits == other.CodeBits;

    public override bool Equals(object? obj) => Equals(obj as SparseConvFormat);

    public override int GetHashCode() => ((N * 31 + M) * 31 + IndexBits) * 16 + CodeBits;
}

/// <summary>
/// The attributes of a convolution (<see cref="Has"/>) besides its window: <c>group</c>, and for the float32
/// <c>Conv</c> its <c>method</c> and whether its weights are int8 (<c>weights=int8</c>: inputs x, w, scales, b). The
/// compiler writes them with <see cref="ArtifactNode.SetConv"/>, the reader parses and checks them once, and the
/// generator reads <see cref="ArtifactNode.Conv"/>.
/// </summary>
public sealed class ConvAttributes : IEquatable<ConvAttributes>
{
    public ConvAttributes(int group, ConvMethod method = ConvMethod.Direct, bool int8Weights = false, SparseConvFormat? sparse = null)
    {
        if (group < 1) throw new FormatException($"group {group} is not positive");
        if ((method == ConvMethod.Sparse) != (sparse is not null)) throw new FormatException("a sparse Conv, and only it, names its sparse format");
        Group = group; Method = method; Int8Weights = int8Weights; Sparse = sparse;
    }

    public int Group { get; }
    public ConvMethod Method { get; }
    /// <summary>The weights are int8 with a float32 scale per output channel (widened into scratch each call).</summary>
    public bool Int8Weights { get; }
    /// <summary>The storage of a sparse convolution's weights (inputs x, values, indices, [row counts,] b); null for the others.</summary>
    public SparseConvFormat? Sparse { get; }

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
            "sparse" => ConvMethod.Sparse,
            _ => throw new FormatException($"unknown Conv method '{m}'"),
        };
        bool int8 = attributes.TryGetValue("weights", out string? w) && (w == "int8" ? true : throw new FormatException($"unknown Conv weights '{w}'"));
        var sparse = method != ConvMethod.Sparse ? null : attributes.TryGetValue("sparse", out string? f) ? SparseConvFormat.Parse(f) : throw new FormatException("missing attribute 'sparse'");
        return new ConvAttributes(group, method, int8, sparse);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["group"] = ArtifactText.Int(Group);
        if (Method != ConvMethod.Direct) attributes["method"] = Method switch { ConvMethod.Gemm => "gemm", ConvMethod.ImplicitGemm => "implicit-gemm", ConvMethod.Sparse => "sparse", _ => "depthwise" };
        if (Sparse is not null) attributes["sparse"] = Sparse.ToString();
        if (Int8Weights) attributes["weights"] = "int8";
    }

    public bool Equals(ConvAttributes? other) => other is not null && Group == other.Group && Method == other.Method && Int8Weights == other.Int8Weights
        && Equals(Sparse, other.Sparse);

    public override bool Equals(object? obj) => Equals(obj as ConvAttributes);

    public override int GetHashCode() => (Group * 31 + (int)Method) * 2 + (Int8Weights ? 1 : 0);
}
