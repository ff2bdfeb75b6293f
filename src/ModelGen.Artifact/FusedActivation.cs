using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>An element-wise function of <see cref="Activations"/> with its parameters, checked when made (an unknown one is a <see cref="FormatException"/>).</summary>
public abstract class ElementFunction : IEquatable<ElementFunction>
{
    protected ElementFunction(string op, float alpha, float beta)
    {
        Activations.Parse(op); // a known function, or FormatException
        Op = op; Alpha = alpha; Beta = beta;
    }

    public string Op { get; }
    public float Alpha { get; }
    public float Beta { get; }

    /// <summary>The text form, "Op:alpha:beta" (<see cref="Activations.Format"/>).</summary>
    public string Text => Activations.Format(Op, Alpha, Beta);

    public bool Equals(ElementFunction? other) => other is not null && other.GetType() == GetType() && Op == other.Op && Alpha.Equals(other.Alpha) && Beta.Equals(other.Beta);

    public override bool Equals(object? obj) => Equals(obj as ElementFunction);

    public override int GetHashCode() => Op.GetHashCode() * 31 + Alpha.GetHashCode();
}

/// <summary>
/// The element-wise function fused into a kernel's output (attribute <c>activation</c>, text "Op:alpha:beta" as
/// <see cref="Activations.Format"/>; "Op" alone reads with the operator's defaults), on any kind that carries one (Conv,
/// Dense, Gemm, Binary, BatchNorm, ConvTranspose…); also a recurrent layer's gate functions. The compiler writes it with
/// <see cref="ArtifactNode.SetActivation"/>, the reader parses and checks it once, and the generator reads <see cref="ArtifactNode.Activation"/>.
/// </summary>
public sealed class FusedActivation : ElementFunction
{
    public FusedActivation(string op, float alpha, float beta) : base(op, alpha, beta) { }

    /// <summary>The function its text form names ("Op" or "Op:alpha:beta").</summary>
    public static FusedActivation Parse(string text)
    {
        var (op, alpha, beta) = Activations.Parse(text);
        return new FusedActivation(op, alpha, beta);
    }

    internal static bool Has(IDictionary<string, string> attributes) => attributes.ContainsKey("activation");

    internal static FusedActivation Read(IDictionary<string, string> attributes) => Parse(attributes.Text("activation"));

    internal void WriteTo(IDictionary<string, string> attributes, string key = "activation") => attributes[key] = Text;
}
