using System;
using System.Collections.Generic;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>
/// The quantization of an int8-arithmetic layer (<see cref="Has"/>): its input's uint8 quantization (<c>scale</c>,
/// <c>zero</c>), the layer-wide <c>multiplier</c> its float16 per-channel ratios scale (absent: float32 multipliers),
/// the <c>bias_shift</c> of its int16 biases (absent: 0), and the requantization to uint8 for the next int8 layer, if
/// any. The compiler writes it with <see cref="ArtifactNode.SetInt8Layer"/>, the reader parses and checks it once,
/// and the generator reads <see cref="ArtifactNode.Int8Layer"/>.
/// </summary>
public sealed class Int8LayerAttributes : IEquatable<Int8LayerAttributes>
{
    public Int8LayerAttributes(float scale, int zero, float? multiplier, int biasShift, RequantAttributes? requant)
    {
        if (biasShift < 0 || biasShift > 31) throw new FormatException($"bias_shift {biasShift} is not within 0…31");
        Scale = scale; Zero = zero; Multiplier = multiplier; BiasShift = biasShift; Requant = requant;
    }

    /// <summary>The input's uint8 quantization scale.</summary>
    public float Scale { get; }
    /// <summary>The input's uint8 zero point.</summary>
    public int Zero { get; }
    /// <summary>The layer-wide multiplier of float16 per-channel ratios; null when the multipliers are float32.</summary>
    public float? Multiplier { get; }
    /// <summary>How far the int16 biases were shifted right (0: not shifted).</summary>
    public int BiasShift { get; }
    /// <summary>The requantization to uint8; null when the layer writes float32 (and applies its activation).</summary>
    public RequantAttributes? Requant { get; }

    /// <summary>The kernel kinds of int8 arithmetic.</summary>
    public static bool Has(KernelKind kind) => kind is KernelKind.DenseInt8 or KernelKind.ConvInt8 or KernelKind.DepthwiseInt8;

    internal static Int8LayerAttributes Read(IDictionary<string, string> attributes)
    {
        string Get(string key) => attributes.TryGetValue(key, out string? v) ? v : throw new FormatException($"missing attribute '{key}'");
        return new Int8LayerAttributes(ArtifactText.ParseFloat(Get("scale")), ArtifactText.ParseInt(Get("zero")),
            attributes.ContainsKey("multiplier") ? ArtifactText.ParseFloat(Get("multiplier")) : null,
            attributes.ContainsKey("bias_shift") ? ArtifactText.ParseInt(Get("bias_shift")) : 0,
            attributes.ContainsKey("requant") ? RequantAttributes.Read(Get("requant"), Get("out_zero"), Get("out_scale")) : null);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["scale"] = ArtifactText.Float(Scale);
        attributes["zero"] = ArtifactText.Int(Zero);
        if (Multiplier is { } multiplier) attributes["multiplier"] = ArtifactText.Float(multiplier);
        if (BiasShift != 0) attributes["bias_shift"] = ArtifactText.Int(BiasShift);
        Requant?.WriteTo(attributes);
    }

    public bool Equals(Int8LayerAttributes? other) => other is not null && Scale.Equals(other.Scale) && Zero == other.Zero
        && Multiplier.Equals(other.Multiplier) && BiasShift == other.BiasShift && Equals(Requant, other.Requant);

    public override bool Equals(object? obj) => Equals(obj as Int8LayerAttributes);

    public override int GetHashCode() => (Scale.GetHashCode() * 31 + Zero) * 31 + BiasShift;
}

/// <summary>
/// The fixed-point requantization of an int8 layer that writes uint8 (attributes <c>requant</c> = shift, scale, lo,
/// hi[, narrow], <c>out_zero</c>, <c>out_scale</c>): q = clamp(zero + ⌊(sum·M + 2^(shift−1)) / 2^shift⌋, lo, hi) with
/// M = (long)round(multiplier·scale) per channel. Narrow: every sum·M + rounding fits int32 (one 32-bit multiply).
/// </summary>
public sealed class RequantAttributes : IEquatable<RequantAttributes>
{
    public RequantAttributes(int shift, float scale, int lo, int hi, bool narrow, int outZero, float outScale)
    {
        if (shift < 1 || shift > 62 || lo < 0 || hi > 255 || lo > hi || outZero < 0 || outZero > 255)
            throw new FormatException("requant shift must be 1…62 and lo ≤ hi, zero in 0…255");
        if (narrow && (shift > 31 || (1L << (shift - 1)) + ((long)outZero << shift) > int.MaxValue))
            throw new FormatException("a narrow requant needs 2^(shift−1) + zero·2^shift within int32");
        Shift = shift; Scale = scale; Lo = lo; Hi = hi; Narrow = narrow; OutZero = outZero; OutScale = outScale;
    }

    public int Shift { get; }
    /// <summary>The factor of the per-channel float32 multiplier that gives the integer one.</summary>
    public float Scale { get; }
    /// <summary>The clamp (the fused activation).</summary>
    public int Lo { get; }
    public int Hi { get; }
    public bool Narrow { get; }
    /// <summary>The output's uint8 quantization.</summary>
    public int OutZero { get; }
    public float OutScale { get; }

    internal static RequantAttributes Read(string requant, string outZero, string outScale)
    {
        string[] parts = requant.Split(',');
        if (parts.Length is not (4 or 5) || parts.Length == 5 && parts[4] != "narrow") throw new FormatException("requant must be shift,scale,lo,hi[,narrow]");
        return new RequantAttributes(ArtifactText.ParseInt(parts[0]), ArtifactText.ParseFloat(parts[1]), ArtifactText.ParseInt(parts[2]),
            ArtifactText.ParseInt(parts[3]), parts.Length == 5, ArtifactText.ParseInt(outZero), ArtifactText.ParseFloat(outScale));
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["out_zero"] = ArtifactText.Int(OutZero);
        attributes["out_scale"] = ArtifactText.Float(OutScale);
        attributes["requant"] = $"{ArtifactText.Int(Shift)},{ArtifactText.Float(Scale)},{ArtifactText.Int(Lo)},{ArtifactText.Int(Hi)}{(Narrow ? ",narrow" : "")}";
    }

    public bool Equals(RequantAttributes? other) => other is not null && Shift == other.Shift && Scale.Equals(other.Scale) && Lo == other.Lo
        && Hi == other.Hi && Narrow == other.Narrow && OutZero == other.OutZero && OutScale.Equals(other.OutScale);

    public override bool Equals(object? obj) => Equals(obj as RequantAttributes);

    public override int GetHashCode() => ((Shift * 31 + Lo) * 31 + Hi) * 31 + OutZero;
}
