using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// The attributes of the normalization kernels (<see cref="Has"/>). <see cref="KernelKind.Normalize"/>: <c>groups</c> runs of
/// <c>size</c> values, <c>params</c> ("count,per-group" or "count,per-index": how many scale and bias values, and whether
/// they go by channel or by position in the run), <c>epsilon</c>. <see cref="KernelKind.LRN"/>: <c>size</c>, <c>alpha</c>,
/// <c>beta</c>, <c>bias</c>. <see cref="KernelKind.BatchNorm"/>: <c>epsilon</c>. Fields a kind lacks are 0.
/// </summary>
public sealed class NormalizationAttributes
{
    NormalizationAttributes(int groups, int size, int paramCount, bool perIndex, float epsilon, float alpha, float beta, float bias)
    {
        if (groups < 0 || size < 0 || paramCount < 0) throw new FormatException("a normalization's groups, size and parameter count are not negative");
        Groups = groups; Size = size; ParamCount = paramCount; PerIndex = perIndex; Epsilon = epsilon; Alpha = alpha; Beta = beta; Bias = bias;
    }

    /// <summary>Normalize: runs of <paramref name="size"/> values, scale and bias per channel or per position in the run.</summary>
    public static NormalizationAttributes Normalize(int groups, int size, int paramCount, bool perIndex, float epsilon) =>
        new NormalizationAttributes(groups, size, paramCount, perIndex, epsilon, 0f, 0f, 0f);

    /// <summary>LRN: the sum over <paramref name="size"/> channels.</summary>
    public static NormalizationAttributes Lrn(int size, float alpha, float beta, float bias) => new NormalizationAttributes(0, size, 0, false, 0f, alpha, beta, bias);

    /// <summary>BatchNorm with its statistics given at run time.</summary>
    public static NormalizationAttributes BatchNorm(float epsilon) => new NormalizationAttributes(0, 0, 0, false, epsilon, 0f, 0f, 0f);

    public int Groups { get; }
    public int Size { get; }
    /// <summary>How many scale and bias values (Normalize).</summary>
    public int ParamCount { get; }
    /// <summary>Scale and bias go by position in the run (LayerNormalization), not by channel (Normalize).</summary>
    public bool PerIndex { get; }
    public float Epsilon { get; }
    public float Alpha { get; }
    public float Beta { get; }
    public float Bias { get; }

    public static bool Has(KernelKind kind) => kind is KernelKind.Normalize or KernelKind.LRN or KernelKind.BatchNorm;

    internal static NormalizationAttributes Read(KernelKind kind, IDictionary<string, string> attributes)
    {
        switch (kind)
        {
            case KernelKind.Normalize:
                string[] p = attributes.Text("params").Split(',');
                if (p.Length != 2 || p[1] is not ("per-group" or "per-index")) throw new FormatException("params must be count,per-group or count,per-index");
                return Normalize(attributes.Int("groups"), attributes.Int("size"), ArtifactText.ParseInt(p[0]), p[1] == "per-index", attributes.Float("epsilon"));
            case KernelKind.LRN:
                return Lrn(attributes.Int("size"), attributes.Float("alpha"), attributes.Float("beta"), attributes.Float("bias"));
            default:
                return BatchNorm(attributes.Float("epsilon"));
        }
    }

    internal void WriteTo(KernelKind kind, IDictionary<string, string> attributes)
    {
        switch (kind)
        {
            case KernelKind.Normalize:
                attributes["groups"] = ArtifactText.Int(Groups);
                attributes["size"] = ArtifactText.Int(Size);
                attributes["params"] = ArtifactText.Int(ParamCount) + (PerIndex ? ",per-index" : ",per-group");
                attributes["epsilon"] = ArtifactText.Float(Epsilon);
                break;
            case KernelKind.LRN:
                attributes["alpha"] = ArtifactText.Float(Alpha);
                attributes["beta"] = ArtifactText.Float(Beta);
                attributes["bias"] = ArtifactText.Float(Bias);
                attributes["size"] = ArtifactText.Int(Size);
                break;
            default:
                attributes["epsilon"] = ArtifactText.Float(Epsilon);
                break;
        }
    }
}
