using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// The attributes of an <see cref="KernelKind.AveragePool"/> kernel beside its window: whether the padding counts in the
/// mean (<c>countpad</c>, 0/1) and, for uint8 input and output, the zero point they share (<c>zero</c>).
/// </summary>
public sealed class AveragePoolAttributes
{
    public AveragePoolAttributes(bool countPad, int? zero = null)
    {
        if (zero is < 0 or > 255) throw new FormatException($"an AveragePool's zero point {zero} is not within 0…255");
        CountPad = countPad; Zero = zero;
    }

    public bool CountPad { get; }
    /// <summary>The uint8 zero point; null when the pool reads and writes float32.</summary>
    public int? Zero { get; }

    internal static AveragePoolAttributes Read(IDictionary<string, string> attributes) =>
        new AveragePoolAttributes(attributes.Flag("countpad"), attributes.ContainsKey("zero") ? attributes.Int("zero") : null);

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        if (Zero is { } zero) attributes["zero"] = ArtifactText.Int(zero);
        attributes["countpad"] = AttributeReading.Flag(CountPad);
    }
}

/// <summary>
/// A <see cref="KernelKind.Pool3D"/> kernel: max or average (<c>op</c>) over a 3-D window (<c>kernel</c>, <c>strides</c>,
/// <c>dilations</c>, <c>padbegin</c>, <c>padend</c>, three each), the padding counted in the mean or not (<c>countpad</c>).
/// </summary>
public sealed class Pool3DAttributes
{
    public Pool3DAttributes(int[] kernel, int[] strides, int[] dilations, int[] padBegin, int[] padEnd, bool average, bool countPad)
    {
        if (kernel.Length != 3 || strides.Length != 3 || dilations.Length != 3 || padBegin.Length != 3 || padEnd.Length != 3)
            throw new FormatException("a 3-D pool has 3 kernel sizes, strides, dilations and pads at each end");
        Kernel = kernel; Strides = strides; Dilations = dilations; PadBegin = padBegin; PadEnd = padEnd; Average = average; CountPad = countPad;
    }

    public int[] Kernel { get; }
    public int[] Strides { get; }
    public int[] Dilations { get; }
    public int[] PadBegin { get; }
    public int[] PadEnd { get; }
    /// <summary>Average (true) or max.</summary>
    public bool Average { get; }
    public bool CountPad { get; }

    internal static Pool3DAttributes Read(IDictionary<string, string> attributes) =>
        new Pool3DAttributes(attributes.Ints("kernel"), attributes.Ints("strides"), attributes.Ints("dilations"), attributes.Ints("padbegin"),
            attributes.Ints("padend"), attributes.Choice("op", new[] { "max", "average" }) == 1, attributes.Flag("countpad"));

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["kernel"] = ArtifactText.Ints(Kernel);
        attributes["strides"] = ArtifactText.Ints(Strides);
        attributes["dilations"] = ArtifactText.Ints(Dilations);
        attributes["padbegin"] = ArtifactText.Ints(PadBegin);
        attributes["padend"] = ArtifactText.Ints(PadEnd);
        attributes["op"] = Average ? "average" : "max";
        attributes["countpad"] = AttributeReading.Flag(CountPad);
    }
}
