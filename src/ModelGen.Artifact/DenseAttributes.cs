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
    /// <summary>One row: int8 w [N, K] and a float32 scale per output.</summary>
    Nk8,
    /// <summary>One row: int4 w packed two per byte [N, K'/2] and a float32 scale per output.</summary>
    Nk4,
}

/// <summary>
/// The attributes of a <see cref="KernelKind.Dense"/> kernel: <c>transA</c> (0/1), <c>layout</c>, and the true sizes
/// the packed weights no longer show (<c>n</c> and <c>k</c> for panels4, <c>k</c> for nk4). The compiler writes
/// them with <see cref="ArtifactNode.SetDense"/>, the reader parses and checks them once, and the generator reads
/// <see cref="ArtifactNode.Dense"/>. The fused <c>activation</c> stays a separate attribute (other kinds share it).
/// </summary>
public sealed class DenseAttributes : IEquatable<DenseAttributes>
{
    public DenseAttributes(bool transA, DenseLayout layout, int n = 0, int k = 0)
    {
        bool wantsN = layout == DenseLayout.Panels4, wantsK = layout is DenseLayout.Panels4 or DenseLayout.Nk4;
        if (wantsN != n > 0 || wantsK != k > 0 || n < 0 || k < 0)
            throw new FormatException($"a Dense kernel of layout {LayoutText(layout)} has {(wantsN ? "n and k" : wantsK ? "k" : "neither n nor k")}, positive");
        TransA = transA; Layout = layout; N = n; K = k;
    }

    /// <summary>x is read transposed (several rows only).</summary>
    public bool TransA { get; }
    public DenseLayout Layout { get; }
    /// <summary>The true number of outputs (panels4; 0 otherwise).</summary>
    public int N { get; }
    /// <summary>The true number of inputs (panels4 and nk4; 0 otherwise).</summary>
    public int K { get; }

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
            "nk4" => DenseLayout.Nk4,
            var other => throw new FormatException($"unknown Dense layout '{other}'"),
        };
        return new DenseAttributes(transA, layout, Int("n"), Int("k"));
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["transA"] = TransA ? "1" : "0";
        attributes["layout"] = LayoutText(Layout);
        if (N > 0) attributes["n"] = N.ToString(CultureInfo.InvariantCulture);
        if (K > 0) attributes["k"] = K.ToString(CultureInfo.InvariantCulture);
    }

    static string LayoutText(DenseLayout layout) => layout switch
    {
        DenseLayout.Panels4 => "panels4",
        DenseLayout.Nk8 => "nk8",
        DenseLayout.Nk4 => "nk4",
        _ => "kn",
    };

    public bool Equals(DenseAttributes? other) => other is not null && TransA == other.TransA && Layout == other.Layout && N == other.N && K == other.K;

    public override bool Equals(object? obj) => Equals(obj as DenseAttributes);

    public override int GetHashCode() => ((TransA ? 1 : 0) * 31 + (int)Layout) * 31 * 31 + N * 31 + K;
}
