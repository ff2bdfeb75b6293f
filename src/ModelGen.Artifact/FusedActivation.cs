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
/// One element-wise function with its parameters (text "Op:alpha:beta" as <see cref="Activations.Format"/>; "Op" alone
/// reads with the operator's defaults): a step of an <see cref="ActivationChain"/>, or a recurrent layer's gate function.
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

    internal void WriteTo(IDictionary<string, string> attributes, string key) => attributes[key] = Text;
}

/// <summary>
/// The element-wise functions fused into a kernel's output, applied in order (attribute <c>activation</c>: the steps'
/// texts separated by <see cref="Activations.ChainSeparator"/>, "LeakyRelu:0.2:0|Clip:-0.4:Infinity"), on any kind that
/// carries one (Conv, Dense, Gemm, Binary, BatchNorm, ConvTranspose…). The compiler writes it with
/// <see cref="ArtifactNode.SetActivation"/>, the reader parses and checks it once, and the generator reads <see cref="ArtifactNode.Activation"/>.
/// </summary>
public sealed class ActivationChain : IEquatable<ActivationChain>
{
    public ActivationChain(IReadOnlyList<FusedActivation> steps)
    {
        if (steps.Count == 0) throw new FormatException("an activation chain has at least one step");
        Steps = steps;
    }

    public IReadOnlyList<FusedActivation> Steps { get; }

    public string Text => string.Join(Activations.ChainSeparator.ToString(), System.Linq.Enumerable.Select(Steps, s => s.Text));

    /// <summary>The chain its text form names.</summary>
    public static ActivationChain Parse(string text)
    {
        var steps = new List<FusedActivation>();
        foreach (var (op, alpha, beta) in Activations.ParseChain(text)) steps.Add(new FusedActivation(op, alpha, beta));
        return new ActivationChain(steps);
    }

    internal static bool Has(IDictionary<string, string> attributes) => attributes.ContainsKey("activation");

    internal static ActivationChain Read(IDictionary<string, string> attributes) => Parse(attributes.Text("activation"));

    internal void WriteTo(IDictionary<string, string> attributes) => attributes["activation"] = Text;

    public bool Equals(ActivationChain? other) => other is not null && System.Linq.Enumerable.SequenceEqual(Steps, other.Steps);

    public override bool Equals(object? obj) => Equals(obj as ActivationChain);

    public override int GetHashCode() => Steps.Count == 0 ? 0 : Steps[0].GetHashCode() * 31 + Steps.Count;
}
