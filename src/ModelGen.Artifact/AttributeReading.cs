using System;
using System.Collections.Generic;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>Reads attribute values in their text form for the typed records: a missing or malformed value is a <see cref="FormatException"/>.</summary>
internal static class AttributeReading
{
    public static string Text(this IDictionary<string, string> attributes, string key) =>
        attributes.TryGetValue(key, out string? v) ? v : throw new FormatException($"missing attribute '{key}'");

    public static int Int(this IDictionary<string, string> attributes, string key) => ArtifactText.ParseInt(attributes.Text(key));

    public static float Float(this IDictionary<string, string> attributes, string key) => ArtifactText.ParseFloat(attributes.Text(key));

    public static int[] Ints(this IDictionary<string, string> attributes, string key) => ArtifactText.ParseInts(attributes.Text(key));

    public static int[]? OptionalInts(this IDictionary<string, string> attributes, string key) =>
        attributes.ContainsKey(key) ? attributes.Ints(key) : null;

    public static float? OptionalFloat(this IDictionary<string, string> attributes, string key) =>
        attributes.ContainsKey(key) ? attributes.Float(key) : null;

    /// <summary>A 0/1 flag.</summary>
    public static bool Flag(this IDictionary<string, string> attributes, string key) => attributes.Text(key) switch
    {
        "0" => false,
        "1" => true,
        var other => throw new FormatException($"{key} '{other}' is not 0 or 1"),
    };

    /// <summary>One of the given words, as its index.</summary>
    public static int Choice(this IDictionary<string, string> attributes, string key, string[] words)
    {
        string v = attributes.Text(key);
        int i = Array.IndexOf(words, v);
        return i >= 0 ? i : throw new FormatException($"{key} '{v}' is not one of {string.Join(", ", words)}");
    }

    public static string Flag(bool value) => value ? "1" : "0";

    public static string Floats(float[] values) => Join(values, ArtifactText.Float);

    public static float[] ParseFloats(string text) => ParseList(text, ArtifactText.ParseFloat);

    public static string Longs(long[] values) => Join(values, ArtifactText.Int);

    public static long[] ParseLongs(string text) => ParseList(text, v => long.Parse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));

    static string Join<T>(T[] values, Func<T, string> format)
    {
        var parts = new string[values.Length];
        for (int i = 0; i < values.Length; i++) parts[i] = format(values[i]);
        return string.Join(",", parts);
    }

    /// <summary>A comma list ("" is empty).</summary>
    static T[] ParseList<T>(string text, Func<string, T> parse)
    {
        if (text.Length == 0) return new T[0];
        string[] parts = text.Split(',');
        var result = new T[parts.Length];
        for (int i = 0; i < parts.Length; i++) result[i] = parse(parts[i]);
        return result;
    }
}
