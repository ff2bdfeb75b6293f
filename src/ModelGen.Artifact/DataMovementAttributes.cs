using System;
using System.Collections.Generic;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>
/// A <see cref="KernelKind.Remap"/> kernel's plan: iterate <c>shape</c>, read x at <c>base</c> + Σ index·<c>strides</c>
/// (an axis with a table <c>map{d}</c> reads the table's entry instead of the index; −1 reads <c>fill</c>), write y
/// contiguously or, with <c>ystrides</c>, at <c>ybase</c> + Σ index·ystrides.
/// </summary>
public sealed class RemapAttributes
{
    public RemapAttributes(int[] shape, int xBase, int[] strides, int[]?[] maps, float? fill = null, int yBase = 0, int[]? yStrides = null)
    {
        if (strides.Length != shape.Length || maps.Length != shape.Length || yStrides is not null && yStrides.Length != shape.Length)
            throw new FormatException("a Remap has a stride (and a y stride) per axis of its shape");
        for (int d = 0; d < shape.Length; d++)
            if (maps[d] is { } map && map.Length != shape[d]) throw new FormatException($"a Remap's table for axis {d} has {map.Length} entries, not {shape[d]}");
        Shape = shape; Base = xBase; Strides = strides; Maps = maps; Fill = fill; YBase = yBase; YStrides = yStrides;
    }

    public int[] Shape { get; }
    /// <summary>Where x is read from at index 0.</summary>
    public int Base { get; }
    public int[] Strides { get; }
    /// <summary>Per axis, the table of source indices (−1: fill), or null: the index itself.</summary>
    public int[]?[] Maps { get; }
    /// <summary>What an entry −1 reads; null when no table has one.</summary>
    public float? Fill { get; }
    public int YBase { get; }
    /// <summary>y's strides; null when y is written contiguously (from 0).</summary>
    public int[]? YStrides { get; }

    static string MapKey(int d) => "map" + d.ToString(CultureInfo.InvariantCulture);

    internal static RemapAttributes Read(IDictionary<string, string> attributes)
    {
        int[] shape = attributes.Ints("shape");
        var maps = new int[]?[shape.Length];
        for (int d = 0; d < shape.Length; d++) maps[d] = attributes.OptionalInts(MapKey(d));
        int[]? yStrides = attributes.OptionalInts("ystrides");
        return new RemapAttributes(shape, attributes.Int("base"), attributes.Ints("strides"), maps, attributes.OptionalFloat("fill"),
            yStrides is null ? 0 : attributes.Int("ybase"), yStrides);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["shape"] = ArtifactText.Ints(Shape);
        attributes["base"] = ArtifactText.Int(Base);
        attributes["strides"] = ArtifactText.Ints(Strides);
        for (int d = 0; d < Maps.Length; d++)
            if (Maps[d] is { } map) attributes[MapKey(d)] = ArtifactText.Ints(map);
        if (Fill is { } fill) attributes["fill"] = ArtifactText.Float(fill);
        if (YStrides is not null)
        {
            attributes["ybase"] = ArtifactText.Int(YBase);
            attributes["ystrides"] = ArtifactText.Ints(YStrides);
        }
    }
}

/// <summary>A <see cref="KernelKind.GatherRows"/> kernel: x seen as [<c>outer</c>, <c>axis</c>, <c>inner</c>], rows of the middle axis picked by run-time indices.</summary>
public sealed class GatherRowsAttributes
{
    public GatherRowsAttributes(int outer, int axis, int inner)
    {
        if (outer < 0 || axis < 0 || inner < 0) throw new FormatException("a GatherRows' outer, axis and inner sizes are not negative");
        Outer = outer; Axis = axis; Inner = inner;
    }

    public int Outer { get; }
    /// <summary>The size of the axis the indices select from.</summary>
    public int Axis { get; }
    public int Inner { get; }

    internal static GatherRowsAttributes Read(IDictionary<string, string> attributes) =>
        new GatherRowsAttributes(attributes.Int("outer"), attributes.Int("axis"), attributes.Int("inner"));

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["outer"] = ArtifactText.Int(Outer);
        attributes["axis"] = ArtifactText.Int(Axis);
        attributes["inner"] = ArtifactText.Int(Inner);
    }
}
