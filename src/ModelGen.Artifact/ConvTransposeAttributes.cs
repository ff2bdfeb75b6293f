using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// A <see cref="KernelKind.ConvTranspose"/> kernel's geometry: the spatial sizes in and out (<c>in</c>, <c>out</c>), the
/// window (<c>kernel</c>, <c>strides</c>, <c>dilations</c>, <c>padbegin</c>), one per spatial axis each, and the <c>group</c>.
/// </summary>
public sealed class ConvTransposeAttributes
{
    public ConvTransposeAttributes(int[] input, int[] output, int[] kernel, int[] strides, int[] dilations, int[] padBegin, int group)
    {
        int rank = input.Length;
        if (output.Length != rank || kernel.Length != rank || strides.Length != rank || dilations.Length != rank || padBegin.Length != rank)
            throw new FormatException("a ConvTranspose has as many sizes out, kernel sizes, strides, dilations and pads as sizes in");
        if (group < 1) throw new FormatException($"group {group} is not positive");
        In = input; Out = output; Kernel = kernel; Strides = strides; Dilations = dilations; PadBegin = padBegin; Group = group;
    }

    public int[] In { get; }
    public int[] Out { get; }
    public int[] Kernel { get; }
    public int[] Strides { get; }
    public int[] Dilations { get; }
    public int[] PadBegin { get; }
    public int Group { get; }

    internal static ConvTransposeAttributes Read(IDictionary<string, string> attributes) =>
        new ConvTransposeAttributes(attributes.Ints("in"), attributes.Ints("out"), attributes.Ints("kernel"), attributes.Ints("strides"),
            attributes.Ints("dilations"), attributes.Ints("padbegin"), attributes.Int("group"));

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["in"] = ArtifactText.Ints(In);
        attributes["out"] = ArtifactText.Ints(Out);
        attributes["kernel"] = ArtifactText.Ints(Kernel);
        attributes["strides"] = ArtifactText.Ints(Strides);
        attributes["dilations"] = ArtifactText.Ints(Dilations);
        attributes["padbegin"] = ArtifactText.Ints(PadBegin);
        attributes["group"] = ArtifactText.Int(Group);
    }
}

/// <summary>
/// The plane of a dilated <see cref="KernelKind.DepthwiseInt8"/> kernel (attribute <c>plane</c>: rows,width): one channel
/// quantized with the zero point in its padding. Absent on the undilated form.
/// </summary>
public sealed class DepthwisePlane
{
    public DepthwisePlane(int rows, int width)
    {
        if (rows < 1 || width < 1) throw new FormatException("a depthwise plane's rows and width are positive");
        Rows = rows; Width = width;
    }

    public int Rows { get; }
    public int Width { get; }

    internal static DepthwisePlane? Read(IDictionary<string, string> attributes)
    {
        if (attributes.OptionalInts("plane") is not { } plane) return null;
        return plane.Length == 2 ? new DepthwisePlane(plane[0], plane[1]) : throw new FormatException("plane must be rows,width");
    }

    internal void WriteTo(IDictionary<string, string> attributes) => attributes["plane"] = ArtifactText.Ints(new[] { Rows, Width });
}
