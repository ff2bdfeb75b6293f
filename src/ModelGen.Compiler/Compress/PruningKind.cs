namespace ModelGen.Compiler.Compress;

/// <summary>Where pruning may remove weights: anywhere in a layer, at most M − N in each group of M consecutive columns of a row, or whole output channels (<see cref="ChannelPruningPass"/>).</summary>
public enum PruningPattern { Unstructured, NOfM, Channels }

/// <summary>
/// A PruningKind value (<c>--pruning-kind</c>): the pattern of the removed weights and how the share of each layer is
/// chosen. unstructured: one magnitude threshold over every prunable layer; unstructured-sensitive: each layer its own
/// share, chosen from its measured sensitivity on the calibration data (<see cref="PruningSensitivity"/>); N:M: in each
/// row, each group of M consecutive columns keeps its N largest magnitudes, so the pattern fixes the amount; channels: the
/// share of each layer's output channels (neurons) with the least importance go, and the graph shrinks.
/// </summary>
public sealed record PruningKind(string Name, PruningPattern Pattern, int N = 0, int M = 0, bool BySensitivity = false)
{
    public static readonly PruningKind Unstructured = new("unstructured", PruningPattern.Unstructured);

    /// <summary>Every kind, by the name the option takes (a new kind is one more line).</summary>
    public static readonly IReadOnlyList<PruningKind> Kinds =
    [
        Unstructured,
        new("unstructured-sensitive", PruningPattern.Unstructured, BySensitivity: true),
        new("2:4", PruningPattern.NOfM, 2, 4),
        new("1:4", PruningPattern.NOfM, 1, 4),
        new("4:8", PruningPattern.NOfM, 4, 8),
        new("channels", PruningPattern.Channels),
    ];

    /// <summary>N:M: the share of the weights the pattern removes from the layers it applies to (2:4: 0.5).</summary>
    public double PatternSparsity => Pattern == PruningPattern.NOfM ? 1 - (double)N / M : double.NaN;

    /// <summary>The kind a PruningKind value names (case-insensitive; empty: unstructured); anything else is MG0007.</summary>
    public static PruningKind Parse(string? text, string modelPath)
    {
        if (string.IsNullOrWhiteSpace(text)) return Unstructured;
        return Kinds.FirstOrDefault(k => string.Equals(k.Name, text.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new ModelGenException(ErrorCodes.BadOption, modelPath,
                $"PruningKind (--pruning-kind) '{text}' is not one of {string.Join(", ", Kinds.Select(k => k.Name))}");
    }

    /// <summary>
    /// The share of the weights removed: Pruning for the unstructured kinds (required); for N:M the pattern's, which
    /// a given Pruning must equal. MG0007 otherwise, saying which value to give.
    /// </summary>
    public double Sparsity(double? pruning, string modelPath)
    {
        if (Pattern != PruningPattern.NOfM)
            return pruning ?? throw new ModelGenException(ErrorCodes.BadOption, modelPath,
                $"PruningKind {Name} needs Pruning (--pruning): the share of the weights removed, e.g. 0.9");
        if (pruning is double p && Math.Abs(p - PatternSparsity) > 1e-9)
            throw new ModelGenException(ErrorCodes.BadOption, modelPath, FormattableString.Invariant(
                $"PruningKind {Name} keeps {N} of every {M} consecutive weights of a row, which removes {PatternSparsity:0.###} of them; Pruning (--pruning) {p} disagrees: leave Pruning out (the pattern sets the amount) or give {PatternSparsity:0.###}"));
        return PatternSparsity;
    }
}
