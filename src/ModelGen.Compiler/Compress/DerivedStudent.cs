using System.Globalization;
using MathNet.Numerics.LinearAlgebra;
using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// Students derived from the teacher (issue 25, item 3), as graph transforms on a clone of the normalized teacher: a
/// width multiplier (structured channel pruning applied physically: every prunable channel group keeps its most
/// important channels, initialised from the teacher's weights) and a depthwise-separable rewrite of the convolutions
/// (each k×k convolution becomes a depthwise k×k one then a pointwise 1×1 one, initialised by a rank-1 factorisation
/// of the teacher's kernel, input channel by input channel). Distillation then trains the student. docs/students.md
/// says how a spec maps to each layer.
/// </summary>
public static class DerivedStudent
{
    /// <summary>A convolution is made depthwise-separable only with more input channels than this (fewer: the saving is small and the rank-1 start too rough).</summary>
    public const int DepthwiseMinimumInputs = 5;

    /// <summary>
    /// A new graph, the teacher's inputs and outputs: every prunable channel group narrowed to <paramref name="width"/>
    /// (1: unchanged), then, with <paramref name="depthwise"/>, every convolution that qualifies made
    /// depthwise-separable. The teacher is not changed. <paramref name="modelPath"/> names the model in errors.
    /// </summary>
    public static Graph Derive(Graph teacher, double width, bool depthwise, string modelPath)
    {
        if (!(width > 0 && width <= 1))
            throw new ModelGenException(ErrorCodes.BadOption, modelPath,
                $"the student's width {width.ToString(CultureInfo.InvariantCulture)} is not a share of the teacher's channels above 0 and at most 1; write e.g. --student width:0.25");
        var student = teacher.Clone();
        if (width < 1) Narrow(student, width);
        if (depthwise) Separate(student);
        return student;
    }

    /// <summary>
    /// The channels a group of <paramref name="channels"/> keeps at <paramref name="width"/>: w·C rounded to the nearest
    /// whole number (halves up: 0.25 × 50 = 12.5 keeps 13), at least 1.
    /// </summary>
    public static int KeptChannels(int channels, double width) => Math.Clamp((int)Math.Floor(width * channels + 0.5 + 1e-9), 1, channels);

    /// <summary>
    /// Width multiplier: every prunable group of <see cref="ChannelDependencies"/> (those that do not reach a graph output
    /// or an op the analysis does not follow) keeps its <see cref="KeptChannels"/> most important channels by
    /// <see cref="ChannelPruning.WeightNorms"/>, chosen by <see cref="ChannelPruning.Keep"/>; the dependency graph slices
    /// every consumer (a fully connected layer after a Flatten loses the matching input columns).
    /// </summary>
    static void Narrow(Graph graph, double width)
    {
        var dependencies = ChannelDependencies.Analyze(graph);
        var keep = new Dictionary<int, bool[]>();
        foreach (var group in dependencies.Groups.Where(g => g.Prunable && g.Channels > 1))
        {
            int removed = group.Channels - KeptChannels(group.Channels, width);
            if (removed == 0) continue;
            // Keep removes ⌊share·C⌋ channels: half a channel more than the count keeps the floor off a rounding edge.
            keep[group.Id] = ChannelPruning.Keep(ChannelPruning.WeightNorms(graph, group), (removed + 0.5) / group.Channels);
        }
        if (keep.Count > 0) dependencies.Remove(keep);
    }

    /// <summary>
    /// Whether a convolution becomes depthwise-separable: float32, 2-D, one group, a constant weight [O, C, kh, kw] (and
    /// bias, if any), more than one tap, more than <see cref="DepthwiseMinimumInputs"/> − 1 input channels, and the
    /// two layers computing fewer multiply-adds than it (C·k² + O·C &lt; O·C·k², i.e. k² + O &lt; O·k²).
    /// </summary>
    public static bool Separable(Graph graph, Node node)
    {
        if (node.OpType != "Conv" || node.Int("group", 1) != 1 || node.Form != LayerForm.Float32 || !node.HasInput(1)) return false;
        if (graph[node.Inputs[1]].Constant is not { Type: ElementType.Float32, Shape: [int o, int c, int kh, int kw] }) return false;
        if (node.HasInput(2) && graph[node.Inputs[2]].Constant is null || graph[node.Inputs[0]].Shape is not { Length: 4 }) return false;
        int taps = kh * kw;
        return taps > 1 && c >= DepthwiseMinimumInputs && taps + o < (long)o * taps;
    }

    /// <summary>
    /// The rank-1 factorisation of a convolution's kernel W [O, C, kh, kw], input channel by input channel: W[:, i, :, :]
    /// as an O × kh·kw matrix ≈ σ·u·vᵀ (its largest singular value and vectors, the best rank-1 approximation), the
    /// depthwise kernel D[i] = v [C, 1, kh, kw] and the pointwise one P[:, i] = σ·u [O, C, 1, 1], so that
    /// W[o, i, y, x] ≈ P[o, i]·D[i, y, x]. v's sign is chosen so its entry of largest magnitude is positive.
    /// </summary>
    public static (TensorData Depthwise, TensorData Pointwise) Factorize(TensorData weight)
    {
        if (weight.Shape is not [int outputs, int channels, int kh, int kw])
            throw new ArgumentException("a convolution kernel [O, C, kh, kw]", nameof(weight));
        int taps = kh * kw;
        var depthwise = new float[(long)channels * taps];
        var pointwise = new float[(long)outputs * channels];
        for (int i = 0; i < channels; i++)
        {
            var slice = Matrix<double>.Build.Dense(outputs, taps, (o, t) => weight.Floats[((long)o * channels + i) * taps + t]);
            var svd = slice.Svd(computeVectors: true);
            double sigma = svd.S[0];
            var u = svd.U.Column(0);
            var v = svd.VT.Row(0);
            int largest = 0;
            for (int t = 1; t < taps; t++) if (Math.Abs(v[t]) > Math.Abs(v[largest])) largest = t;
            double sign = v[largest] < 0 ? -1 : 1;
            for (int t = 0; t < taps; t++) depthwise[(long)i * taps + t] = (float)(sign * v[t]);
            for (int o = 0; o < outputs; o++) pointwise[(long)o * channels + i] = (float)(sign * sigma * u[o]);
        }
        return (new TensorData([channels, 1, kh, kw], depthwise), new TensorData([outputs, channels, 1, 1], pointwise));
    }

    /// <summary>
    /// Every convolution that is <see cref="Separable"/> becomes a depthwise one (the original geometry: kernel, strides,
    /// pads, dilations; group = C; no bias) inserted before it, and the node itself a pointwise 1×1 convolution that keeps
    /// its bias and fused activation (renamed with a suffix, so that nothing matching layers by name mistakes it for the
    /// original). Shapes are inferred again.
    /// </summary>
    static void Separate(Graph graph)
    {
        var nodes = new List<Node>(graph.Nodes.Count);
        foreach (var node in graph.Nodes)
        {
            if (Separable(graph, node)) nodes.Add(Rewrite(graph, node));
            nodes.Add(node);
        }
        graph.Nodes = nodes;
        Normalize.ShapeInference.Run(graph);
    }

    /// <summary>Rewrites the convolution as its pointwise half and gives the new depthwise half that comes before it.</summary>
    static Node Rewrite(Graph graph, Node node)
    {
        var weight = graph[node.Inputs[1]].Constant!;
        var (depthwise, pointwise) = Factorize(weight);
        string middle = NewValue(graph, node.Name + "/depthwise");
        var first = new Node
        {
            Name = NewNodeName(graph, node.Name + "/depthwise"), OpType = "Conv", Domain = node.Domain,
            Inputs = [node.Inputs[0], NewConstant(graph, node.Name + ".depthwise.weight", depthwise)],
            Outputs = [middle],
        };
        foreach (var (key, attribute) in node.Attributes) first.Attributes[key] = attribute.Clone();
        first.Attributes["group"] = new AttributeProto { Name = "group", Type = AttributeProto.Types.AttributeType.Int, I = weight.Shape[1] };
        foreach (var geometry in new[] { "auto_pad", "dilations", "kernel_shape", "pads", "strides" }) node.Attributes.Remove(geometry);
        node.Inputs[0] = middle;
        node.Inputs[1] = NewConstant(graph, node.Name + ".pointwise.weight", pointwise);
        node.Name = NewNodeName(graph, node.Name + "/pointwise");
        return first;
    }

    /// <summary>
    /// "/c1/Conv 20 → 5, /c2/Conv 50 → 13 depthwise-separable, …": each of the teacher's convolutions and fully
    /// connected layers with its output channels in the teacher and in <paramref name="student"/> (for a report).
    /// </summary>
    public static string Describe(Graph teacher, Graph student)
    {
        var parts = new List<string>();
        foreach (var layer in teacher.Nodes.Where(n => n.OpType is "Conv" or Operators.DenseOperator.Name && n.HasInput(1) && teacher[n.Inputs[1]].Constant is not null))
        {
            var same = student.Nodes.FirstOrDefault(n => n.Name == layer.Name);
            var pointwise = same is null ? student.Nodes.FirstOrDefault(n => n.Name == layer.Name + "/pointwise") : null;
            if ((same ?? pointwise) is not { } node || student[node.Inputs[1]].Constant is not { } weight) continue;
            parts.Add($"{layer.Name} {teacher[layer.Inputs[1]].Constant!.Shape[0]} → {weight.Shape[0]}{(pointwise is null ? "" : " depthwise-separable")}");
        }
        return string.Join(", ", parts);
    }

    static string NewValue(Graph graph, string baseName)
    {
        string name = baseName;
        for (int i = 2; graph.Values.ContainsKey(name); i++) name = baseName + "_" + i;
        graph.GetOrAdd(name);
        return name;
    }

    static string NewConstant(Graph graph, string baseName, TensorData data)
    {
        var value = graph[NewValue(graph, baseName)];
        value.Constant = data;
        value.Shape = data.Shape;
        return value.Name;
    }

    static string NewNodeName(Graph graph, string baseName)
    {
        string name = baseName;
        for (int i = 2; graph.Nodes.Any(n => n.Name == name); i++) name = baseName + "_" + i;
        return name;
    }
}
