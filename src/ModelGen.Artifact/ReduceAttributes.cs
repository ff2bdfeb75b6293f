using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// A <see cref="KernelKind.Reduce"/> kernel: <c>op</c> (Sum, Mean, Max) over the <c>reduced</c> sizes (x strides
/// <c>reducedstrides</c>) for each index of the <c>kept</c> sizes (x strides <c>keptstrides</c>).
/// </summary>
public sealed class ReduceAttributes
{
    /// <summary>The reductions the kernels compute.</summary>
    public static readonly string[] Ops = { "Sum", "Mean", "Max" };

    public ReduceAttributes(string op, int[] kept, int[] keptStrides, int[] reduced, int[] reducedStrides)
    {
        if (Array.IndexOf(Ops, op) < 0) throw new FormatException($"unknown reduction '{op}'");
        if (kept.Length != keptStrides.Length || reduced.Length != reducedStrides.Length) throw new FormatException("a reduction has a stride per kept and per reduced size");
        Op = op; Kept = kept; KeptStrides = keptStrides; Reduced = reduced; ReducedStrides = reducedStrides;
    }

    public string Op { get; }
    public int[] Kept { get; }
    public int[] KeptStrides { get; }
    public int[] Reduced { get; }
    public int[] ReducedStrides { get; }

    internal static ReduceAttributes Read(IDictionary<string, string> attributes) =>
        new ReduceAttributes(attributes.Text("op"), attributes.Ints("kept"), attributes.Ints("keptstrides"), attributes.Ints("reduced"), attributes.Ints("reducedstrides"));

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["op"] = Op;
        attributes["kept"] = ArtifactText.Ints(Kept);
        attributes["keptstrides"] = ArtifactText.Ints(KeptStrides);
        attributes["reduced"] = ArtifactText.Ints(Reduced);
        attributes["reducedstrides"] = ArtifactText.Ints(ReducedStrides);
    }
}

/// <summary>
/// A <see cref="KernelKind.ReduceRuntime"/> kernel, its axes given at run time: <c>op</c> (Sum, Mean, Max), the input's
/// shape (<c>in</c>), <c>keepdims</c> and <c>noop</c> (no axes: copy, rather than reduce all), 0/1.
/// </summary>
public sealed class ReduceRuntimeAttributes
{
    public ReduceRuntimeAttributes(string op, int[] input, bool keepDims, bool noop)
    {
        if (Array.IndexOf(ReduceAttributes.Ops, op) < 0) throw new FormatException($"unknown reduction '{op}'");
        Op = op; In = input; KeepDims = keepDims; Noop = noop;
    }

    public string Op { get; }
    public int[] In { get; }
    public bool KeepDims { get; }
    public bool Noop { get; }

    internal static ReduceRuntimeAttributes Read(IDictionary<string, string> attributes) =>
        new ReduceRuntimeAttributes(attributes.Text("op"), attributes.Ints("in"), attributes.Flag("keepdims"), attributes.Flag("noop"));

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["op"] = Op;
        attributes["in"] = ArtifactText.Ints(In);
        attributes["keepdims"] = AttributeReading.Flag(KeepDims);
        attributes["noop"] = AttributeReading.Flag(Noop);
    }
}

/// <summary>A <see cref="KernelKind.Softmax"/> kernel: <c>layout</c> outer,length,inner (the axis' length and how the rows lie), and <c>log</c> (LogSoftmax), 0/1.</summary>
public sealed class SoftmaxAttributes
{
    public SoftmaxAttributes(int outer, int length, int inner, bool log)
    {
        if (outer < 0 || length < 1 || inner < 0) throw new FormatException("a softmax's layout is outer,length,inner with a positive length");
        Outer = outer; Length = length; Inner = inner; Log = log;
    }

    public int Outer { get; }
    public int Length { get; }
    public int Inner { get; }
    public bool Log { get; }

    internal static SoftmaxAttributes Read(IDictionary<string, string> attributes)
    {
        int[] layout = attributes.Ints("layout");
        if (layout.Length != 3) throw new FormatException("layout must be outer,length,inner");
        return new SoftmaxAttributes(layout[0], layout[1], layout[2], attributes.Flag("log"));
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["layout"] = ArtifactText.Ints(new[] { Outer, Length, Inner });
        attributes["log"] = AttributeReading.Flag(Log);
    }
}
