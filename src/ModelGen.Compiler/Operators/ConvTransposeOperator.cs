using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// ConvTranspose (1-D and 2-D): every input pixel scatters its weighted kernel into the output,
/// y[oh·, ow·] += x·w with oh = ih·stride − pad + kh·dilation. Output size from pads and
/// output_padding, or from output_shape / auto_pad (the padding then derived as ONNX specifies).
/// </summary>
public sealed class ConvTransposeOperator() : Operator("ConvTranspose")
{
    /// <summary>Resolved geometry per spatial axis (1-D lifted to 2-D with a height of 1).</summary>
    public sealed record Geometry(int[] In, int[] Out, int[] Kernel, int[] Strides, int[] Dilations, int[] PadBegin);

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 3);
        RejectAttributes(graph, node, "auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides");
        var (x, w) = (ShapeOf(graph, node, 0), ShapeOf(graph, node, 1));
        if (x.Length is not (3 or 4) || w.Length != x.Length)
            throw Error(graph, node, $"input of rank {x.Length}; 1-D and 2-D transposed convolutions (rank 3 or 4) are supported", ErrorCodes.UnsupportedAttribute);
        long group = node.Int("group", 1);
        if (group < 1 || x[1] % group != 0 || w[0] != x[1])
            throw Error(graph, node, $"group {group} does not fit {x[1]} input channels and weight [{string.Join(",", w)}]");
        int m = (int)(w[1] * group);
        if (node.HasInput(2) && TensorData.Size(ShapeOf(graph, node, 2)) != m) throw Error(graph, node, $"bias must have {m} values");
        var geo = Resolve(graph, node, x, w);
        SetOutput(graph, node, 0, [x[0], m, .. x.Length == 4 ? geo.Out : geo.Out[1..]]);
    }

    public static Geometry Resolve(Graph graph, Node node, int[] x, int[] w)
    {
        int spatial = x.Length - 2;
        int[] Ints(string name, int fill, int count) =>
            node.Ints(name) is { } v ? (v.Length == count ? [.. v.Select(e => (int)Math.Clamp(e, -(1L << 20), 1L << 20))] : throw Error(graph, node, $"{name} must have {count} values")) : [.. Enumerable.Repeat(fill, count)];
        int[] kernel = w[2..];
        if (node.Ints("kernel_shape") is { } ks && !ks.Select(k => (int)k).SequenceEqual(kernel)) throw Error(graph, node, "kernel_shape disagrees with the weight's shape");
        int[] strides = Ints("strides", 1, spatial), dilations = Ints("dilations", 1, spatial), outPad = Ints("output_padding", 0, spatial);
        int[] pads = Ints("pads", 0, 2 * spatial);
        if (strides.Any(s => s < 1) || dilations.Any(d => d < 1) || pads.Any(p => p < 0) || outPad.Any(p => p < 0))
            throw Error(graph, node, "strides and dilations must be ≥ 1, pads and output_padding ≥ 0", ErrorCodes.UnsupportedAttribute);
        string autoPad = node.Str("auto_pad", "NOTSET");
        if (autoPad is not ("NOTSET" or "SAME_UPPER" or "SAME_LOWER" or "VALID"))
            throw Error(graph, node, $"auto_pad '{autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ErrorCodes.UnsupportedAttribute);
        long[]? outputShape = node.Ints("output_shape");
        if (outputShape is not null && outputShape.Length == spatial + 2) outputShape = outputShape[2..];
        if (outputShape is not null && outputShape.Length != spatial) throw Error(graph, node, $"output_shape must have {spatial} values");
        var output = new int[spatial];
        var begin = new int[spatial];
        for (int i = 0; i < spatial; i++)
        {
            long input = x[2 + i], effective = (long)(kernel[i] - 1) * dilations[i] + 1;
            long full = strides[i] * (input - 1) + outPad[i] + effective;
            long target = outputShape is not null ? outputShape[i]
                : autoPad is "SAME_UPPER" or "SAME_LOWER" ? input * strides[i]
                : -1;
            if (target >= 0)
            {
                // A negative total (output_shape past the full size) pads the end: floor division, as ONNX's reference does.
                long total = full - target, half = (long)Math.Floor(total / 2.0);
                if (target < 1 || target > Import.OnnxImporter.MaxElements) throw Error(graph, node, $"output_shape {target} is out of range");
                begin[i] = (int)(autoPad == "SAME_UPPER" ? half : total - half);
                output[i] = (int)target;
            }
            else
            {
                if (autoPad == "VALID") pads[i] = pads[i + spatial] = 0;
                long size = full - pads[i] - pads[i + spatial];
                if (size < 1 || size > Import.OnnxImporter.MaxElements) throw Error(graph, node, $"the output would be {size} long on axis {i}");
                begin[i] = pads[i];
                output[i] = (int)size;
            }
        }
        return spatial == 1
            ? new Geometry([1, x[2]], [1, output[0]], [1, kernel[0]], [1, strides[0]], [1, dilations[0]], [0, begin[0]])
            : new Geometry(x[2..], output, kernel, strides, dilations, begin);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!; var w = inputs[1]!; var b = inputs.Length > 2 ? inputs[2] : null;
        var g = Resolve(new Graph(), node, x.Shape, w.Shape);
        int n = x.Shape[0], c = x.Shape[1], group = (int)node.Int("group", 1), mpg = w.Shape[1], m = mpg * group, cpg = c / group;
        int ih = g.In[0], iw = g.In[1], oh = g.Out[0], ow = g.Out[1], kh = g.Kernel[0], kw = g.Kernel[1];
        var y = new double[(long)n * m * oh * ow];
        for (int ni = 0; ni < n; ni++)
        for (int ci = 0; ci < c; ci++)
        {
            int gi = ci / cpg;
            for (int mi = 0; mi < mpg; mi++)
            for (int hi = 0; hi < ih; hi++)
            for (int wi = 0; wi < iw; wi++)
            {
                double xv = x.Floats[(((long)ni * c + ci) * ih + hi) * iw + wi];
                for (int a = 0; a < kh; a++)
                {
                    int ho = hi * g.Strides[0] - g.PadBegin[0] + a * g.Dilations[0];
                    if (ho < 0 || ho >= oh) continue;
                    for (int bb = 0; bb < kw; bb++)
                    {
                        int wo = wi * g.Strides[1] - g.PadBegin[1] + bb * g.Dilations[1];
                        if (wo < 0 || wo >= ow) continue;
                        y[(((long)ni * m + gi * mpg + mi) * oh + ho) * ow + wo] += xv * w.Floats[(((long)ci * mpg + mi) * kh + a) * kw + bb];
                    }
                }
            }
        }
        var result = new float[y.Length];
        for (long i = 0; i < y.LongLength; i++) result[i] = (float)(y[i] + (b is null ? 0 : b.Floats[i / ((long)oh * ow) % m]));
        int[] shape = x.Shape.Length == 4 ? [n, m, oh, ow] : [n, m, ow];
        return [new TensorData(shape, result)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var g = lowering.Graph;
        var geo = Resolve(g, node, g[node.Inputs[0]].Shape!, g[node.Inputs[1]].Shape!);
        var k = lowering.AddNode(KernelKind.ConvTranspose, "ConvTranspose", node.Name, [.. node.Inputs.Where(i => i.Length > 0).Select(lowering.Tensor)], [lowering.Tensor(node.Outputs[0])]);
        k.SetConvTranspose(new ConvTransposeAttributes(geo.In, geo.Out, geo.Kernel, geo.Strides, geo.Dilations, geo.PadBegin, (int)node.Int("group", 1)));
        Plan.LoweringParts.Activation(k, node);
    }
}
