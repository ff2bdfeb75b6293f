using System;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Resize whose scales or sizes arrive at run time: the output shape is compiled in; the coordinates
/// are worked out when the model runs, with the same float32 arithmetic the compiler uses for constant
/// scales, and the shape they give is checked.
/// </summary>
internal sealed class ResizeRuntimeKernel : IKernel
{
    public KernelKind Kernel => KernelKind.ResizeRuntime;

    public string InputName(ArtifactNode node, int i) => i == 0 ? "x" : "p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The parameter as a span of <paramref name="type"/> (its constants written as that type, whatever they were stored as).</summary>
    static string Param(RuntimeParameter? p, string type)
    {
        if (p is null) return $"ReadOnlySpan<{type}>.Empty";
        if (p.Longs is null && p.Floats is null) return "p" + p.Input.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] values = p.Floats is { } floats ? floats.Select(ArtifactText.Float).ToArray() : p.Longs!.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (values.Length == 0) return $"ReadOnlySpan<{type}>.Empty";
        return type == "float" ? $"stackalloc float[] {{ {string.Join(", ", values.Select(f => f + "f"))} }}" : $"stackalloc long[] {{ {string.Join(",", values)} }}";
    }

    public void Emit(KernelContext k)
    {
        var resize = k.Node.ResizeRuntime ?? throw new FormatException($"ResizeRuntime '{k.Node.Name}' has no input shape and modes");
        int[] input = resize.In;
        string transform = ResizeRuntimeAttributes.Transforms[resize.Transform], mode = ResizeRuntimeAttributes.Modes[resize.Mode];
        int[] axes = resize.Axes ?? Enumerable.Range(0, input.Length).ToArray();
        int t = resize.Transform, nm = resize.Nearest, pol = resize.Policy;
        k.W.Line($"// Resize ({mode}, {transform}): y{CodeWriter.Shape(k.Y.Shape)} from x{CodeWriter.Shape(input)}, the scales or sizes given at run time.");
        using var method = k.OpenMethod();
        int modeCode = mode == "cubic" ? 2 : mode == "linear" ? 1 : 0;
        k.W.Line($"RuntimeResize.Run(x, y, stackalloc int[] {{ {string.Join(", ", input)} }}, stackalloc int[] {{ {string.Join(", ", k.Y.Shape)} }}, {Param(resize.Scales, "float")}, {Param(resize.Sizes, "long")}, stackalloc int[] {{ {string.Join(", ", axes)} }}, {t}, {nm}, {modeCode}, {ArtifactText.Float(resize.CubicA)}f, {(resize.ExcludeOutside ? "true" : "false")}, {pol}, {Param(resize.Roi, "float")}, {KernelContext.F(resize.Extrapolation ?? 0f)});");
        k.Helpers.Add("RuntimeResize");
    }

    public const string HelperSource = @"/// <summary>Resize with scales or sizes given at run time (nearest or linear), checked against the compiled output shape.</summary>
static class RuntimeResize
{
    public static void Run(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<int> dims, ReadOnlySpan<int> outDims,
        ReadOnlySpan<float> scales, ReadOnlySpan<long> sizes, ReadOnlySpan<int> axes, int transform, int nearestMode, int mode, float cubicA, bool excludeOutside, int policy,
        ReadOnlySpan<float> roi, float extrapolation)
    {
        int rank = dims.Length;
        if (rank > 8) throw new ArgumentException(""Resize: rank above 8."");
        Span<float> scale = stackalloc float[rank];
        Span<long> size = stackalloc long[rank];
        for (int d = 0; d < rank; d++) { scale[d] = 1f; size[d] = dims[d]; }
        if (sizes.Length > 0)
        {
            if (sizes.Length != axes.Length) throw new ArgumentException(""Resize: sizes must name one size per axis."");
            double common = policy == 1 ? double.MaxValue : 0;
            for (int i = 0; i < axes.Length; i++)
            {
                double ratio = (double)sizes[i] / dims[axes[i]];
                common = policy == 1 ? Math.Min(common, ratio) : Math.Max(common, ratio);
            }
            for (int i = 0; i < axes.Length; i++)
            {
                int a = axes[i];
                if (policy == 0) { size[a] = sizes[i]; scale[a] = (float)((double)sizes[i] / dims[a]); }
                else { size[a] = (long)Math.Floor(dims[a] * common + 0.5); scale[a] = (float)common; }
            }
        }
        else
        {
            if (scales.Length != axes.Length) throw new ArgumentException(""Resize: scales must name one scale per axis."");
            for (int i = 0; i < axes.Length; i++) { scale[axes[i]] = scales[i]; size[axes[i]] = (long)Math.Floor(dims[axes[i]] * (double)scales[i]); }
        }
        // tf_crop_and_resize (transform 5): the crop's start and end on each axis, as fractions of the input.
        Span<float> cropStart = stackalloc float[rank], cropEnd = stackalloc float[rank];
        for (int d = 0; d < rank; d++) { cropStart[d] = 0f; cropEnd[d] = 1f; }
        if (transform == 5)
        {
            if (roi.Length != 2 * axes.Length) throw new ArgumentException(""Resize: roi must give a start and an end per resized axis."");
            for (int i = 0; i < axes.Length; i++) { cropStart[axes[i]] = roi[i]; cropEnd[axes[i]] = roi[axes.Length + i]; }
        }
        int total = 0;
        for (int d = 0; d < rank; d++)
        {
            if (size[d] != outDims[d]) throw new ArgumentException($""Resize: the scales or sizes given make axis {d} {size[d]} long; this code was compiled for {outDims[d]}."");
            total += outDims[d];
        }
        // Per axis and output index: the source indices and weights of its taps (nearest 1 used of 2, linear 2, cubic 4).
        int taps = mode == 2 ? 4 : 2;
        int[]? rented = total > 512 ? new int[taps * total] : null;
        Span<int> index = rented ?? stackalloc int[taps * total];
        float[]? rentedWeights = total > 512 ? new float[taps * total] : null;
        Span<float> weight = rentedWeights ?? stackalloc float[taps * total];
        bool[]? rentedOutside = total > 512 ? new bool[total] : null;
        Span<bool> outside = rentedOutside ?? stackalloc bool[total];
        Span<int> start = stackalloc int[rank];
        for (int d = 0, at = 0; d < rank; at += outDims[d], d++)
        {
            start[d] = at;
            int lengthIn = dims[d], lengthOut = outDims[d];
            float s = scale[d];
            bool identity = lengthIn == lengthOut && s == 1f && cropStart[d] == 0f && cropEnd[d] == 1f;
            for (int o = 0; o < lengthOut; o++)
            {
                int e = taps * (at + o);
                for (int k = 0; k < taps; k++) { index[e + k] = 0; weight[e + k] = 0f; }
                outside[at + o] = false;
                if (identity) { index[e] = o; weight[e] = 1f; continue; }
                float c = transform switch
                {
                    0 => (o + 0.5f) / s - 0.5f,
                    1 => lengthOut > 1 ? (o + 0.5f) / s - 0.5f : 0f,
                    2 => lengthOut == 1 ? 0f : o * (float)(lengthIn - 1) / (lengthIn * s - 1),
                    3 => o / s,
                    5 => lengthOut > 1
                        ? cropStart[d] * (lengthIn - 1) + o * (cropEnd[d] - cropStart[d]) * (lengthIn - 1) / (lengthOut - 1)
                        : 0.5f * (cropStart[d] + cropEnd[d]) * (lengthIn - 1),
                    _ => lengthIn / 2f * (1 - lengthOut / (s * lengthIn)) + (o + 0.5f) / s - 0.5f,
                };
                if (transform == 5 && (c < 0 || c > lengthIn - 1)) outside[at + o] = true;
                if (mode == 0)
                {
                    double n = nearestMode switch
                    {
                        1 => Math.Floor(c + 0.5),
                        2 => Math.Floor(c),
                        3 => Math.Ceiling(c),
                        _ => c == Math.Floor(c) + 0.5 ? Math.Floor(c) : Math.Round(c),
                    };
                    index[e] = (int)Math.Clamp(n, 0, lengthIn - 1);
                    weight[e] = 1f;
                }
                else if (mode == 1)
                {
                    c = Math.Clamp(c, 0f, lengthIn - 1);
                    int lo = (int)Math.Floor(c);
                    index[e] = lo;
                    index[e + 1] = Math.Min(lo + 1, lengthIn - 1);
                    weight[e + 1] = c - lo;
                    weight[e] = 1 - weight[e + 1];
                }
                else
                {
                    int lo = (int)Math.Floor(c);
                    float t = c - lo, total4 = 0f;
                    for (int k = 0; k < 4; k++)
                    {
                        float u = k == 0 ? t + 1 : k == 1 ? t : k == 2 ? 1 - t : 2 - t;
                        float w = k == 1 || k == 2 ? ((cubicA + 2) * u - (cubicA + 3)) * u * u + 1 : ((cubicA * u - 5 * cubicA) * u + 8 * cubicA) * u - 4 * cubicA;
                        int i = lo - 1 + k;
                        if (excludeOutside && (i < 0 || i >= lengthIn)) w = 0f;
                        index[e + k] = Math.Clamp(i, 0, lengthIn - 1);
                        weight[e + k] = w;
                        total4 += w;
                    }
                    if (excludeOutside && total4 != 0f) for (int k = 0; k < 4; k++) weight[e + k] /= total4;
                }
            }
        }
        Span<long> stride = stackalloc long[rank];
        long sx = 1;
        for (int d = rank - 1; d >= 0; d--) { stride[d] = sx; sx *= dims[d]; }
        Span<int> position = stackalloc int[rank];
        Span<int> tap = stackalloc int[rank];
        for (int o = 0; o < y.Length; o++)
        {
            bool extrapolated = false;
            for (int d = 0; d < rank; d++) extrapolated |= outside[start[d] + position[d]];
            if (extrapolated)
            {
                y[o] = extrapolation;
                for (int d = rank - 1; d >= 0 && ++position[d] == outDims[d]; d--) position[d] = 0;
                continue;
            }
            double sum = 0;
            // Every combination of one tap per axis (an odometer in base taps), skipping zero weights.
            tap.Clear();
            while (true)
            {
                double w = 1;
                long offset = 0;
                for (int d = 0; d < rank && w != 0; d++)
                {
                    int e = taps * (start[d] + position[d]) + tap[d];
                    w *= weight[e];
                    offset += index[e] * stride[d];
                }
                if (w != 0) sum += w * x[(int)offset];
                int q = rank - 1;
                while (q >= 0 && ++tap[q] == taps) tap[q--] = 0;
                if (q < 0) break;
            }
            y[o] = (float)sum;
            for (int d = rank - 1; d >= 0 && ++position[d] == outDims[d]; d--) position[d] = 0;
        }
    }
}";
}
