using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// The attribute of a <see cref="KernelKind.Unary"/> kernel: its element-wise <c>function</c>, text "Op:alpha:beta"
/// (<see cref="Activations.Format"/>; "Op" alone reads with the operator's defaults). The compiler writes it with
/// <see cref="ArtifactNode.SetUnary"/>, the reader parses and checks it once, and the generator reads <see cref="ArtifactNode.Unary"/>.
/// </summary>
public sealed class UnaryAttributes : IEquatable<UnaryAttributes>
{
    public UnaryAttributes(string op, float alpha, float beta)
    {
        Activations.Parse(op); // a known function, or FormatException
        Op = op; Alpha = alpha; Beta = beta;
    }

    public string Op { get; }
    public float Alpha { get; }
    public float Beta { get; }

    internal static UnaryAttributes Read(IDictionary<string, string> attributes)
    {
        var (op, alpha, beta) = Activations.Parse(attributes.TryGetValue("function", out string? f) ? f : throw new FormatException("missing attribute 'function'"));
        return new UnaryAttributes(op, alpha, beta);
    }

    internal void WriteTo(IDictionary<string, string> attributes) => attributes["function"] = Activations.Format(Op, Alpha, Beta);

    public bool Equals(UnaryAttributes? other) => other is not null && Op == other.Op && Alpha.Equals(other.Alpha) && Beta.Equals(other.Beta);

    public override bool Equals(object? obj) => Equals(obj as UnaryAttributes);

    public override int GetHashCode() => Op.GetHashCode() * 31 + Alpha.GetHashCode();
}
