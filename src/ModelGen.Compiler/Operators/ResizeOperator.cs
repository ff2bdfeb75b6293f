using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// Resize (and opset 9's Upsample) with mode nearest, linear or cubic, every coordinate transformation
/// mode (tf_crop_and_resize with a constant roi), every nearest_mode; scales or sizes constant or given at run time. All coordinate arithmetic is
/// done at build time: nearest becomes a Remap (an index table per axis), linear a table of two
/// neighbours and a weight per output index and axis.
/// </summary>
public sealed class ResizeOperator(string opType = "Resize") : Operator(opType)
{
    protected override bool AcceptsIntInput(Node node, int input) => input == 3;

    /// <summary>Per axis: the two source indices and the weight of the second, for each output index.</summary>
    public sealed record AxisTable(int[] Index0, int[] Index1, float[] Weight1, bool Identity)
    {
        /// <summary>tf_crop_and_resize only: output indices whose source lies outside the input (they take extrapolation_value).</summary>
        public bool[]? Outside { get; init; }
        /// <summary>Cubic only: four source indices and weights per output index (tap-major).</summary>
        public int[][]? CubicIndex { get; init; }
        public float[][]? CubicWeight { get; init; }
    }

    /// <summary>The tables of every axis, when the scales or sizes are constants.</summary>
    sealed record Tables(AxisTable[] Axes) : OperatorPlan;

    /// <summary>Scales or sizes given at run time: the evaluator makes the tables for the values it is given, under this opset.</summary>
    sealed record TablesAtRunTime(long Opset) : OperatorPlan;

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
            "extrapolation_value", "scales", "antialias", "axes", "keep_aspect_ratio_policy");
        var x = ShapeOf(graph, node, 0);
        string mode = node.Str("mode", "nearest");
        if (mode is not ("nearest" or "linear" or "bilinear" or "cubic"))
            throw Error(graph, node, $"mode '{mode}' is not supported (nearest, linear, cubic)", ErrorCodes.UnsupportedAttribute);
        if (node.Int("antialias", 0) != 0) throw Error(graph, node, "antialias is not supported", ErrorCodes.UnsupportedAttribute);
        string policy = node.Str("keep_aspect_ratio_policy", "stretch");
        if (policy is not ("stretch" or "not_larger" or "not_smaller"))
            throw Error(graph, node, $"keep_aspect_ratio_policy '{policy}' is not stretch, not_larger or not_smaller", ErrorCodes.UnsupportedAttribute);
        string transform = graph.Opset >= 11 ? node.Str("coordinate_transformation_mode", "half_pixel") : "asymmetric";
        if (transform is not ("half_pixel" or "pytorch_half_pixel" or "align_corners" or "asymmetric" or "tf_half_pixel_for_nearest" or "half_pixel_symmetric" or "tf_crop_and_resize"))
            throw Error(graph, node, $"coordinate_transformation_mode '{transform}' is not supported", ErrorCodes.UnsupportedAttribute);
        string nearest = graph.Opset >= 11 ? node.Str("nearest_mode", "round_prefer_floor") : "floor";

        // Scales or sizes given at run time: the declared output shape is compiled in; the kernel works
        // out the coordinates when it runs (and checks the shape).
        int sInput = graph.Opset >= 11 && OpType == "Resize" ? 2 : 1;
        if ((node.HasInput(sInput) && graph[node.Inputs[sInput]].Constant is null) || (sInput == 2 && node.HasInput(3) && graph[node.Inputs[3]].Constant is null))
        {
            if (transform == "tf_half_pixel_for_nearest")
                throw Error(graph, node, $"coordinate_transformation_mode '{transform}' needs constant scales or sizes", ErrorCodes.UnsupportedAttribute);
            SetOutput(graph, node, 0, DeclaredOutput(graph, node, 0, "scales or sizes"));
            node.Plan = new TablesAtRunTime(graph.Opset);
            return;
        }

        // Scales or sizes, from the attribute (Upsample-7), the input (Upsample-9, Resize-10: 1; Resize-11+: 2 and 3).
        float[]? scales = null;
        long[]? sizes = null;
        if (OpType == "Upsample" && graph.Opset < 9) scales = node.Attributes.TryGetValue("scales", out var a) ? [.. a.Floats] : null;
        else
        {
            int scalesInput = graph.Opset >= 11 && OpType == "Resize" ? 2 : 1;
            if (node.HasInput(scalesInput))
            {
                var v = graph[node.Inputs[scalesInput]];
                if (v.Constant is null) throw Error(graph, node, "scales are computed at run time; ModelGen needs them constant", ErrorCodes.DynamicShape);
                if (v.Constant.Count > 0) scales = v.Constant.Floats;
            }
            if (scalesInput == 2 && node.HasInput(3))
            {
                var v = graph[node.Inputs[3]];
                if (v.Constant is null) throw Error(graph, node, "sizes are computed at run time; ModelGen needs them constant", ErrorCodes.DynamicShape);
                sizes = v.Constant.Ints;
            }
        }
        if ((scales is null) == (sizes is null)) throw Error(graph, node, "exactly one of scales and sizes must be given", ErrorCodes.InvalidGraph);
        if (node.Has("axes") && graph.Opset < 18) throw Error(graph, node, "the axes attribute needs opset 18", ErrorCodes.UnsupportedAttribute);
        // Opset 18's axes: scales or sizes name only some axes; the others keep their size.
        if (node.Ints("axes") is { } axes)
        {
            var normalized = axes.Select(a => NormalizeAxis(graph, node, a, x.Length)).ToArray();
            if (normalized.Distinct().Count() != normalized.Length || (scales?.Length ?? sizes!.Length) != normalized.Length)
                throw Error(graph, node, "axes repeat or do not match scales or sizes");
            if (scales is not null)
            {
                var full = Enumerable.Repeat(1f, x.Length).ToArray();
                for (int i = 0; i < normalized.Length; i++) full[normalized[i]] = scales[i];
                scales = full;
            }
            else
            {
                var full = x.Select(d => (long)d).ToArray();
                for (int i = 0; i < normalized.Length; i++) full[normalized[i]] = sizes![i];
                sizes = full;
            }
        }
        if ((scales?.Length ?? sizes!.Length) != x.Length) throw Error(graph, node, $"scales or sizes must have {x.Length} values");
        // not_larger / not_smaller: one scale for every resized axis, the smallest or largest the sizes ask for.
        if (sizes is not null && policy != "stretch")
        {
            var resizedAxes = Enumerable.Range(0, x.Length).Where(d => node.Ints("axes") is not { } ax || ax.Any(a => (a < 0 ? a + x.Length : a) == d)).ToArray();
            var ratios = resizedAxes.Select(d => (double)sizes[d] / x[d]);
            double common = policy == "not_larger" ? ratios.Min() : ratios.Max();
            scales = [.. Enumerable.Range(0, x.Length).Select(d => resizedAxes.Contains(d) ? (float)common : 1f)];
            sizes = [.. Enumerable.Range(0, x.Length).Select(d => resizedAxes.Contains(d) ? (long)Math.Floor(x[d] * common + 0.5) : x[d])];
        }
        var output = new int[x.Length];
        var scale = new double[x.Length];
        for (int d = 0; d < x.Length; d++)
        {
            if (sizes is not null)
            {
                if (sizes[d] < 1 || sizes[d] > Import.OnnxImporter.MaxElements) throw Error(graph, node, $"size {sizes[d]} is out of range");
                output[d] = (int)sizes[d];
                scale[d] = scales is not null ? scales[d] : (double)output[d] / x[d];
            }
            else
            {
                if (!(scales![d] > 0) || x[d] * (double)scales[d] > Import.OnnxImporter.MaxElements) throw Error(graph, node, $"scale {scales[d]} is out of range");
                scale[d] = scales[d];
                output[d] = (int)Math.Floor(x[d] * (double)scales[d]);
                if (output[d] < 1) throw Error(graph, node, $"scale {scales[d]} leaves axis {d} empty");
            }
        }
        var roi = transform == "tf_crop_and_resize" ? Roi(graph, node, x.Length) : null;
        var tables = new AxisTable[x.Length];
        for (int d = 0; d < x.Length; d++)
        {
            var crop = roi is null ? (0f, 1f) : (roi[d], roi[x.Length + d]);
            bool unchanged = x[d] == output[d] && scale[d] == 1 && crop == (0f, 1f);
            tables[d] = mode == "cubic" && !unchanged
                ? CubicTable(x[d], output[d], scale[d], transform, (float)scale[d], node.Float("cubic_coeff_a", -0.75f), node.Int("exclude_outside", 0) != 0, crop)
                : Table(x[d], output[d], scale[d], transform, mode == "nearest" || mode == "cubic" ? nearest : null, (float)scale[d], crop);
        }
        node.Plan = new Tables(tables);
        SetOutput(graph, node, 0, output);
    }

    /// <summary>
    /// tf_crop_and_resize's roi (input 1): the start and end of the crop on each axis, as fractions of the
    /// input; with opset 18's axes, only for those axes (the others 0 to 1). It must be a constant.
    /// </summary>
    static float[] Roi(Graph graph, Node node, int rank)
    {
        if (!node.HasInput(1) || graph[node.Inputs[1]].Constant is not { Type: ElementType.Float32 } c)
            throw Error(graph, node, "coordinate_transformation_mode 'tf_crop_and_resize' needs its roi (input 1) as a float32 constant", ErrorCodes.DynamicShape);
        var axes = node.Ints("axes")?.Select(a => NormalizeAxis(graph, node, a, rank)).ToArray() ?? [.. Enumerable.Range(0, rank)];
        if (c.Count != 2 * axes.Length) throw Error(graph, node, $"roi has {c.Count} values; it needs {2 * axes.Length} (a start and an end per resized axis)");
        var roi = new float[2 * rank];
        for (int d = 0; d < rank; d++) roi[rank + d] = 1f;
        for (int i = 0; i < axes.Length; i++) { roi[axes[i]] = c.Floats[i]; roi[rank + axes[i]] = c.Floats[axes.Length + i]; }
        return roi;
    }

    /// <summary>The source coordinate of each output index on one axis, then its neighbours (linear) or its nearest index.</summary>
    static AxisTable Table(int lengthIn, int lengthOut, double scale, string transform, string? nearest, float scaleF, (float Start, float End) crop)
    {
        var i0 = new int[lengthOut];
        var i1 = new int[lengthOut];
        var w1 = new float[lengthOut];
        bool[]? outside = transform == "tf_crop_and_resize" ? new bool[lengthOut] : null;
        bool identity = lengthIn == lengthOut && scale == 1 && crop == (0f, 1f);
        for (int o = 0; o < lengthOut; o++)
        {
            // Float32 arithmetic, as ONNX Runtime computes the coordinates.
            float x = Coordinate(o, lengthIn, lengthOut, scaleF, transform, crop);
            if (outside is not null && (x < 0 || x > lengthIn - 1)) outside[o] = true;
            if (nearest is not null)
            {
                double n = nearest switch
                {
                    "round_prefer_ceil" => Math.Floor(x + 0.5),
                    "floor" => Math.Floor(x),
                    "ceil" => Math.Ceiling(x),
                    _ => x == Math.Floor(x) + 0.5 ? Math.Floor(x) : Math.Round(x),
                };
                i0[o] = i1[o] = (int)Math.Clamp(n, 0, lengthIn - 1);
                continue;
            }
            x = Math.Clamp(x, 0f, lengthIn - 1);
            int lo = (int)Math.Floor(x);
            i0[o] = lo;
            i1[o] = Math.Min(lo + 1, lengthIn - 1);
            w1[o] = x - lo;
        }
        return new AxisTable(i0, i1, w1, identity && outside is null) { Outside = outside is not null && outside.Contains(true) ? outside : null };
    }

    /// <summary>
    /// Cubic convolution (Keys, coefficient a): taps at ⌊x⌋−1 … ⌊x⌋+2; outside the input they repeat the
    /// edge, or with exclude_outside weigh nothing and the rest are renormalized. x is not clamped.
    /// </summary>
    static AxisTable CubicTable(int lengthIn, int lengthOut, double scale, string transform, float scaleF, float a, bool excludeOutside, (float Start, float End) crop)
    {
        var outside = new bool[lengthOut];
        var index = new int[4][];
        var weight = new float[4][];
        for (int k = 0; k < 4; k++) { index[k] = new int[lengthOut]; weight[k] = new float[lengthOut]; }
        for (int o = 0; o < lengthOut; o++)
        {
            float x = Coordinate(o, lengthIn, lengthOut, scaleF, transform, crop);
            outside[o] = transform == "tf_crop_and_resize" && (x < 0 || x > lengthIn - 1);
            int lo = (int)Math.Floor(x);
            float t = x - lo;
            float[] c =
            [
                ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
                ((a + 2) * t - (a + 3)) * t * t + 1,
                ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
                ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
            ];
            float total = 0;
            for (int k = 0; k < 4; k++)
            {
                int i = lo - 1 + k;
                bool inside = i >= 0 && i < lengthIn;
                if (excludeOutside && !inside) c[k] = 0;
                total += c[k];
                index[k][o] = Math.Clamp(i, 0, lengthIn - 1);
            }
            for (int k = 0; k < 4; k++) weight[k][o] = excludeOutside && total != 0 ? c[k] / total : c[k];
        }
        return new AxisTable(index[0], index[1], weight[1], false) { CubicIndex = index, CubicWeight = weight, Outside = outside.Contains(true) ? outside : null };
    }

    static float Coordinate(int o, int lengthIn, int lengthOut, float s, string transform, (float Start, float End) crop) => transform switch
    {
        "half_pixel" => (o + 0.5f) / s - 0.5f,
        "pytorch_half_pixel" => lengthOut > 1 ? (o + 0.5f) / s - 0.5f : 0f,
        // The resized length before flooring (lengthIn·scale), as ONNX's reference has it.
        "align_corners" => lengthOut == 1 ? 0f : o * (float)(lengthIn - 1) / (lengthIn * s - 1),
        "asymmetric" => o / s,
        "tf_half_pixel_for_nearest" => (o + 0.5f) / s,
        "tf_crop_and_resize" => lengthOut > 1
            ? crop.Start * (lengthIn - 1) + o * (crop.End - crop.Start) * (lengthIn - 1) / (lengthOut - 1)
            : 0.5f * (crop.Start + crop.End) * (lengthIn - 1),
        _ => HalfPixelSymmetric(o, lengthIn, lengthOut, s),
    };

    static float HalfPixelSymmetric(int o, int lengthIn, int lengthOut, float s)
    {
        float adjustment = lengthOut / (s * lengthIn);
        float center = lengthIn / 2f;
        float offset = center * (1 - adjustment);
        return offset + (o + 0.5f) / s - 0.5f;
    }

    /// <summary>With run-time scales or sizes, resolves the tables for the values given (evaluation).</summary>
    AxisTable[] TablesFor(Node node, TensorData?[] inputs, long opset) =>
        PlanForValues(node, inputs, opset) is Tables resolved ? resolved.Axes : throw new InvalidOperationException();

    bool IsNearest(Node node) => node.Str("mode", "nearest") == "nearest";

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        var tables = node.Plan switch
        {
            Tables known => known.Axes,
            TablesAtRunTime runtime => TablesFor(node, inputs, runtime.Opset),
            _ => throw new InvalidOperationException($"{node.Describe} evaluated before shape inference"),
        };
        int[] outShape = [.. tables.Select(t => t.Index0.Length)];
        if (IsNearest(node)) return [Extrapolate(node, tables, NearestPlan(x.Shape, tables).Apply(x, outShape))];
        var strides = RemapPlan.StridesOf(x.Shape);
        var y = new float[TensorData.Size(outShape)];
        var index = new int[outShape.Length];
        // Taps per axis: linear 2 (low, high), cubic 4; the value sums every combination.
        var taps = tables.Select(t => t.CubicIndex is null ? 2 : 4).ToArray();
        long combinations = taps.Aggregate(1L, (p, q) => p * q);
        for (long o = 0; o < y.LongLength; o++)
        {
            long rem = o;
            for (int d = outShape.Length - 1; d >= 0; d--) { index[d] = (int)(rem % outShape[d]); rem /= outShape[d]; }
            double sum = 0;
            for (long combination = 0; combination < combinations; combination++)
            {
                double weight = 1;
                long offset = 0, c = combination;
                for (int d = 0; d < outShape.Length; d++)
                {
                    int k = (int)(c % taps[d]);
                    c /= taps[d];
                    var t = tables[d];
                    if (t.CubicIndex is { } ci)
                    {
                        weight *= t.CubicWeight![k][index[d]];
                        offset += ci[k][index[d]] * strides[d];
                    }
                    else
                    {
                        float w1 = t.Weight1[index[d]];
                        weight *= k == 1 ? w1 : 1 - w1;
                        offset += (k == 1 ? t.Index1[index[d]] : t.Index0[index[d]]) * strides[d];
                    }
                }
                if (weight != 0) sum += weight * x.Floats[offset];
            }
            y[o] = (float)sum;
        }
        return [Extrapolate(node, tables, new TensorData(outShape, y))];
    }

    /// <summary>1 where every axis's source lies inside the input, 0 where one lies outside (tf_crop_and_resize), or null.</summary>
    static float[]? InsideMask(AxisTable[] tables)
    {
        if (tables.All(t => t.Outside is null)) return null;
        int[] shape = [.. tables.Select(t => t.Index0.Length)];
        var mask = new float[TensorData.Size(shape)];
        var index = new int[shape.Length];
        for (long o = 0; o < mask.LongLength; o++)
        {
            long rem = o;
            bool inside = true;
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                index[d] = (int)(rem % shape[d]);
                rem /= shape[d];
                if (tables[d].Outside is { } outside && outside[index[d]]) inside = false;
            }
            mask[o] = inside ? 1f : 0f;
        }
        return mask;
    }

    static TensorData Extrapolate(Node node, AxisTable[] tables, TensorData y)
    {
        if (InsideMask(tables) is not { } mask) return y;
        float value = node.Float("extrapolation_value", 0f);
        var floats = y.Floats;
        for (long i = 0; i < floats.LongLength; i++) if (mask[i] == 0) floats[i] = value;
        return y;
    }

    static RemapPlan NearestPlan(int[] x, AxisTable[] tables) =>
        new([.. tables.Select(t => t.Index0.Length)], 0, RemapPlan.StridesOf(x), [.. tables.Select(t => t.Identity ? null : t.Index0)]);

    public override void Lower(Node node, ILowering lowering)
    {
        var x = lowering.Graph[node.Inputs[0]].Shape!;
        if (node.Plan is not Tables { Axes: var tables })
        {
            var g = lowering.Graph;
            string transform = g.Opset >= 11 ? node.Str("coordinate_transformation_mode", "half_pixel") : "asymmetric";
            string nearest = g.Opset >= 11 ? node.Str("nearest_mode", "round_prefer_floor") : "floor";
            int sInput = g.Opset >= 11 && OpType == "Resize" ? 2 : 1;
            var k2 = lowering.AddNode(KernelKind.ResizeRuntime, OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [lowering.Tensor(node.Outputs[0])]);
            var inputs = new List<int>(k2.Inputs);
            var scales = SliceOperator.RuntimeParameterOf(node, lowering, sInput, inputs);
            var sizes = sInput == 2 ? SliceOperator.RuntimeParameterOf(node, lowering, 3, inputs) : null;
            RuntimeParameter? roi = null;
            float? extrapolation = null;
            if (transform == "tf_crop_and_resize")
            {
                if (!node.HasInput(1) || g[node.Inputs[1]].Type != ElementType.Float32)
                    throw Error(g, node, "coordinate_transformation_mode 'tf_crop_and_resize' needs its roi (input 1) in float32", ErrorCodes.UnsupportedAttribute);
                roi = SliceOperator.RuntimeParameterOf(node, lowering, 1, inputs);
                extrapolation = node.Float("extrapolation_value", 0f);
            }
            k2.Inputs = [.. inputs];
            string mode = node.Str("mode", "nearest") is "cubic" ? "cubic" : IsNearest(node) ? "nearest" : "linear";
            int[]? axes = node.Ints("axes") is { } given ? [.. given.Select(a => checked((int)(a < 0 ? a + x.Length : a)))] : null;
            static int Index(string[] words, string word, string what) =>
                Array.IndexOf(words, word) is var i and >= 0 ? i : throw new InvalidOperationException($"unknown {what} '{word}'");
            k2.SetResizeRuntime(new ResizeRuntimeAttributes(x, Index(ResizeRuntimeAttributes.Transforms, transform, "coordinate transformation"),
                Index(ResizeRuntimeAttributes.NearestModes, nearest, "nearest mode"), Array.IndexOf(ResizeRuntimeAttributes.Modes, mode),
                node.Float("cubic_coeff_a", -0.75f), node.Int("exclude_outside", 0) != 0,
                Index(ResizeRuntimeAttributes.Policies, node.Str("keep_aspect_ratio_policy", "stretch"), "aspect ratio policy"), axes, scales, sizes, roi, extrapolation));
            return;
        }
        // tf_crop_and_resize: positions whose source lies outside the input take extrapolation_value,
        // applied after the resize as y = resized·inside + (1 − inside)·value with build-time masks.
        int[] outShape = [.. tables.Select(t => t.Index0.Length)];
        var mask = InsideMask(tables);
        int target = mask is null ? lowering.Tensor(node.Outputs[0]) : lowering.Temporary(node.Name + ".resized", outShape);
        if (IsNearest(node))
            NearestPlan(x, tables).WriteTo(lowering.AddNode(KernelKind.Remap, OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [target]));
        else
            LowerInterpolation(lowering.AddNode(KernelKind.ResizeLinear, OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [target]), x, tables);
        if (mask is null) return;
        float value = node.Float("extrapolation_value", 0f);
        int masked = lowering.Temporary(node.Name + ".masked", outShape);
        lowering.AddNode(KernelKind.Binary, OpType, node.Name + ".inside", [target, lowering.Weight(node.Name + ".inside", new TensorData(outShape, mask))], [masked]).SetBinary(new BinaryAttributes("Mul"));
        var fill = mask.Select(m => m == 0 ? value : 0f).ToArray();
        lowering.AddNode(KernelKind.Binary, OpType, node.Name + ".extrapolation", [masked, lowering.Weight(node.Name + ".extrapolation", new TensorData(outShape, fill))], [lowering.Tensor(node.Outputs[0])]).SetBinary(new BinaryAttributes("Add"));
    }

    static void LowerInterpolation(Artifact.ArtifactNode k, int[] x, AxisTable[] tables)
    {
        var axes = new ResizeAxisTable?[x.Length];
        for (int d = 0; d < x.Length; d++)
        {
            var t = tables[d];
            if (t.Identity) continue;
            axes[d] = t.CubicIndex is { } ci ? ResizeAxisTable.Cubic(ci, t.CubicWeight!) : ResizeAxisTable.Linear(t.Index0, t.Index1, t.Weight1);
        }
        k.SetResizeLinear(new ResizeLinearAttributes(axes));
    }
}
