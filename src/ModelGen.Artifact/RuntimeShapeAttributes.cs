using System;
using System.Collections.Generic;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>
/// A <see cref="KernelKind.CheckShape"/> kernel: the shape parameter given at run time must, under <c>rule</c> (reshape,
/// split, squeeze, unsqueeze, reduce), give the <c>expected</c> shape from the input's (<c>in</c>). Reshape has
/// <c>allowzero</c>; reduce has <c>keepdims</c> (absent: 1), <c>noop</c> (absent: 0) and the <c>axes</c>.
/// </summary>
public sealed class CheckShapeAttributes
{
    public static readonly string[] Rules = { "reshape", "split", "squeeze", "unsqueeze", "reduce" };

    public CheckShapeAttributes(string rule, int[] input, int[] expected, bool allowZero = false, bool keepDims = true, bool noop = false, int[]? axes = null)
    {
        if (Array.IndexOf(Rules, rule) < 0) throw new FormatException($"unknown shape rule '{rule}'");
        if (rule == "reduce" && axes is null) throw new FormatException("a reduce shape check has its axes");
        Rule = rule; In = input; Expected = expected; AllowZero = allowZero; KeepDims = keepDims; Noop = noop; Axes = axes;
    }

    public string Rule { get; }
    public int[] In { get; }
    public int[] Expected { get; }
    public bool AllowZero { get; }
    public bool KeepDims { get; }
    public bool Noop { get; }
    public int[]? Axes { get; }

    internal static CheckShapeAttributes Read(IDictionary<string, string> attributes)
    {
        string rule = attributes.Text("rule");
        bool reshape = rule == "reshape", reduce = rule == "reduce";
        return new CheckShapeAttributes(rule, attributes.Ints("in"), attributes.Ints("expected"),
            reshape && attributes.Flag("allowzero"),
            !reduce || !attributes.ContainsKey("keepdims") || attributes.Flag("keepdims"),
            reduce && attributes.ContainsKey("noop") && attributes.Flag("noop"),
            reduce ? attributes.Ints("axes") : null);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["rule"] = Rule;
        attributes["in"] = ArtifactText.Ints(In);
        attributes["expected"] = ArtifactText.Ints(Expected);
        if (Rule == "reshape") attributes["allowzero"] = AttributeReading.Flag(AllowZero);
        if (Rule == "reduce")
        {
            attributes["keepdims"] = AttributeReading.Flag(KeepDims);
            attributes["noop"] = AttributeReading.Flag(Noop);
            attributes["axes"] = ArtifactText.Ints(Axes!);
        }
    }
}

/// <summary>
/// A parameter of a run-time shape kernel (Slice, Pad, Resize): the kernel's input <c>@i</c> (given when the model
/// runs), int64 constants <c>=a,b…</c>, or float32 constants <c>=fa,b…</c>.
/// </summary>
public sealed class RuntimeParameter
{
    RuntimeParameter(int input, long[]? longs, float[]? floats)
    {
        Input = input; Longs = longs; Floats = floats;
    }

    /// <summary>The kernel input that carries it; −1 for a constant.</summary>
    public int Input { get; }
    /// <summary>The int64 constants, or null.</summary>
    public long[]? Longs { get; }
    /// <summary>The float32 constants, or null.</summary>
    public float[]? Floats { get; }

    public static RuntimeParameter OfInput(int input) =>
        input >= 1 ? new RuntimeParameter(input, null, null) : throw new FormatException($"a run-time parameter's input {input} is not after x");

    public static RuntimeParameter OfLongs(long[] values) => new RuntimeParameter(-1, values, null);

    public static RuntimeParameter OfFloats(float[] values) => new RuntimeParameter(-1, null, values);

    internal static RuntimeParameter? Read(IDictionary<string, string> attributes, string key)
    {
        if (!attributes.TryGetValue(key, out string? v)) return null;
        if (v.StartsWith("@", StringComparison.Ordinal)) return OfInput(ArtifactText.ParseInt(v.Substring(1)));
        if (v.StartsWith("=f", StringComparison.Ordinal)) return OfFloats(AttributeReading.ParseFloats(v.Substring(2)));
        if (v.StartsWith("=", StringComparison.Ordinal)) return OfLongs(AttributeReading.ParseLongs(v.Substring(1)));
        throw new FormatException($"{key} '{v}' is not @input, =int64s or =ffloats");
    }

    internal string Text() =>
        Floats is not null ? "=f" + AttributeReading.Floats(Floats) : Longs is not null ? "=" + AttributeReading.Longs(Longs) : "@" + Input.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// A <see cref="KernelKind.SliceRuntime"/> or <see cref="KernelKind.PadRuntime"/> kernel: the input's shape (<c>in</c>),
/// the pad <c>mode</c> (absent: constant), and its parameters by name (Slice: starts, ends, axes, steps; Pad: pads,
/// value, axes), each a <see cref="RuntimeParameter"/>.
/// </summary>
public sealed class RuntimeShapeAttributes
{
    static readonly string[] SliceParameters = { "starts", "ends", "axes", "steps" }, PadParameters = { "pads", "value", "axes" };

    public RuntimeShapeAttributes(int[] input, IDictionary<string, RuntimeParameter> parameters, string? mode = null)
    {
        if (mode is not (null or "constant" or "reflect" or "edge")) throw new FormatException($"unknown pad mode '{mode}'");
        In = input; Parameters = parameters; Mode = mode;
    }

    public int[] In { get; }
    /// <summary>The parameters the kernel has, by name.</summary>
    public IDictionary<string, RuntimeParameter> Parameters { get; }
    /// <summary>Pad's mode; null: not given (constant).</summary>
    public string? Mode { get; }

    public RuntimeParameter? Parameter(string name) => Parameters.TryGetValue(name, out var p) ? p : null;

    public static bool Has(KernelKind kind) => kind is KernelKind.SliceRuntime or KernelKind.PadRuntime;

    internal static RuntimeShapeAttributes Read(KernelKind kind, IDictionary<string, string> attributes)
    {
        var parameters = new SortedDictionary<string, RuntimeParameter>(StringComparer.Ordinal);
        foreach (string name in kind == KernelKind.SliceRuntime ? SliceParameters : PadParameters)
            if (RuntimeParameter.Read(attributes, name) is { } p) parameters[name] = p;
        return new RuntimeShapeAttributes(attributes.Ints("in"), parameters, attributes.TryGetValue("mode", out string? mode) ? mode : null);
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        foreach (var p in Parameters) attributes[p.Key] = p.Value.Text();
        attributes["in"] = ArtifactText.Ints(In);
        if (Mode is not null) attributes["mode"] = Mode;
    }
}

/// <summary>
/// A <see cref="KernelKind.ResizeRuntime"/> kernel, its scales or sizes given at run time: the input's shape (<c>in</c>),
/// <c>transform</c> (the coordinate transformation), <c>nearest</c> (the rounding), <c>mode</c> (nearest, linear, cubic),
/// <c>cubic</c> (a[,exclude]), the aspect-ratio <c>policy</c>, the resized <c>axes</c> (absent: all), the parameters
/// <c>scales</c>, <c>sizes</c> and <c>roi</c> (<see cref="RuntimeParameter"/>) and the <c>extrapolation</c> value (absent: 0).
/// </summary>
public sealed class ResizeRuntimeAttributes
{
    public static readonly string[] Transforms = { "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric", "tf_crop_and_resize" };
    public static readonly string[] NearestModes = { "round_prefer_floor", "round_prefer_ceil", "floor", "ceil" };
    public static readonly string[] Modes = { "nearest", "linear", "cubic" };
    public static readonly string[] Policies = { "stretch", "not_larger", "not_smaller" };

    public ResizeRuntimeAttributes(int[] input, int transform, int nearest, int mode, float cubicA, bool excludeOutside, int policy, int[]? axes,
        RuntimeParameter? scales, RuntimeParameter? sizes, RuntimeParameter? roi, float? extrapolation)
    {
        if (transform < 0 || transform >= Transforms.Length || nearest < 0 || nearest >= NearestModes.Length || mode < 0 || mode >= Modes.Length || policy < 0 || policy >= Policies.Length)
            throw new FormatException("a Resize's transform, nearest mode, mode and policy are among the known ones");
        In = input; Transform = transform; Nearest = nearest; Mode = mode; CubicA = cubicA; ExcludeOutside = excludeOutside; Policy = policy; Axes = axes;
        Scales = scales; Sizes = sizes; Roi = roi; Extrapolation = extrapolation;
    }

    public int[] In { get; }
    /// <summary>Index into <see cref="Transforms"/>.</summary>
    public int Transform { get; }
    /// <summary>Index into <see cref="NearestModes"/>.</summary>
    public int Nearest { get; }
    /// <summary>Index into <see cref="Modes"/>.</summary>
    public int Mode { get; }
    public float CubicA { get; }
    public bool ExcludeOutside { get; }
    /// <summary>Index into <see cref="Policies"/>.</summary>
    public int Policy { get; }
    /// <summary>The resized axes; null: all of them.</summary>
    public int[]? Axes { get; }
    public RuntimeParameter? Scales { get; }
    public RuntimeParameter? Sizes { get; }
    public RuntimeParameter? Roi { get; }
    /// <summary>What tf_crop_and_resize writes outside the input; null: not given.</summary>
    public float? Extrapolation { get; }

    internal static ResizeRuntimeAttributes Read(IDictionary<string, string> attributes)
    {
        string[] cubic = attributes.TryGetValue("cubic", out string? c) ? c.Split(',') : new[] { "-0.75" };
        if (cubic.Length > 2 || cubic.Length == 2 && cubic[1] != "exclude") throw new FormatException("cubic must be a[,exclude]");
        return new ResizeRuntimeAttributes(attributes.Ints("in"), attributes.Choice("transform", Transforms), attributes.Choice("nearest", NearestModes),
            attributes.Choice("mode", Modes), ArtifactText.ParseFloat(cubic[0]), cubic.Length == 2, attributes.Choice("policy", Policies), attributes.OptionalInts("axes"),
            RuntimeParameter.Read(attributes, "scales"), RuntimeParameter.Read(attributes, "sizes"), RuntimeParameter.Read(attributes, "roi"), attributes.OptionalFloat("extrapolation"));
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        if (Scales is not null) attributes["scales"] = Scales.Text();
        if (Sizes is not null) attributes["sizes"] = Sizes.Text();
        if (Roi is not null) attributes["roi"] = Roi.Text();
        if (Extrapolation is { } extrapolation) attributes["extrapolation"] = ArtifactText.Float(extrapolation);
        attributes["in"] = ArtifactText.Ints(In);
        attributes["transform"] = Transforms[Transform];
        attributes["nearest"] = NearestModes[Nearest];
        attributes["mode"] = Modes[Mode];
        attributes["cubic"] = ArtifactText.Float(CubicA) + (ExcludeOutside ? ",exclude" : "");
        attributes["policy"] = Policies[Policy];
        if (Axes is not null) attributes["axes"] = ArtifactText.Ints(Axes);
    }
}
