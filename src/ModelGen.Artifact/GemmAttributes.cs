using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>The attributes of a <see cref="KernelKind.Gemm"/> kernel: y = alpha·a'·b' + beta·c, a and b read transposed or not (<c>transA</c>, <c>transB</c>: 0/1).</summary>
public sealed class GemmAttributes
{
    public GemmAttributes(bool transA, bool transB, float alpha, float beta)
    {
        TransA = transA; TransB = transB; Alpha = alpha; Beta = beta;
    }

    public bool TransA { get; }
    public bool TransB { get; }
    public float Alpha { get; }
    public float Beta { get; }

    internal static GemmAttributes Read(IDictionary<string, string> attributes) =>
        new GemmAttributes(attributes.Flag("transA"), attributes.Flag("transB"), attributes.Float("alpha"), attributes.Float("beta"));

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["transA"] = AttributeReading.Flag(TransA);
        attributes["transB"] = AttributeReading.Flag(TransB);
        attributes["alpha"] = ArtifactText.Float(Alpha);
        attributes["beta"] = ArtifactText.Float(Beta);
    }
}
