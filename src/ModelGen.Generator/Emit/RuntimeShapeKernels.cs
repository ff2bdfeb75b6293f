using System;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Slice and Pad whose positions (starts, ends, axes, steps; pads) arrive at run time as int64 inputs.
/// The output shape is compiled in (the model declares it); the kernel works out the positions when
/// it runs, checks that they select exactly that shape, and copies with run-time strides.
/// </summary>
internal abstract class RuntimeShapeKernel : IKernel
{
    public abstract KernelKind Kernel { get; }

    public string InputName(ArtifactNode node, int i) => i == 0 ? "x" : "p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public abstract void Emit(KernelContext k);

    /// <summary>A parameter as a span expression: a run-time input ("@k"), a literal ("=…"), or the fallback.</summary>
    protected static string Param(KernelContext k, string key, string fallback) => Span(Shape(k).Parameter(key), fallback);

    protected static RuntimeShapeAttributes Shape(KernelContext k) =>
        k.Node.RuntimeShape ?? throw new FormatException($"{k.Node.Kernel} '{k.Node.Name}' has no input shape");

    /// <summary>A parameter as a span expression: a run-time input, its constants, or (absent) the fallback.</summary>
    internal static string Span(RuntimeParameter? p, string fallback)
    {
        if (p is null) return fallback;
        if (p.Floats is { } floats)
            return floats.Length == 0 ? "ReadOnlySpan<float>.Empty" : $"stackalloc float[] {{ {string.Join(", ", floats.Select(f => ArtifactText.Float(f) + "f"))} }}";
        if (p.Longs is { } longs)
            return longs.Length == 0 ? "ReadOnlySpan<long>.Empty" : $"stackalloc long[] {{ {string.Join(",", longs.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)))} }}";
        return "p" + p.Input.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    protected static string Ints(int[] values) => values.Length == 0 ? "ReadOnlySpan<int>.Empty" : $"stackalloc int[] {{ {string.Join(", ", values)} }}";
}

internal sealed class SliceRuntimeKernel : RuntimeShapeKernel
{
    public override KernelKind Kernel => KernelKind.SliceRuntime;

    public override void Emit(KernelContext k)
    {
        int[] input = Shape(k).In;
        k.W.Line($"// Slice: y{CodeWriter.Shape(k.Y.Shape)} from x{CodeWriter.Shape(input)}, with starts, ends, axes and steps given at run time.");
        using var method = k.OpenMethod();
        string axesDefault = "ReadOnlySpan<long>.Empty";
        k.W.Line($"RuntimeShapes.Slice(x, y, {Ints(input)}, {Ints(k.Y.Shape)}, {Param(k, "starts", axesDefault)}, {Param(k, "ends", axesDefault)}, {Param(k, "axes", axesDefault)}, {Param(k, "steps", axesDefault)}, {(Shape(k).Parameter("axes") is not null ? "true" : "false")}, {(Shape(k).Parameter("steps") is not null ? "true" : "false")});");
        k.Helpers.Add("RuntimeShapes");
    }
}

internal sealed class PadRuntimeKernel : RuntimeShapeKernel
{
    public override KernelKind Kernel => KernelKind.PadRuntime;

    public override void Emit(KernelContext k)
    {
        int[] input = Shape(k).In;
        string mode = Shape(k).Mode ?? "constant";
        int modeCode = mode == "reflect" ? 1 : mode == "edge" ? 2 : 0;
        k.W.Line($"// Pad ({mode}): y{CodeWriter.Shape(k.Y.Shape)} from x{CodeWriter.Shape(input)}, with the pads (and value) given at run time.");
        using var method = k.OpenMethod();
        string value = Param(k, "value", "ReadOnlySpan<float>.Empty");
        k.W.Line($"RuntimeShapes.Pad(x, y, {Ints(input)}, {Ints(k.Y.Shape)}, {Param(k, "pads", "ReadOnlySpan<long>.Empty")}, {value}, {Param(k, "axes", "ReadOnlySpan<long>.Empty")}, {(Shape(k).Parameter("axes") is not null ? "true" : "false")}, {modeCode});");
        k.Helpers.Add("RuntimeShapes");
    }

    public const string HelperSource = @"/// <summary>Slice and Pad with positions given at run time, checked against the compiled output shape.</summary>
static class RuntimeShapes
{
    const int MaxRank = 8;

    public static void Slice(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<int> dims, ReadOnlySpan<int> outDims,
        ReadOnlySpan<long> starts, ReadOnlySpan<long> ends, ReadOnlySpan<long> axes, ReadOnlySpan<long> steps, bool hasAxes, bool hasSteps)
    {
        int rank = dims.Length;
        if (rank > MaxRank || ends.Length != starts.Length || (hasAxes && axes.Length != starts.Length) || (hasSteps && steps.Length != starts.Length))
            throw new ArgumentException(""Slice: starts, ends, axes and steps differ in length."");
        Span<long> stride = stackalloc long[rank];
        Span<long> step = stackalloc long[rank];
        Span<bool> seen = stackalloc bool[rank];
        long s = 1;
        for (int d = rank - 1; d >= 0; d--) { stride[d] = s; step[d] = s; s *= dims[d]; }
        long source = 0;
        for (int i = 0; i < starts.Length; i++)
        {
            long a = hasAxes ? axes[i] : i;
            if (a < 0) a += rank;
            if (a < 0 || a >= rank || seen[(int)a]) throw new ArgumentException(""Slice: an axis repeats or is out of range."");
            seen[(int)a] = true;
            long dim = dims[(int)a], st = hasSteps ? steps[i] : 1;
            if (st == 0) throw new ArgumentException(""Slice: a step is 0."");
            long start = starts[i] < 0 ? starts[i] + dim : starts[i], end = ends[i] < 0 ? ends[i] + dim : ends[i];
            if (st > 0) { start = Math.Clamp(start, 0, dim); end = Math.Clamp(end, 0, dim); }
            else { start = Math.Clamp(start, 0, dim - 1); end = Math.Clamp(end, -1, dim - 1); }
            long count = st > 0 ? Math.Max(0, (end - start + st - 1) / st) : Math.Max(0, (start - end - st - 1) / -st);
            if (count != outDims[(int)a]) throw new ArgumentException($""Slice: the positions given select {count} elements on axis {a}; this code was compiled for {outDims[(int)a]}."");
            source += start * stride[(int)a];
            step[(int)a] = st * stride[(int)a];
        }
        for (int d = 0; d < rank; d++)
            if (!seen[d] && dims[d] != outDims[d]) throw new ArgumentException($""Slice: axis {d} is not sliced but this code was compiled for {outDims[d]} of its {dims[d]} elements."");
        Copy(x, y, outDims, source, step);
    }

    public static void Pad(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<int> dims, ReadOnlySpan<int> outDims,
        ReadOnlySpan<long> pads, ReadOnlySpan<float> value, ReadOnlySpan<long> axes, bool hasAxes, int mode)
    {
        int rank = dims.Length;
        int n = hasAxes ? axes.Length : rank;
        if (rank > MaxRank || pads.Length != 2 * n) throw new ArgumentException(""Pad: pads must hold two values per axis."");
        Span<long> begin = stackalloc long[rank];
        for (int i = 0; i < n; i++)
        {
            long a = hasAxes ? axes[i] : i;
            if (a < 0) a += rank;
            if (a < 0 || a >= rank) throw new ArgumentException(""Pad: an axis is out of range."");
            begin[(int)a] = pads[i];
            if (dims[(int)a] + pads[i] + pads[i + n] != outDims[(int)a])
                throw new ArgumentException($""Pad: the pads given make axis {a} {dims[(int)a] + pads[i] + pads[i + n]} long; this code was compiled for {outDims[(int)a]}."");
        }
        float fill = value.Length > 0 ? value[0] : 0f;
        Span<long> stride = stackalloc long[rank];
        long s = 1;
        for (int d = rank - 1; d >= 0; d--) { stride[d] = s; s *= dims[d]; }
        Span<int> index = stackalloc int[rank];
        for (int o = 0; o < y.Length; o++)
        {
            long source = 0;
            bool outside = false;
            for (int d = 0; d < rank; d++)
            {
                long c = index[d] - begin[d], size = dims[d];
                if (c < 0 || c >= size)
                {
                    if (mode == 0) { outside = true; break; }
                    if (mode == 2) c = c < 0 ? 0 : size - 1;
                    else while (c < 0 || c >= size) c = c < 0 ? -c : 2 * (size - 1) - c;
                }
                source += c * stride[d];
            }
            y[o] = outside ? fill : x[(int)source];
            for (int d = rank - 1; d >= 0 && ++index[d] == outDims[d]; d--) index[d] = 0;
        }
    }

    /// <summary>y = x read from <paramref name=""source""/> with a step per axis (an odometer over y's indices).</summary>
    static void Copy(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<int> outDims, long source, ReadOnlySpan<long> step)
    {
        int rank = outDims.Length;
        Span<int> index = stackalloc int[rank];
        for (int o = 0; o < y.Length; o++)
        {
            y[o] = x[(int)source];
            for (int d = rank - 1; d >= 0; d--)
            {
                source += step[d];
                if (++index[d] < outDims[d]) break;
                source -= step[d] * outDims[d];
                index[d] = 0;
            }
        }
    }
}";
}
