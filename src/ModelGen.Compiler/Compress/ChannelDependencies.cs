using ModelGen.Artifact;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A set of channels that structured pruning removes together: the output channels of its producers (Conv or Dense
/// layers tied by residual Adds and other element-wise ops between two activations), which every consumer of those
/// channels reads. <paramref name="NotPrunable"/> says why the group must stay whole (null: it may lose channels).
/// </summary>
public sealed record ChannelGroup(int Id, int Channels, IReadOnlyList<Node> Producers, string? NotPrunable)
{
    public bool Prunable => NotPrunable is null;
}

/// <summary>
/// The dependency graph of structured pruning (issue 23, item 2) over the normalized graph: which output channels go
/// together, and every constant, attribute and shape that loses a channel when its group does. Channels flow forward
/// from each producer through the ops that keep them apart (activations, pooling, Pad, BatchNormalization, depthwise
/// convolutions, element-wise ops with per-channel constants, Flatten into a Dense layer), are tied across the two
/// operands of an element-wise op between activations, and laid side by side by Concat. Any other op that reads them,
/// and a graph output, makes their group not prunable: an op the analysis does not understand never gets a wrong graph.
/// </summary>
public sealed class ChannelDependencies
{
    /// <summary>
    /// A run of a value's channel axis (axis 1): <see cref="Count"/> channels of one space, each spanning
    /// <see cref="Inner"/> consecutive positions (1 on a [N, C, H, W] tensor; H·W after a Flatten to [N, C·H·W]).
    /// </summary>
    public readonly record struct Segment(int Space, int Count, int Inner);

    /// <summary>Constant input <see cref="Input"/> of <see cref="Node"/> loses, along <see cref="Axis"/>, the positions of the removed channels of <see cref="Layout"/>.</summary>
    sealed record ConstantSlice(Node Node, int Input, int Axis, Segment[] Layout);

    /// <summary>A depthwise Conv's group (= its channels), or a Reshape's explicit size of axis 1, follows the channels kept of <see cref="Layout"/>.</summary>
    sealed record SizeEdit(Node Node, Segment[] Layout);

    readonly Graph _graph;
    readonly List<int> _parent = [];
    readonly List<int> _channels = [];
    readonly List<string?> _blocked = [];
    readonly List<List<Node>> _producers = [];
    readonly Dictionary<string, Segment[]> _layouts = new(StringComparer.Ordinal);
    readonly List<ConstantSlice> _slices = [];
    readonly List<SizeEdit> _sizes = [];

    ChannelDependencies(Graph graph) => _graph = graph;

    /// <summary>The groups, one per set of tied producers, in the order of their first producer in the schedule.</summary>
    public IReadOnlyList<ChannelGroup> Groups { get; private set; } = [];

    public static ChannelDependencies Analyze(Graph graph)
    {
        var analysis = new ChannelDependencies(graph);
        foreach (var node in graph.Nodes) analysis.Visit(node);
        foreach (var output in graph.Outputs) analysis.Block(output, "it reaches a graph output");
        analysis.Groups = [.. Enumerable.Range(0, analysis._parent.Count).Where(s => analysis.Find(s) == s)
            .Select(s => new ChannelGroup(s, analysis._channels[s], analysis._producers[s], analysis._blocked[s]))];
        return analysis;
    }

    /// <summary>The layout of a value's channel axis, null when no producer's channels reach it.</summary>
    public IReadOnlyList<Segment>? Layout(string value) => _layouts.GetValueOrDefault(value);

    /// <summary>The group that space <paramref name="space"/> belongs to (spaces merge when tied).</summary>
    public int GroupOf(int space) => Find(space);

    void Visit(Node node)
    {
        var x = node.Inputs.Count > 0 && node.HasInput(0) ? _layouts.GetValueOrDefault(node.Inputs[0]) : null;
        string? why = node.OpType switch
        {
            "Conv" => Conv(node, x),
            DenseOperator.Name => Dense(node, x),
            "BatchNormalization" => PerChannelParameters(node, x, 5),
            "InstanceNormalization" => PerChannelParameters(node, x, 3),
            "Concat" => Concat(node),
            "Flatten" or "Reshape" or "Squeeze" or "Unsqueeze" => Reshape(node, x),
            "Pad" => Pad(node, x),
            "MaxPool" or "AveragePool" or "GlobalAveragePool" or "GlobalMaxPool" or "Identity" or "Dropout" => PassThrough(node, x),
            _ when Array.IndexOf(Activations.Names, node.OpType) >= 0 => PassThrough(node, x),
            _ when Array.IndexOf(Activations.BinaryNames, node.OpType) >= 0 => Binary(node),
            _ => $"{node.Describe} reads them, which the analysis does not follow",
        };
        if (why is null) return;
        // Not understood: the channels it reads stay whole, and what it writes is no producer's channels.
        foreach (var input in node.Inputs) if (input.Length > 0) Block(input, why);
        foreach (var output in node.Outputs) _layouts.Remove(output);
    }

    string? Conv(Node node, Segment[]? x)
    {
        if (Const(node, 1) is not { Shape.Length: >= 3 } w || node.HasInput(2) && Const(node, 2) is null || Shape(node.Inputs[0]) is not { } xs)
            return $"{node.Describe} has weights or a bias computed at run time";
        long group = node.Int("group", 1);
        if (group == 1)
        {
            if (x is not null) _slices.Add(new ConstantSlice(node, 1, 1, x));
            Produce(node, w.Shape[0]);
            return null;
        }
        // Depthwise (one filter per input channel): its channels are its input's, so it is pruned with them.
        if (group == xs[1] && w.Shape[0] == xs[1])
        {
            if (x is null) return null; // the input's channels (a graph input's) never change
            _slices.Add(new ConstantSlice(node, 1, 0, x));
            if (node.HasInput(2)) _slices.Add(new ConstantSlice(node, 2, 0, x));
            _sizes.Add(new SizeEdit(node, x));
            _layouts[node.Outputs[0]] = x;
            return null;
        }
        return $"{node.Describe} is a grouped convolution ({group} groups) that is not depthwise";
    }

    string? Dense(Node node, Segment[]? x)
    {
        if (Const(node, 1) is not { Shape.Length: 2 } w || node.HasInput(2) && Const(node, 2) is not { Shape.Length: 1 }
            || node.Int("transA", 0) != 0 || Shape(node.Inputs[0]) is not { Length: 2 } || Shape(node.Outputs[0]) is not { Length: 2 })
            return $"{node.Describe} is not a fully connected layer of rows [N, K] with constant weights and a bias per neuron";
        if (x is not null) _slices.Add(new ConstantSlice(node, 1, 1, x));
        Produce(node, w.Shape[0]);
        return null;
    }

    /// <summary>A new space for the node's output channels: its weights' (and bias's) axis 0 lose the removed ones.</summary>
    void Produce(Node node, int channels)
    {
        int space = _parent.Count;
        _parent.Add(space);
        _channels.Add(channels);
        _blocked.Add(null);
        _producers.Add([node]);
        Segment[] layout = [new Segment(space, channels, 1)];
        _slices.Add(new ConstantSlice(node, 1, 0, layout));
        if (node.HasInput(2)) _slices.Add(new ConstantSlice(node, 2, 0, layout));
        _layouts[node.Outputs[0]] = layout;
    }

    /// <summary>BatchNormalization (scale, B, mean, var) or InstanceNormalization (scale, B): one constant value per channel.</summary>
    string? PerChannelParameters(Node node, Segment[]? x, int inputs)
    {
        if (x is null) return null;
        if (node.Outputs.Count(o => o.Length > 0) != 1 || node.Int("training_mode", 0) != 0 || Enumerable.Range(1, inputs - 1).Any(i => Const(node, i) is not { Shape.Length: 1 }))
            return $"{node.Describe} does not have one constant parameter per channel";
        for (int i = 1; i < inputs; i++) _slices.Add(new ConstantSlice(node, i, 0, x));
        _layouts[node.Outputs[0]] = x;
        return null;
    }

    /// <summary>Ops that compute each channel from the same channel alone, other inputs being constant scalars (Clip's bounds).</summary>
    string? PassThrough(Node node, Segment[]? x)
    {
        if (node.Inputs.Skip(1).Any(i => i.Length > 0 && _graph[i].Constant is not { Count: 1 }) || node.Outputs.Skip(1).Any(o => o.Length > 0))
            return $"{node.Describe} has inputs beyond the data that are not constant scalars, or a second output";
        if (x is not null && (Shape(node.Outputs[0]) is not { } y || y.Length < 2 || y[1] != Shape(node.Inputs[0])![1]))
            return $"{node.Describe} changes the channel axis";
        if (x is not null) _layouts[node.Outputs[0]] = x;
        return null;
    }

    string? Pad(Node node, Segment[]? x)
    {
        if (x is null) return null;
        int rank = Shape(node.Inputs[0])!.Length;
        long[]? pads = _graph.Opset < 11 ? node.Ints("pads") : Const(node, 1) is { Type: ElementType.Int64 } p ? p.Ints : null;
        if (pads is null || pads.Length != 2 * rank || pads[1] != 0 || pads[rank + 1] != 0 || node.HasInput(3) || node.HasInput(2) && Const(node, 2) is null)
            return $"{node.Describe} pads the channel axis or takes its pads at run time";
        _layouts[node.Outputs[0]] = x;
        return null;
    }

    /// <summary>Flatten, Reshape, Squeeze, Unsqueeze that keep the batch axis and either keep the channel axis or flatten all the rest into it.</summary>
    string? Reshape(Node node, Segment[]? x)
    {
        if (x is null) return null;
        var xs = Shape(node.Inputs[0])!;
        var ys = Shape(node.Outputs[0])!;
        long rest = TensorData.Size(xs[2..]);
        bool flatten = ys.Length == 2 && ys[0] == xs[0] && ys[1] == xs[1] * rest;
        bool keep = ys.Length >= 2 && ys[0] == xs[0] && ys[1] == xs[1] && TensorData.Size(ys[2..]) == rest
            && (xs.Length > 2 || ys.Length == 2 || x.All(s => s.Inner == 1));
        if (!flatten && !keep || node.OpType == "Reshape" && Const(node, 1) is not { Type: ElementType.Int64 })
            return $"{node.Describe} mixes the channel axis with others";
        var layout = flatten ? x.Select(s => s with { Inner = s.Inner * (int)rest }).ToArray() : x;
        if (node.OpType == "Reshape") _sizes.Add(new SizeEdit(node, layout));
        _layouts[node.Outputs[0]] = layout;
        return null;
    }

    string? Concat(Node node)
    {
        var inputs = node.Inputs.Where(i => i.Length > 0).ToList();
        if (Shape(node.Outputs[0]) is not { } y || y.Length < 2 || inputs.Any(i => !_layouts.ContainsKey(i) || Shape(i)!.Length != y.Length))
            return inputs.Any(_layouts.ContainsKey) ? $"{node.Describe} joins them with tensors of no producer's channels" : null;
        int axis = (int)node.Int("axis", 1);
        if (axis != 1 && axis != 1 - y.Length) return $"{node.Describe} joins along another axis than the channels";
        _layouts[node.Outputs[0]] = [.. inputs.SelectMany(i => _layouts[i])];
        return null;
    }

    /// <summary>
    /// An element-wise op: between two activations their channels are tied (one group, or segment by segment); with a
    /// constant, that constant loses the removed channels where it has one value per channel.
    /// </summary>
    string? Binary(Node node)
    {
        if (node.Inputs.Count != 2 || node.Has("broadcast") || node.Has("axis")) return $"{node.Describe} has legacy broadcasting";
        var a = node.Inputs[0];
        var b = node.Inputs[1];
        var la = _layouts.GetValueOrDefault(a);
        var lb = _layouts.GetValueOrDefault(b);
        if (la is null && lb is null) return null;
        var ys = Shape(node.Outputs[0])!;
        if (la is not null && lb is not null)
        {
            if (!Shape(a)!.SequenceEqual(ys) && !Shape(b)!.SequenceEqual(ys) || Shape(a)!.Length != Shape(b)!.Length || Shape(a)![1] != Shape(b)![1]
                || la.Length != lb.Length || la.Zip(lb).Any(p => p.First.Count != p.Second.Count || p.First.Inner != p.Second.Inner))
                return $"{node.Describe} ties channels laid out differently";
            foreach (var (sa, sb) in la.Zip(lb)) Union(sa.Space, sb.Space);
            _layouts[node.Outputs[0]] = la;
            return null;
        }
        var (value, layout, constantInput) = la is not null ? (a, la, 1) : (b, lb!, 0);
        var xs = Shape(value)!;
        if (!xs.SequenceEqual(ys)) return $"{node.Describe} broadcasts them with another tensor";
        if (_graph[node.Inputs[constantInput]].Constant is not { } c) return $"{node.Describe} ties them to a tensor of no producer's channels";
        int channelAxis = c.Shape.Length - (xs.Length - 1);
        if (channelAxis >= 0 && c.Shape[channelAxis] != 1)
        {
            if (layout.Any(s => s.Inner != 1)) return $"{node.Describe} has a constant that varies along flattened channels";
            _slices.Add(new ConstantSlice(node, constantInput, channelAxis, layout));
        }
        _layouts[node.Outputs[0]] = layout;
        return null;
    }

    TensorData? Const(Node node, int input) => node.HasInput(input) ? _graph[node.Inputs[input]].Constant : null;

    int[]? Shape(string value) => _graph[value].Shape;

    int Find(int s)
    {
        while (_parent[s] != s) s = _parent[s] = _parent[_parent[s]];
        return s;
    }

    void Union(int a, int b)
    {
        a = Find(a);
        b = Find(b);
        if (a == b) return;
        if (b < a) (a, b) = (b, a);
        _parent[b] = a;
        _blocked[a] ??= _blocked[b];
        _producers[a].AddRange(_producers[b]);
    }

    void Block(string value, string why)
    {
        if (_layouts.GetValueOrDefault(value) is not { } layout) return;
        foreach (var s in layout) _blocked[Find(s.Space)] ??= why;
    }

    /// <summary>
    /// Removes the channels whose <paramref name="keep"/> entry is false (by group id; a group not named keeps all):
    /// new smaller constants for every weight, bias and parameter, depthwise groups and Reshape sizes, then shapes and
    /// plans inferred again. The kept channels stay in their order.
    /// </summary>
    public void Remove(IReadOnlyDictionary<int, bool[]> keep)
    {
        foreach (var (id, mask) in keep)
            if (Groups.FirstOrDefault(g => g.Id == id) is not { Prunable: true } group || mask.Length != group.Channels || !mask.Contains(true))
                throw new ArgumentException($"group {id} is not prunable, or its mask does not keep some of its {mask.Length} channels");
        var created = new HashSet<string>(StringComparer.Ordinal);
        foreach (var slice in _slices)
        {
            var positions = Kept(slice.Layout, keep);
            if (positions is null) continue;
            string old = slice.Node.Inputs[slice.Input];
            var sliced = Gather(_graph[old].Constant!, slice.Axis, positions);
            string name = NewConstant(old.Split("/pruned")[0] + "/pruned", sliced);
            slice.Node.Inputs[slice.Input] = name;
            if (created.Contains(old) && !_graph.Nodes.Any(n => n.Inputs.Contains(old))) _graph.Values.Remove(old);
            created.Add(name);
        }
        foreach (var edit in _sizes)
        {
            if (Kept(edit.Layout, keep) is not { } positions) continue;
            if (edit.Node.OpType == "Conv")
            {
                edit.Node.Attributes["group"] = new Onnx.Proto.AttributeProto { Name = "group", Type = Onnx.Proto.AttributeProto.Types.AttributeType.Int, I = positions.Length };
                continue;
            }
            // Reshape: an explicit size of axis 1 becomes the kept channels' (0 copies it and −1 infers it: they stay).
            var shape = _graph[edit.Node.Inputs[1]].Constant!;
            if (shape.Ints.Length < 2 || shape.Ints[1] <= 0) continue;
            long[] sizes = [.. shape.Ints];
            sizes[1] = positions.Length;
            edit.Node.Inputs[1] = NewConstant(edit.Node.Inputs[1] + "/pruned", new TensorData(shape.Shape, sizes));
        }
        Normalize.ShapeInference.Run(_graph);
    }

    /// <summary>The positions along the channel axis that a layout keeps, or null when it keeps them all.</summary>
    int[]? Kept(Segment[] layout, IReadOnlyDictionary<int, bool[]> keep)
    {
        var positions = new List<int>();
        bool removes = false;
        int offset = 0;
        foreach (var s in layout)
        {
            var mask = keep.GetValueOrDefault(Find(s.Space));
            for (int c = 0; c < s.Count; c++)
            {
                if (mask is null || mask[c])
                    for (int i = 0; i < s.Inner; i++) positions.Add(offset + c * s.Inner + i);
                else removes = true;
            }
            offset += s.Count * s.Inner;
        }
        return removes ? [.. positions] : null;
    }

    /// <summary>The tensor with only <paramref name="positions"/> along <paramref name="axis"/>.</summary>
    static TensorData Gather(TensorData t, int axis, int[] positions)
    {
        long outer = TensorData.Size(t.Shape[..axis]), inner = TensorData.Size(t.Shape[(axis + 1)..]);
        int size = t.Shape[axis];
        var shape = (int[])t.Shape.Clone();
        shape[axis] = positions.Length;
        var values = new float[outer * positions.Length * inner];
        long at = 0;
        for (long o = 0; o < outer; o++)
            foreach (int p in positions)
            {
                Array.Copy(t.Floats, (o * size + p) * inner, values, at, inner);
                at += inner;
            }
        return new TensorData(shape, values);
    }

    string NewConstant(string baseName, TensorData data)
    {
        string name = baseName;
        for (int i = 2; _graph.Values.ContainsKey(name); i++) name = baseName + "_" + i;
        var v = _graph.GetOrAdd(name);
        v.Constant = data;
        v.Shape = data.Shape;
        v.Type = data.Type;
        return name;
    }
}
