using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// The attribute of a <see cref="KernelKind.Unary"/> kernel: its element-wise <c>function</c>, text "Op:alpha:beta"
/// (<see cref="Activations.Format"/>; "Op" alone reads with the operator's defaults). The compiler writes it with
/// <see cref="ArtifactNode.SetUnary"/>, the reader parses and checks it once, and the generator reads <see cref="ArtifactNode.Unary"/>.
/// </summary>
public sealed class UnaryAttributes : ElementFunction
{
    public UnaryAttributes(string op, float alpha, float beta) : base(op, alpha, beta) { }

    internal static UnaryAttributes Read(IDictionary<string, string> attributes)
    {
        var (op, alpha, beta) = Activations.Parse(attributes.Text("function"));
        return new UnaryAttributes(op, alpha, beta);
    }

    internal void WriteTo(IDictionary<string, string> attributes) => attributes["function"] = Text;
}
