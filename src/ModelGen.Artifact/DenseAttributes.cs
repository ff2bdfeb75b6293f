using System;
using System.Collections.Generic;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>How a <see cref="KernelKind.Dense"/> kernel holds its weights (docs/artifact-format.md, Dense).</summary>
public enum DenseLayout
{
    /// <summary>Several rows of x: w re-packed [K, N'] for the GEMM.</summary>
    Kn,
    /// <summary>One row: float32 w in panels of 4 rows, [N'/4, K'/16, 4, 16].</summary>
    Panels4,
    /// <summary>One row: float32 w [N, K] row-major, unpadded (a low-rank half whose rank the panels would pad).</summary>
    Nk32,
    /// <summary>One row: int8 w [N, K] and a float32 scale per output.</summary>
    Nk8,
    /// <summary>One row: int4 w packed two per byte [N, K'/2] and a float32 scale per output.</summary>
    Nk4,
    /// <summary>One row: only the kept weights, in the <see cref="SparseFormat"/> the attributes name.</summary>
    Sparse,
    /// <summary>
    /// One row: shared weights, w [N, ceil(K·bits / 8)] uint8 codes of <see cref="DenseAttributes.Bits"/> each, placed as
    /// <see cref="CodebookCodes"/> says, each row from a byte, then a float32 codebook of 2^bits.
    /// </summary>
    Codebook,
}

/// <summary>
/// How a sparse Dense kernel stores its weights (docs/artifact-format.md, Dense, sparse): unstructured with relative
/// indices of <see cref="IndexBits"/> (4, 5, 6 or 8) bits, or N:M (<see cref="N"/> kept of each <see cref="M"/> columns,
/// positions in 2 bits for M = 4, 4 for M = 8); values float32, int8 with a scale per output, or codebook codes of
/// <see cref="CodeBits"/> (2 to 8) bits packed one after another with the codebook's 2^bits float32 values after them.
/// Text: <c>sparse=u4</c>, <c>u5</c>, <c>u6</c>, <c>u8</c> or <c>N:M</c>, and <c>values=f32</c>, <c>i8</c> or <c>c2</c> to <c>c8</c>.
/// </summary>
public sealed class SparseFormat : IEquatable<SparseFormat>
{
    public SparseFormat(int indexBits, int n, int m, bool int8, int codeBits = 0)
    {
        bool unstructured = n == 0 && m == 0 && indexBits is 4 or 5 or 6 or 8;
        bool nOfM = m is 4 or 8 && n >= 1 && n < m && indexBits == (m == 4 ? 2 : 4);
        if (!unstructured && !nOfM) throw new FormatException($"a sparse format is u4, u5, u6, u8 or N:M with M of 4 or 8 (indices {indexBits} bits, {n}:{m})");
        if (codeBits != 0 && (codeBits is < 2 or > 8 || int8)) throw new FormatException($"sparse codebook codes are 2 to 8 bits, on float32 values (not {codeBits}{(int8 ? ", int8" : "")})");
        IndexBits = indexBits; N = n; M = m; Int8 = int8; CodeBits = codeBits;
    }

    /// <summary>Unstructured (relative indices) rather than N:M.</summary>
    public bool Unstructured => M == 0;
    public int IndexBits { get; }
    /// <summary>N:M's kept values per group and group width (0 when unstructured).</summary>
    public int N { get; }
    public int M { get; }
    /// <summary>The values are int8 with a float32 scale per output (else float32).</summary>
    public bool Int8 { get; }
    /// <summary>The values are codes of this many bits into a codebook of float32 values (0: they are not).</summary>
    public int CodeBits { get; }
    /// <summary>The values are codebook codes (<see cref="CodeBits"/>).</summary>
    public bool Shared => CodeBits > 0;

    /// <summary>The <c>values</c> attribute: f32, i8, or c and the code bits.</summary>
    public string ValuesText => Shared ? "c" + CodeBits.ToString(CultureInfo.InvariantCulture) : Int8 ? "i8" : "f32";

    public string Text => Unstructured ? "u" + IndexBits.ToString(CultureInfo.InvariantCulture) : FormattableString.Invariant($"{N}:{M}");

    internal static SparseFormat Read(string text, string values)
    {
        bool int8 = values == "i8";
        int codeBits = values.Length == 2 && values[0] == 'c' && values[1] is >= '2' and <= '8' ? values[1] - '0' : 0;
        if (values != "f32" && !int8 && codeBits == 0) throw new FormatException($"sparse values '{values}' are not f32, i8 or c2 to c8");
        if (text is "u4" or "u5" or "u6" or "u8") return new SparseFormat(text[1] - '0', 0, 0, int8, codeBits);
        int colon = text.IndexOf(':');
        if (colon < 0 || !int.TryParse(text.Substring(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            || !int.TryParse(text.Substring(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int m))
            throw new FormatException($"sparse format '{text}' is not u4, u8 or N:M");
        return new SparseFormat(m == 4 ? 2 : 4, n, m, int8, codeBits);
    }

    public bool Equals(SparseFormat? other) => other is not null && IndexBits == other.IndexBits && N == other.N && M == other.M && Int8 == other.Int8 && CodeBits == other.CodeBits;
    public override bool Equals(object? obj) => Equals(obj as SparseFormat);
    public override int GetHashCode() => (((IndexBits * 31 + N) * 31 + M) * 2 + (Int8 ? 1 : 0)) * 16 + CodeBits;
}

/// <summary>
/// The attributes of a <see cref="KernelKind.Dense"/> kernel: <c>transA</c> (0/1), <c>layout</c>, and the true sizes
/// the packed weights no longer show (<c>n</c> and <c>k</c> for panels4, <c>k</c> for nk4). The compiler writes
/// them with <see cref="ArtifactNode.SetDense"/>, the reader parses and checks them once, and the generator reads
/// <see cref="ArtifactNode.Dense"/>. The fused <c>activation</c> stays a separate attribute (other kinds share it).
/// </summary>
public sealed class DenseAttributes : IEquatable<DenseAttributes>
{
    public DenseAttributes(bool transA, DenseLayout layout, int n = 0, int k = 0, SparseFormat? sparse = null, int bits = 0)
    {
        bool wantsN = layout is DenseLayout.Panels4 or DenseLayout.Sparse, wantsK = layout is DenseLayout.Panels4 or DenseLayout.Nk4 or DenseLayout.Sparse or DenseLayout.Codebook;
        if (wantsN != n > 0 || wantsK != k > 0 || n < 0 || k < 0)
            throw new FormatException($"a Dense kernel of layout {LayoutText(layout)} has {(wantsN ? "n and k" : wantsK ? "k" : "neither n nor k")}, positive");
        if ((layout == DenseLayout.Sparse) != (sparse is not null))
            throw new FormatException($"a Dense kernel of layout {LayoutText(layout)} {(sparse is null ? "needs" : "has no")} a sparse format");
        if ((layout == DenseLayout.Codebook) != (bits != 0) || bits is < 0 or > 8 || layout == DenseLayout.Codebook && bits < 2)
            throw new FormatException($"a Dense kernel of layout {LayoutText(layout)} {(layout == DenseLayout.Codebook ? "has codes of 2 to 8 bits" : "has no code bits")}");
        TransA = transA; Layout = layout; N = n; K = k; Sparse = sparse; Bits = bits;
    }

    /// <summary>x is read transposed (several rows only).</summary>
    public bool TransA { get; }
    public DenseLayout Layout { get; }
    /// <summary>The true number of outputs (panels4; 0 otherwise).</summary>
    public int N { get; }
    /// <summary>The true number of inputs (panels4 and nk4; 0 otherwise).</summary>
    public int K { get; }

    /// <summary>The codebook layout's bits per code (0 for the others).</summary>
    public int Bits { get; }

    /// <summary>The sparse layout's format (null for the others).</summary>
    public SparseFormat? Sparse { get; }

    /// <summary>The layout carries a float32 scale per output after w (inputs x, w, scales, optional b).</summary>
    public bool HasScales => Layout is DenseLayout.Nk8 or DenseLayout.Nk4;

    internal static DenseAttributes Read(IDictionary<string, string> attributes)
    {
        string Get(string key) => attributes.TryGetValue(key, out string? v) ? v : throw new FormatException($"missing attribute '{key}'");
        int Int(string key) => attributes.ContainsKey(key) ? int.Parse(Get(key), NumberStyles.None, CultureInfo.InvariantCulture) : 0;
        bool transA = Get("transA") switch
        {
            "0" => false,
            "1" => true,
            var other => throw new FormatException($"transA '{other}' is not 0 or 1"),
        };
        DenseLayout layout = Get("layout") switch
        {
            "kn" => DenseLayout.Kn,
            "panels4" => DenseLayout.Panels4,
            "nk8" => DenseLayout.Nk8,
            "nk32" => DenseLayout.Nk32,
            "nk4" => DenseLayout.Nk4,
            "sparse" => DenseLayout.Sparse,
            "codebook" => DenseLayout.Codebook,
            var other => throw new FormatException($"unknown Dense layout '{other}'"),
        };
        var sparse = layout == DenseLayout.Sparse ? SparseFormat.Read(Get("sparse"), Get("values")) : null;
        return new DenseAttributes(transA, layout, Int("n"), Int("k"), sparse, Int("bits"));
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["transA"] = TransA ? "1" : "0";
        attributes["layout"] = LayoutText(Layout);
        if (N > 0) attributes["n"] = N.ToString(CultureInfo.InvariantCulture);
        if (K > 0) attributes["k"] = K.ToString(CultureInfo.InvariantCulture);
        if (Bits > 0) attributes["bits"] = Bits.ToString(CultureInfo.InvariantCulture);
        if (Sparse is not null)
        {
            attributes["sparse"] = Sparse.Text;
            attributes["values"] = Sparse.ValuesText;
        }
    }

    static string LayoutText(DenseLayout layout) => layout switch
    {
        DenseLayout.Panels4 => "panels4",
        DenseLayout.Nk8 => "nk8",
        DenseLayout.Nk32 => "nk32",
        DenseLayout.Nk4 => "nk4",
        DenseLayout.Sparse => "sparse",
        DenseLayout.Codebook => "codebook",
        _ => "kn",
    };

    public bool Equals(DenseAttributes? other) => other is not null && TransA == other.TransA && Layout == other.Layout && N == other.N && K == other.K && Bits == other.Bits && Equals(Sparse, other.Sparse);

    public override bool Equals(object? obj) => Equals(obj as DenseAttributes);

    public override int GetHashCode() => (((TransA ? 1 : 0) * 31 + (int)Layout) * 31 * 31 + N * 31 + K) * 9 + Bits;
}
