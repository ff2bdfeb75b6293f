using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// The 2-D window of the windowed kernels (<see cref="Has"/>; 1-D windows have a height of 1): kernel, strides and
/// dilations (height, width), pads (top, left, bottom, right). The compiler writes it with
/// <see cref="ArtifactNode.SetWindow"/>, the reader parses and checks it once, and the generator reads
/// <see cref="ArtifactNode.Window"/>; its text form is the attributes <c>kernel</c>, <c>strides</c>, <c>dilations</c>, <c>pads</c>.
/// </summary>
public sealed class KernelWindow : IEquatable<KernelWindow>
{
    public KernelWindow(int[] kernel, int[] strides, int[] dilations, int[] pads)
    {
        if (kernel.Length != 2 || strides.Length != 2 || dilations.Length != 2 || pads.Length != 4)
            throw new FormatException("a window has 2 kernel sizes, strides and dilations and 4 pads");
        Kernel = kernel; Strides = strides; Dilations = dilations; Pads = pads;
    }

    /// <summary>Kernel height and width.</summary>
    public int[] Kernel { get; }
    /// <summary>Vertical and horizontal stride.</summary>
    public int[] Strides { get; }
    /// <summary>Vertical and horizontal dilation.</summary>
    public int[] Dilations { get; }
    /// <summary>Pads: top, left, bottom, right.</summary>
    public int[] Pads { get; }

    /// <summary>The kernel kinds that have a window.</summary>
    public static bool Has(KernelKind kind) => kind is KernelKind.Conv or KernelKind.MaxPool or KernelKind.MaxPoolU8 or KernelKind.AveragePool
        or KernelKind.ConvInt8 or KernelKind.DepthwiseInt8;

    /// <summary>Parses the window's attributes (dilations absent: 1, 1).</summary>
    internal static KernelWindow Read(IDictionary<string, string> attributes)
    {
        int[] Get(string key) => attributes.TryGetValue(key, out string? v) ? ArtifactText.ParseInts(v) : throw new FormatException($"missing attribute '{key}'");
        return new KernelWindow(Get("kernel"), Get("strides"), attributes.ContainsKey("dilations") ? Get("dilations") : new[] { 1, 1 }, Get("pads"));
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["kernel"] = ArtifactText.Ints(Kernel);
        attributes["strides"] = ArtifactText.Ints(Strides);
        attributes["dilations"] = ArtifactText.Ints(Dilations);
        attributes["pads"] = ArtifactText.Ints(Pads);
    }

    public bool Equals(KernelWindow? other) => other is not null && Same(Kernel, other.Kernel) && Same(Strides, other.Strides)
        && Same(Dilations, other.Dilations) && Same(Pads, other.Pads);

    public override bool Equals(object? obj) => Equals(obj as KernelWindow);

    public override int GetHashCode() => ((Kernel[0] * 31 + Kernel[1]) * 31 + Strides[0]) * 31 + Strides[1];

    static bool Same(int[] a, int[] b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
        return true;
    }
}
