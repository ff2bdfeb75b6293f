using System.Numerics;
using System.Runtime.CompilerServices;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// MaxPool and AveragePool, 1-D and 2-D, with strides, pads, dilations and ceil_mode, the windows resolved as
/// inference resolves them. MaxPool's gradient goes to the first maximum of each window in (kh, kw) order, as
/// PyTorch's; AveragePool's is spread over the window's taps inside the input, divided by the same divisor as the
/// forward pass (count_include_pad either way). Threads split planes (sample × channel), never a sum.
/// </summary>
public sealed class PoolRule(bool average) : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        graph[node.Inputs[0]].Shape!.Length is not (3 or 4) ? "it is not a 1-D or 2-D pooling (3-D ones do not train yet)" : null;

    public override void Forward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var g = MaxPoolOperator.Geometry(run.Graph, run.Node, run.Graph[run.Node.Inputs[0]].Shape!);
        bool includePad = run.Node.Int("count_include_pad", 0) != 0;
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        int planes = run.Batch * x.Shape[1];
        // MaxPool: the input offset of each output's maximum (−1: a window wholly in the padding).
        var argmax = average ? null : new int[y.Count];
        Parallel.For(0, planes, p => ForwardPlane(average, includePad, g, x.Data, y.Data, argmax, p));
        run.Outputs = [y];
        run.Saved = argmax;
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var dy = run.OutputGrads[0]!.Data;
        if (!average)
        {
            var argmax = (int[])run.Saved!;
            // Sequential: windows overlap, and each input element's sum keeps the outputs' order.
            for (int o = 0; o < dy.Length; o++)
                if (argmax[o] >= 0) dx.Data[argmax[o]] += dy[o];
            return;
        }
        var g = MaxPoolOperator.Geometry(run.Graph, run.Node, run.Graph[run.Node.Inputs[0]].Shape!);
        bool includePad = run.Node.Int("count_include_pad", 0) != 0;
        int planes = run.Batch * run.Inputs[0]!.Shape[1];
        // Each plane's outputs feed only that plane's inputs, in output order.
        Parallel.For(0, planes, p => AverageBackwardPlane(includePad, g, dy, dx.Data, p));
    }

    /// <summary>One plane's windows (optimized at once: a few calls per step are too few for tiering to reach it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ForwardPlane<T>(bool average, bool includePad, WindowGeometry g, T[] x, T[] y, int[]? argmax, int p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int oh = 0; oh < g.OutH; oh++)
        for (int ow = 0; ow < g.OutW; ow++)
        {
            T acc = average ? T.Zero : T.NegativeInfinity;
            int best = -1;
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                if (ih < 0 || ih >= g.InH) continue;
                for (int kw = 0; kw < g.KernelW; kw++)
                {
                    int iw = ow * g.StrideW - g.PadLeft + kw * g.DilationW;
                    if (iw < 0 || iw >= g.InW) continue;
                    int at = p * g.InH * g.InW + ih * g.InW + iw;
                    T v = x[at];
                    if (average) acc += v;
                    else if (best < 0 || v > acc) { acc = v; best = at; }
                }
            }
            int o = p * g.OutH * g.OutW + oh * g.OutW + ow;
            if (average) y[o] = acc / T.CreateChecked(AveragePoolOperator.Divisor(g, includePad, oh, ow));
            else { y[o] = acc; argmax![o] = best; }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void AverageBackwardPlane<T>(bool includePad, WindowGeometry g, T[] dy, T[] dx, int p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int oh = 0; oh < g.OutH; oh++)
        for (int ow = 0; ow < g.OutW; ow++)
        {
            T share = dy[p * g.OutH * g.OutW + oh * g.OutW + ow] / T.CreateChecked(AveragePoolOperator.Divisor(g, includePad, oh, ow));
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                if (ih < 0 || ih >= g.InH) continue;
                for (int kw = 0; kw < g.KernelW; kw++)
                {
                    int iw = ow * g.StrideW - g.PadLeft + kw * g.DilationW;
                    if (iw >= 0 && iw < g.InW) dx[p * g.InH * g.InW + ih * g.InW + iw] += share;
                }
            }
        }
    }
}

/// <summary>GlobalAveragePool and GlobalMaxPool over every spatial axis: the mean (gradient spread evenly) or the first maximum.</summary>
public sealed class GlobalPoolRule(bool average) : GradientRule
{
    public override void Forward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        int size = x.Count / y.Count;
        var argmax = average ? null : new int[y.Count];
        T divisor = T.CreateChecked(size);
        for (int p = 0; p < y.Count; p++)
        {
            var plane = x.Data.AsSpan(p * size, size);
            if (average)
            {
                T sum = T.Zero;
                foreach (var v in plane) sum += v;
                y.Data[p] = sum / divisor;
                continue;
            }
            int best = 0;
            for (int i = 1; i < size; i++) if (plane[i] > plane[best]) best = i;
            y.Data[p] = plane[best];
            argmax![p] = p * size + best;
        }
        run.Outputs = [y];
        run.Saved = argmax;
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var dy = run.OutputGrads[0]!.Data;
        int size = dx.Count / dy.Length;
        if (run.Saved is int[] argmax)
        {
            for (int p = 0; p < dy.Length; p++) dx.Data[argmax[p]] += dy[p];
            return;
        }
        T divisor = T.CreateChecked(size);
        for (int p = 0; p < dy.Length; p++)
        {
            T share = dy[p] / divisor;
            foreach (ref var d in dx.Data.AsSpan(p * size, size)) d += share;
        }
    }
}
