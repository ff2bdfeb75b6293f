using System;
using System.Collections.Generic;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>
/// How a <see cref="KernelKind.ResizeLinear"/> kernel resizes one axis: linear, between two source indices per output
/// index (<c>i0.{d}</c>, <c>i1.{d}</c>, the second's weight <c>w1.{d}</c>), or cubic, four taps each
/// (<c>c{tap}.{d}</c>, weights <c>cw{tap}.{d}</c>).
/// </summary>
public sealed class ResizeAxisTable
{
    ResizeAxisTable(int[]? low, int[]? high, float[]? weight, int[][]? taps, float[][]? tapWeights)
    {
        Low = low; High = high; Weight = weight; Taps = taps; TapWeights = tapWeights;
    }

    public static ResizeAxisTable Linear(int[] low, int[] high, float[] weight) =>
        low.Length == high.Length && low.Length == weight.Length ? new ResizeAxisTable(low, high, weight, null, null)
            : throw new FormatException("a linear resize table has as many low and high indices as weights");

    public static ResizeAxisTable Cubic(int[][] taps, float[][] weights)
    {
        if (taps.Length != 4 || weights.Length != 4) throw new FormatException("a cubic resize table has four taps");
        for (int tap = 0; tap < 4; tap++)
            if (taps[tap].Length != taps[0].Length || weights[tap].Length != taps[0].Length) throw new FormatException("a cubic resize table's taps and weights have one length");
        return new ResizeAxisTable(null, null, null, taps, weights);
    }

    /// <summary>Linear: the lower source index per output index (null for cubic).</summary>
    public int[]? Low { get; }
    public int[]? High { get; }
    /// <summary>Linear: the weight of <see cref="High"/>.</summary>
    public float[]? Weight { get; }
    /// <summary>Cubic: four source indices per output index, tap-major (null for linear).</summary>
    public int[][]? Taps { get; }
    public float[][]? TapWeights { get; }
    public bool IsCubic => Taps is not null;
}

/// <summary>The tables of a <see cref="KernelKind.ResizeLinear"/> kernel, one per resized axis (<see cref="ResizeAxisTable"/>; null: the axis is kept).</summary>
public sealed class ResizeLinearAttributes
{
    public ResizeLinearAttributes(ResizeAxisTable?[] axes)
    {
        Axes = axes;
    }

    /// <summary>By axis; an axis past the end, or null, is not resized.</summary>
    public ResizeAxisTable?[] Axes { get; }

    public ResizeAxisTable? Axis(int d) => d < Axes.Length ? Axes[d] : null;

    static string Key(string prefix, int d) => prefix + "." + d.ToString(CultureInfo.InvariantCulture);

    internal static ResizeLinearAttributes Read(IDictionary<string, string> attributes)
    {
        int rank = 0;
        foreach (string key in attributes.Keys)
            if (key.StartsWith("i0.", StringComparison.Ordinal) || key.StartsWith("c0.", StringComparison.Ordinal))
                rank = Math.Max(rank, ArtifactText.ParseInt(key.Substring(3)) + 1);
        if (rank > 64) throw new FormatException("a resize has at most 64 axes");
        var axes = new ResizeAxisTable?[rank];
        for (int d = 0; d < rank; d++)
        {
            if (attributes.ContainsKey(Key("c0", d)))
            {
                var taps = new int[4][];
                var weights = new float[4][];
                for (int tap = 0; tap < 4; tap++)
                {
                    taps[tap] = attributes.Ints(Key("c" + tap.ToString(CultureInfo.InvariantCulture), d));
                    weights[tap] = AttributeReading.ParseFloats(attributes.Text(Key("cw" + tap.ToString(CultureInfo.InvariantCulture), d)));
                }
                axes[d] = ResizeAxisTable.Cubic(taps, weights);
            }
            else if (attributes.ContainsKey(Key("i0", d)))
                axes[d] = ResizeAxisTable.Linear(attributes.Ints(Key("i0", d)), attributes.Ints(Key("i1", d)), AttributeReading.ParseFloats(attributes.Text(Key("w1", d))));
        }
        return new ResizeLinearAttributes(axes);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        for (int d = 0; d < Axes.Length; d++)
        {
            if (Axes[d] is not { } t) continue;
            if (t.Taps is { } taps)
            {
                for (int tap = 0; tap < 4; tap++)
                {
                    attributes[Key("c" + tap.ToString(CultureInfo.InvariantCulture), d)] = ArtifactText.Ints(taps[tap]);
                    attributes[Key("cw" + tap.ToString(CultureInfo.InvariantCulture), d)] = AttributeReading.Floats(t.TapWeights![tap]);
                }
                continue;
            }
            attributes[Key("i0", d)] = ArtifactText.Ints(t.Low!);
            attributes[Key("i1", d)] = ArtifactText.Ints(t.High!);
            attributes[Key("w1", d)] = AttributeReading.Floats(t.Weight!);
        }
    }
}
