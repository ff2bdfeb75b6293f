using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// The attributes of a <see cref="KernelKind.Binary"/> kernel: the operator (<c>op</c>, one of
/// <see cref="Activations.BinaryNames"/>) and, for opsets 1-6, B's shape aligned with A's axes (<c>bshape</c>).
/// </summary>
public sealed class BinaryAttributes
{
    public BinaryAttributes(string op, int[]? bShape = null)
    {
        if (Array.IndexOf(Activations.BinaryNames, op) < 0) throw new FormatException($"unknown binary operator '{op}'");
        Op = op; BShape = bShape;
    }

    public string Op { get; }
    /// <summary>B's shape lined up with A's axes (legacy broadcasting); null: B's own shape.</summary>
    public int[]? BShape { get; }

    internal static BinaryAttributes Read(IDictionary<string, string> attributes) => new BinaryAttributes(attributes.Text("op"), attributes.OptionalInts("bshape"));

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["op"] = Op;
        if (BShape is not null) attributes["bshape"] = ArtifactText.Ints(BShape);
    }
}

/// <summary>
/// The integer arithmetic of an <see cref="KernelKind.AddU8"/> kernel: y = clamp(zy + (ma·(a − za) + mb·(b − zb))
/// rounded ≫ shift, lo, hi), attributes <c>a_zero</c>, <c>b_zero</c>, <c>out_zero</c>, <c>out_scale</c>,
/// <c>multipliers</c> (ma,mb), <c>shift</c>, <c>clamp</c> (lo,hi).
/// </summary>
public sealed class AddU8Attributes
{
    public AddU8Attributes(int aZero, int bZero, int outZero, float outScale, int multiplierA, int multiplierB, int shift, int lo, int hi)
    {
        if (shift < 1 || shift > 30 || Math.Abs((long)multiplierA) > 1 << 20 || Math.Abs((long)multiplierB) > 1 << 20
            || aZero is < 0 or > 255 || bZero is < 0 or > 255 || outZero is < 0 or > 255 || lo < 0 || hi > 255 || lo > hi)
            throw new FormatException("an AddU8 has multipliers within ±2^20, shift 1…30, zero points and clamp in 0…255");
        AZero = aZero; BZero = bZero; OutZero = outZero; OutScale = outScale; MultiplierA = multiplierA; MultiplierB = multiplierB; Shift = shift; Lo = lo; Hi = hi;
    }

    public int AZero { get; }
    public int BZero { get; }
    public int OutZero { get; }
    public float OutScale { get; }
    public int MultiplierA { get; }
    public int MultiplierB { get; }
    public int Shift { get; }
    public int Lo { get; }
    public int Hi { get; }

    internal static AddU8Attributes Read(IDictionary<string, string> attributes)
    {
        int[] m = attributes.Ints("multipliers"), clamp = attributes.Ints("clamp");
        if (m.Length != 2 || clamp.Length != 2) throw new FormatException("an AddU8 has two multipliers and a clamp lo,hi");
        return new AddU8Attributes(attributes.Int("a_zero"), attributes.Int("b_zero"), attributes.Int("out_zero"), attributes.Float("out_scale"),
            m[0], m[1], attributes.Int("shift"), clamp[0], clamp[1]);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["a_zero"] = ArtifactText.Int(AZero);
        attributes["b_zero"] = ArtifactText.Int(BZero);
        attributes["out_zero"] = ArtifactText.Int(OutZero);
        attributes["out_scale"] = ArtifactText.Float(OutScale);
        attributes["multipliers"] = ArtifactText.Ints(new[] { MultiplierA, MultiplierB });
        attributes["shift"] = ArtifactText.Int(Shift);
        attributes["clamp"] = ArtifactText.Ints(new[] { Lo, Hi });
    }
}

/// <summary>Which bounds of a <see cref="KernelKind.ClipRuntime"/> kernel are inputs (attribute <c>bounds</c>: "", "min", "max" or "minmax").</summary>
public sealed class ClipRuntimeAttributes
{
    public ClipRuntimeAttributes(bool hasMin, bool hasMax)
    {
        HasMin = hasMin; HasMax = hasMax;
    }

    public bool HasMin { get; }
    public bool HasMax { get; }

    internal static ClipRuntimeAttributes Read(IDictionary<string, string> attributes) => attributes.Text("bounds") switch
    {
        "" => new ClipRuntimeAttributes(false, false),
        "min" => new ClipRuntimeAttributes(true, false),
        "max" => new ClipRuntimeAttributes(false, true),
        "minmax" => new ClipRuntimeAttributes(true, true),
        var other => throw new FormatException($"Clip bounds '{other}' are not min, max or minmax"),
    };

    internal void WriteTo(IDictionary<string, string> attributes) => attributes["bounds"] = (HasMin ? "min" : "") + (HasMax ? "max" : "");
}
