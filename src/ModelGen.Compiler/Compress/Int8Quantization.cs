using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// Compression int8: fully connected layers (one row) and 2-D convolutions (any group, depthwise
/// included, unit horizontal dilation) in int8 arithmetic. Each layer's input range comes from the
/// calibration data (MSE-chosen clipping), its weights are int8 per output channel, its sums int32
/// (<see cref="Int8Dense"/>, <see cref="Int8Conv"/>); then bias correction. Activations between layers
/// stay float32 in this version: each int8 layer quantizes its own input.
/// </summary>
public static class Int8Quantization
{
    /// <summary>The node's int8 fully connected layer, when it is one in int8 arithmetic (its form).</summary>
    public static Int8Dense? Of(Node node) => (node.Form as Int8DenseForm)?.Layer;

    /// <summary>The node's int8 convolution, when it is one in int8 arithmetic (its form).</summary>
    public static Int8Conv? OfConv(Node node) => (node.Form as Int8ConvForm)?.Layer;

    /// <summary>The quantization a reader of uint8 activations wants for <paramref name="tensor"/>; null when it reads float32.</summary>
    static QuantParams? ReaderInput(Node reader, string tensor) => reader.Form switch
    {
        Int8LayerForm layer => layer.Input,
        ByteConcatForm concat => concat.Params,
        ByteAddForm add => reader.Inputs[0] == tensor ? add.Add.A : add.Add.B,
        _ => null,
    };

    /// <summary>
    /// How an int8 layer writes its output as uint8 (fixed-point requantization, the activation a clamp) when
    /// every layer that reads it is int8 arithmetic too, all with the same input parameters: then no float32
    /// passes between them. Null: the layer writes float32 (a reader in float32, the model's output, an
    /// activation with no uint8 form). Set on the form by <see cref="Resolve"/>.
    /// </summary>
    public static Requantization? OutputOf(Node node) => (node.Form as Int8LayerForm)?.Output;

    /// <summary>
    /// Per channel of a layer, the largest |Σ q·w + bias| for any uint8 input q: 255·Σ|w| + |bias|, the bias folded
    /// as the kernel adds it. A requantization with a shift under 32 needs it, a narrow one too (Requantization.For).
    /// Null when the layer is not int8.
    /// </summary>
    static long[]? SumBound(Graph graph, Node node)
    {
        var bias = node.HasInput(2) ? graph[node.Inputs[2]].Constant?.Floats : null;
        if (node.Form is not Int8LayerForm form) return null;
        var (q, folded) = (form.Q, form.FoldedBias(bias));
        if (folded.Length == 0) return null;
        int row = q.Length / folded.Length;
        var bounds = new long[folded.Length];
        for (int m = 0; m < folded.Length; m++)
        {
            long absolute = 0;
            for (int i = 0; i < row; i++) absolute += Math.Abs((int)q[(long)m * row + i]);
            bounds[m] = 255 * absolute + Math.Abs((long)folded[m]);
        }
        return bounds;
    }

    /// <summary>
    /// Compression mixed: puts a quantized layer back in float32 (its own float weights and bias) or in
    /// int8 again. Ranges and bias corrections are per layer, measured on the float model, so a layer's
    /// int8 form does not depend on which others are int8: one calibration serves every assignment.
    /// </summary>
    public static void SetFloat(Graph graph, Node node, bool float32) => SetPrecisions(graph, n => n == node ? float32 : null);

    /// <summary>
    /// Sets each int8-capable layer in int8 arithmetic or float32 (<paramref name="float32"/>; null: left as it is),
    /// then resolves what passes between the layers (<see cref="Resolve"/>).
    /// </summary>
    public static void SetPrecisions(Graph graph, Func<Node, bool?> float32)
    {
        foreach (var node in graph.Nodes)
        {
            Int8LayerForm? form = null;
            if (float32(node) == true && node.Form is Int8LayerForm int8) { node.Form = new KeptFloat32Form(int8); form = int8; }
            else if (float32(node) == false && node.Form is KeptFloat32Form { Calibrated: Int8LayerForm kept }) { node.Form = kept; form = kept; }
            if (form?.Bias is not { } bias) continue;
            string? input = node.Form is KeptFloat32Form ? bias.Original : bias.Corrected;
            if (input is not null)
            {
                if (node.Inputs.Count > 2) node.Inputs[2] = input; else node.Inputs.Add(input);
            }
            else if (node.Inputs.Count > 2) node.Inputs.RemoveAt(2);
        }
        Resolve(graph);
    }

    /// <summary>
    /// Derives what passes between the layers from their forms: a uint8 Add or Concat works in integers when every
    /// layer of its group is int8 arithmetic; each int8 layer writes uint8 when all its readers take uint8 in one
    /// quantization (<see cref="OutputOf"/>); an average pooling of such a uint8 output averages bytes.
    /// </summary>
    static void Resolve(Graph graph)
    {
        var byName = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes) byName.TryAdd(node.Name, node);
        bool Int8(string layer) => byName.TryGetValue(layer, out var n) && n.Form is Int8LayerForm;
        foreach (var node in graph.Nodes)
        {
            var calibrated = node.Form is KeptFloat32Form kept ? kept.Calibrated : node.Form;
            var group = calibrated switch { ByteAddForm a => a.Group, ByteConcatForm c => c.Group, _ => null };
            if (group is not null) node.Form = group.All(Int8) ? calibrated : new KeptFloat32Form(calibrated);
            else if (node.Form is ByteAverageForm) node.Form = LayerForm.Float32;
        }
        foreach (var node in graph.Nodes)
        {
            if (node.Form is not Int8LayerForm form) continue;
            Requantization? output = null;
            if (form.Readers is { } readers)
            {
                var inputs = readers.Select(r => byName.TryGetValue(r.Node, out var reader) ? ReaderInput(reader, r.Tensor) : null).ToList();
                if (inputs.All(i => i is not null) && inputs.Distinct().Count() == 1)
                    output = Requantization.For(inputs[0]!.Value, form.Multipliers, node.Annotations.GetValueOrDefault("activation"), form.SumBounds);
            }
            node.Form = form with { Output = output };
            if (output is null) continue;
            foreach (var average in graph.Nodes.Where(n => n.Inputs.Count > 0 && n.Inputs[0] == node.Outputs[0] && IsByteAverage(graph, n)))
                average.Form = new ByteAverageForm(output.Output);
        }
    }

    /// <summary>Most calibration samples that set the ranges.</summary>
    public const int MaxSamples = 512;

    /// <summary>Most calibration samples bias correction averages over.</summary>
    public const int BiasSamples = 128;

    /// <summary>Largest weight row of an int8 layer: every sum of 255·127 products stays below 2^30 (room for the bias).</summary>
    const long MaxRow = (1L << 30) / (255L * 127);

    /// <summary>The layers int8 arithmetic applies to (the rest stay float32 or take int8 weights only).</summary>
    public static List<Node> Candidates(Graph graph) => [.. graph.Nodes.Where(n => IsDense(graph, n) || IsConv(graph, n))];

    /// <summary>The bias is folded into an integer at build time: it must be a constant.</summary>
    static bool ConstantBias(Graph graph, Node n) => !n.HasInput(2) || graph[n.Inputs[2]].Constant is not null;

    static bool IsDense(Graph graph, Node n) =>
        // One row (batch 1): the int8 kernel is a matrix-vector product; a larger batch keeps float32 in this version.
        n.OpType == DenseOperator.Name && n.Int("transA", 0) == 0 && graph[n.Inputs[1]].Constant is { Shape.Length: 2 } w
        && TensorData.Size(graph[n.Outputs[0]].Shape!) == w.Shape[0] && w.Shape[1] <= MaxRow && ConstantBias(graph, n);

    static bool IsConv(Graph graph, Node n) =>
        n.OpType == "Conv" && graph[n.Inputs[1]].Constant is { Shape.Length: 4 } w && graph[n.Inputs[0]].Shape is { Length: 4 } x
        && ConvOperator.Geometry(n, x, w.Shape).DilationW == 1 && (long)w.Shape[1] * w.Shape[2] * ((w.Shape[3] + 3) / 4 * 4) <= MaxRow && ConstantBias(graph, n);

    public static void Quantize(Graph graph, DataSet calibration, RangeMethod method = RangeMethod.Mse, bool biasCorrection = true, IProgress<CompileProgress>? progress = null)
    {
        var layers = Candidates(graph);
        if (layers.Count == 0) return;
        // One range per tensor: what each layer reads, and the inputs and output of each Add that may add uint8
        // activations (a tensor read by a layer and an Add gets one quantization, as a uint8 tensor has).
        var sources = layers.ToDictionary(n => n, n => AveragedInput(graph, n, layers) ?? n.Inputs[0]);
        var adds = AddCandidates(graph);
        var concats = ConcatCandidates(graph);
        var ranges = new Dictionary<string, ActivationRange>(StringComparer.Ordinal);
        foreach (var tensor in sources.Values.Concat(adds.SelectMany(a => new[] { a.Inputs[0], a.Inputs[1], a.Outputs[0] })).Concat(concats.Select(c => c.Outputs[0])))
            ranges.TryAdd(tensor, new ActivationRange());
        int batch = Math.Max(1, calibration.Inputs[0].Shape.FirstOrDefault(1));
        int runs = Math.Min(calibration.Count / batch, Math.Max(1, MaxSamples / batch));
        // Two passes over the data: the extremes, then the histograms within them.
        // Runs evaluated a few at a time in parallel, observed in order: the ranges do not depend on the thread count.
        int chunk = Math.Max(1, Environment.ProcessorCount);
        foreach (bool histogram in new[] { false, true })
            for (int first = 0; first < runs; first += chunk)
            {
                var computed = new Dictionary<string, TensorData>[Math.Min(chunk, runs - first)];
                Parallel.For(0, computed.Length, i => computed[i] = ReferenceEvaluator.RunAll(graph, Feed(calibration, first + i, batch)));
                foreach (var values in computed)
                    foreach (var (tensor, range) in ranges)
                    {
                        var x = values.TryGetValue(tensor, out var v) ? v.Floats : graph[tensor].Constant!.Floats;
                        if (histogram) range.Accumulate(x); else range.Observe(x);
                    }
                progress?.Report(new CompileProgress(histogram ? "int8 calibration (histograms)" : "int8 calibration (ranges)", first + computed.Length, runs));
            }
        QuantParams Params(string tensor)
        {
            var (lo, hi) = ranges[tensor].Range(method);
            return QuantParams.ForRange(lo, hi);
        }
        var addForms = new Dictionary<Node, Int8Add>();
        foreach (var add in adds)
            if (Int8Add.For(Params(add.Inputs[0]), Params(add.Inputs[1]), Params(add.Outputs[0]), add.Annotations.GetValueOrDefault("activation")) is { } form)
                addForms[add] = form;
        var concatParams = concats.ToDictionary(c => c, c => Params(c.Outputs[0]));
        foreach (var node in layers)
        {
            var input = Params(sources[node]);
            var w = graph[node.Inputs[1]].Constant!;
            node.Form = node.OpType == "Conv" ? new Int8ConvForm(Int8Conv.Quantize(input, w, Int8Conv.HasDepthwiseKernel(graph, node))) : new Int8DenseForm(QuantizeDense(input, w));
        }
        // The mean shift settles well before the ranges do: fewer samples (each costs two evaluations per layer).
        // It is measured on float32 outputs: a requantized output's clipping is no shift for the bias to undo (the
        // layers write float32 until Resolve).
        if (biasCorrection) CorrectBiases(graph, layers, calibration, Math.Min(runs, Math.Max(1, BiasSamples / batch)), batch, progress);
        FindReaders(graph, layers, addForms, concatParams);
        Resolve(graph);
    }

    /// <summary>
    /// Concats that may join uint8 activations (all inputs quantized as the output, so the bytes are copied as
    /// they are): different 4-D tensors computed at run time, the output not a model output.
    /// </summary>
    static List<Node> ConcatCandidates(Graph graph) =>
        [.. graph.Nodes.Where(n => n.OpType == "Concat" && n.Inputs.Count >= 2 && n.Inputs.Distinct().Count() == n.Inputs.Count && graph[n.Outputs[0]].Shape is { Length: 4 }
            && n.Inputs.All(i => i.Length > 0 && graph[i].Constant is null && graph[i].Type == ElementType.Float32) && !graph.Outputs.Contains(n.Outputs[0]))];

    /// <summary>
    /// Adds that may add uint8 activations (<see cref="Int8Add"/>): two different tensors computed at run time, of the
    /// output's shape (no broadcasting), the output not a model output. Whether one does is decided with its
    /// neighbours (<see cref="FindReaders"/>).
    /// </summary>
    static List<Node> AddCandidates(Graph graph) =>
        [.. graph.Nodes.Where(n => n.OpType == "Add" && n.Inputs.Count == 2 && n.Inputs[0] != n.Inputs[1] && !n.Annotations.ContainsKey("bshape")
            && n.Inputs.All(i => graph[i].Constant is null && graph[i].Type == ElementType.Float32 && graph[i].Shape is { } shape && shape.SequenceEqual(graph[n.Outputs[0]].Shape!))
            && !graph.Outputs.Contains(n.Outputs[0]))];

    /// <summary>
    /// Records, for each int8 layer, the int8 layers (and uint8 Adds) reading its output when every reader is one,
    /// reading it as its input x, directly or through 2-D max poolings (max commutes with quantizing: a uint8 pooling
    /// is exact) and Flatten or Reshape (the same bytes under another shape), and the output is not a model output.
    /// An Add of two tensors adds uint8 activations when both come as uint8 straight from an int8 layer or another
    /// such Add, and every reader of its output takes uint8 in the quantization it writes; a Concat joins uint8 when
    /// every input comes straight from an int8 layer written in the Concat's quantization, and every reader of its
    /// output takes uint8 in it. Both are found by elimination, all candidates first, until none fails.
    /// </summary>
    static void FindReaders(Graph graph, List<Node> layers, Dictionary<Node, Int8Add> addForms, Dictionary<Node, QuantParams> concatParams)
    {
        var candidates = layers.ToHashSet();
        var adds = addForms.Keys.ToHashSet();
        var concats = concatParams.Keys.ToHashSet();
        Node? Producer(string value) => graph.Nodes.FirstOrDefault(n => n.Outputs.Contains(value));
        List<(Node, string)>? Int8Readers(string value)
        {
            if (graph.Outputs.Contains(value)) return null;
            var readers = graph.Nodes.Where(n => n.Inputs.Contains(value)).ToList();
            if (readers.Count == 0) return null;
            var found = new List<(Node, string)>();
            foreach (var r in readers)
            {
                if (adds.Contains(r) || concats.Contains(r)) { found.Add((r, value)); continue; }
                if (r.Inputs[0] != value || r.Inputs.Count(i => i == value) != 1) return null;
                if (candidates.Contains(r)) found.Add((r, value));
                else if ((IsBytePool(graph, r) || r.OpType is "Flatten" or "Reshape") && Int8Readers(r.Outputs[0]) is { } after) found.AddRange(after);
                // An average pooling only where its reader's input range was set on the pooling's input (AveragedInput).
                else if (IsByteAverage(graph, r) && Int8Readers(r.Outputs[0]) is { } averaged && averaged.All(a => candidates.Contains(a.Item1) && AveragedInput(graph, a.Item1, layers) == r.Inputs[0])) found.AddRange(averaged);
                else return null;
            }
            return found;
        }
        // What a reader wants for a tensor, nothing being disabled yet (ReaderInput, with the candidate Adds and Concats).
        QuantParams Wanted(Node reader, string tensor) =>
            concats.Contains(reader) ? concatParams[reader]
            : adds.Contains(reader) ? (reader.Inputs[0] == tensor ? addForms[reader].A : addForms[reader].B) : (Of(reader)?.Input ?? OfConv(reader)!.Input);
        bool WritesBytes(Node writer)
        {
            if (adds.Contains(writer) || concats.Contains(writer)) return true;
            if (!candidates.Contains(writer) || Int8Readers(writer.Outputs[0]) is not { } readers) return false;
            var wanted = readers.Select(r => Wanted(r.Item1, r.Item2)).Distinct().ToList();
            var multipliers = Of(writer)?.Multipliers ?? OfConv(writer)!.Multipliers;
            return wanted.Count == 1 && Requantization.For(wanted[0], multipliers, writer.Annotations.GetValueOrDefault("activation"), SumBound(graph, writer)) is not null;
        }
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var add in adds.ToList())
            {
                bool inputsAreBytes = add.Inputs.All(i => Producer(i) is { } p && p.Outputs[0] == i && WritesBytes(p));
                bool outputIsRead = Int8Readers(add.Outputs[0]) is { } readers && readers.All(r => Wanted(r.Item1, r.Item2) == addForms[add].Output);
                if (!inputsAreBytes || !outputIsRead) { adds.Remove(add); changed = true; }
            }
            foreach (var concat in concats.ToList())
            {
                bool inputsAreBytes = concat.Inputs.All(i => Producer(i) is { } p && p.Outputs[0] == i && (candidates.Contains(p) || adds.Contains(p)) && WritesBytes(p));
                bool outputIsRead = Int8Readers(concat.Outputs[0]) is { } readers && readers.All(r => Wanted(r.Item1, r.Item2) == concatParams[concat]);
                if (!inputsAreBytes || !outputIsRead) { concats.Remove(concat); changed = true; }
            }
        }
        // Every node whose uint8 output an Add or a Concat depends on, with it: when mixed precision puts one of the group's
        // layers in float32, every Add and Concat of the group works in float32 (ByteAddOf, ByteConcatOf), and the layers
        // around them write float32 for them.
        var group = new Dictionary<Node, Node>();
        Node Find(Node n) { while (group.TryGetValue(n, out var up) && up != n) n = up; return n; }
        foreach (var node in candidates.Concat(adds).Concat(concats))
        {
            if (Int8Readers(node.Outputs[0]) is not { } readers) continue;
            if (!adds.Contains(node) && !concats.Contains(node) && !readers.Any(r => adds.Contains(r.Item1) || concats.Contains(r.Item1))) continue;
            group.TryAdd(node, node);
            foreach (var (reader, _) in readers) { group.TryAdd(reader, reader); group[Find(reader)] = Find(node); }
        }
        List<string> Group(Node member) { var root = Find(member); return [.. group.Keys.Where(n => candidates.Contains(n) && Find(n) == root).Select(n => n.Name)]; }
        foreach (var add in adds) add.Form = new ByteAddForm(addForms[add], Group(add));
        foreach (var concat in concats) concat.Form = new ByteConcatForm(concatParams[concat], Group(concat));
        foreach (var node in candidates)
        {
            if (Int8Readers(node.Outputs[0]) is not { } readers) continue;
            node.Form = (Int8LayerForm)node.Form with { Readers = [.. readers.Select(r => new LayerReader(r.Item1.Name, r.Item2))], SumBounds = SumBound(graph, node) };
        }
    }

    /// <summary>
    /// The quantization a Concat joins uint8 activations in: every input is written as uint8 in it by an int8 layer (or
    /// a uint8 Add) for this Concat, and every reader of the output takes uint8 in it, so the Concat copies bytes.
    /// Null: it joins float32 (as when mixed precision has put a layer around it in float32).
    /// </summary>
    public static QuantParams? ByteConcatOf(Node node) => (node.Form as ByteConcatForm)?.Params;

    /// <summary>
    /// How an Add adds uint8 activations (the residual connections between int8 layers): its inputs come as uint8 from
    /// int8 layers or such Adds, and it writes uint8 for int8 layers or such Adds. Null: it adds float32, as when
    /// mixed precision has put a layer around it in float32.
    /// </summary>
    public static Int8Add? ByteAddOf(Node node) => (node.Form as ByteAddForm)?.Add;

    /// <summary>
    /// A GlobalAveragePool (GlobalAveragePoolU8) or a 2-D AveragePool (the AveragePool kernel on bytes) that can average
    /// uint8 activations: 4-D input.
    /// </summary>
    public static bool IsByteAverage(Graph graph, Node node) =>
        node.OpType is "GlobalAveragePool" or "AveragePool" && graph[node.Inputs[0]].Shape is { Length: 4 };

    /// <summary>
    /// The quantization of a global average pooling's uint8 input and output, when the layer before writes uint8
    /// for it (the layer after then reads bytes with the same parameters): the output is the rounded integer
    /// mean of the input bytes (<see cref="AverageBytes"/>). Null: the pooling averages float32.
    /// </summary>
    public static QuantParams? ByteAverageOf(Node node) => (node.Form as ByteAverageForm)?.Params;

    /// <summary>The mean of n uint8 values rounded half up, in integers: what GlobalAveragePoolU8 computes.</summary>
    public static byte AverageBytes(int sum, int n) => (byte)((sum + n / 2) / n);

    /// <summary>
    /// For a layer that reads a global average pooling (through a Flatten, perhaps) of an int8 layer's output, the
    /// pooling's input: its range sets the layer's input quantization, so that the layer before can write uint8 for
    /// the pooling to average as bytes with the same parameters (a range set on the means would clip the values
    /// before they are averaged). Null for any other layer.
    /// </summary>
    static string? AveragedInput(Graph graph, Node node, List<Node> layers)
    {
        Node? Producer(string value) => graph.Nodes.FirstOrDefault(n => n.Outputs.Contains(value));
        bool OnlyReader(string value, Node reader) => !graph.Outputs.Contains(value) && graph.Nodes.All(n => n == reader || !n.Inputs.Contains(value));
        var producer = Producer(node.Inputs[0]);
        if (producer?.OpType is "Flatten" or "Reshape" && OnlyReader(producer.Outputs[0], node))
        {
            var flatten = producer;
            producer = Producer(flatten.Inputs[0]);
            if (producer is null || !OnlyReader(producer.Outputs[0], flatten)) return null;
        }
        else if (producer is null || !OnlyReader(producer.Outputs[0], node)) return null;
        if (!IsByteAverage(graph, producer)) return null;
        var writer = Producer(producer.Inputs[0]);
        return writer is not null && layers.Contains(writer) && OnlyReader(writer.Outputs[0], producer) ? producer.Inputs[0] : null;
    }

    /// <summary>A MaxPool that can pass uint8 activations on (ArtifactBuilder lowers it to MaxPoolU8): 2-D, no indices output.</summary>
    public static bool IsBytePool(Graph graph, Node node) =>
        node.OpType == "MaxPool" && graph[node.Inputs[0]].Shape is { Length: 4 } && node.Outputs.Count(o => o.Length > 0) == 1 && node.Outputs[0].Length > 0;

    static Int8Dense QuantizeDense(QuantParams input, TensorData w)
    {
        int n = w.Shape[0], k = w.Shape[1];
        var q = new sbyte[(long)n * k];
        var rowSums = new int[n];
        var scales = ChannelScales.For(input.Scale, [.. Enumerable.Range(0, n).Select(j => SymmetricInt8.Scale(w.Floats.AsSpan((int)((long)j * k), k)))]);
        for (int j = 0; j < n; j++)
        {
            var values = q.AsSpan((int)((long)j * k), k);
            SymmetricInt8.Quantize(w.Floats.AsSpan((int)((long)j * k), k), values, scales.WeightScales[j]);
            foreach (sbyte v in values) rowSums[j] += v;
        }
        return new Int8Dense(input, q, rowSums, scales.Multipliers, n, k) { MultiplierRatios = scales.Ratios, LayerMultiplier = scales.Layer };
    }

    static Dictionary<string, TensorData> Feed(DataSet calibration, int run, int batch)
    {
        var feed = new Dictionary<string, TensorData>(StringComparer.Ordinal);
        for (int i = 0; i < calibration.Inputs.Count; i++)
        {
            long length = calibration.SampleLength(i) * batch;
            feed[calibration.Inputs[i].Name] = new TensorData(calibration.Inputs[i].Shape, calibration.Values[i].AsSpan((int)(run * length), (int)length).ToArray());
        }
        return feed;
    }

    /// <summary>
    /// Bias correction: the mean, over the calibration data (and, for a convolution, over its output
    /// pixels), of what quantization shifts each output channel by (float32 layer minus int8 layer, on
    /// the same float inputs) is added to the layer's bias, so the int8 outputs are centred where the
    /// float ones are. Both the kernel and the evaluator read the corrected bias, so they stay bit for
    /// bit the same.
    /// </summary>
    static void CorrectBiases(Graph graph, List<Node> layers, DataSet calibration, int runs, int batch, IProgress<CompileProgress>? progress)
    {
        var channels = layers.ToDictionary(n => n, n => graph[n.Inputs[1]].Constant!.Shape[0]);
        var shift = layers.ToDictionary(n => n, n => new double[channels[n]]);
        var counts = layers.ToDictionary(n => n, _ => 0L);
        // A few runs at a time in parallel: the float model's values, then each layer quantized and exact on them.
        // Each layer's shifts are summed run by run and element by element, the order of one thread.
        int chunk = Math.Max(1, Environment.ProcessorCount);
        for (int first = 0; first < runs; first += chunk)
        {
            int count = Math.Min(chunk, runs - first);
            // The float model's inputs to each layer (quantization is applied per layer, here without the others).
            var values = new Dictionary<string, TensorData>[count];
            var forms = layers.ToDictionary(n => n, n => n.Form);
            foreach (var node in layers) node.Form = LayerForm.Float32;
            try { Parallel.For(0, count, i => values[i] = ReferenceEvaluator.RunAll(graph, Feed(calibration, first + i, batch))); }
            finally { foreach (var node in layers) node.Form = forms[node]; }
            foreach (var node in layers)
            {
                var op = OperatorSet.Get(node, graph);
                var form = (Int8LayerForm)node.Form;
                // Without the bias: the difference is the same with it.
                TensorData?[] Inputs(int i) => [.. node.Inputs.Take(2).Select(name => values[i].TryGetValue(name, out var v) ? v : graph[name].Constant!)];
                var quantized = new float[count][];
                var exact = new float[count][];
                Parallel.For(0, count, i => quantized[i] = form.Evaluate(node, Inputs(i))[0].Floats);
                Parallel.For(0, count, i => exact[i] = op.Evaluate(node, Inputs(i))[0].Floats);
                for (int i = 0; i < count; i++)
                {
                    // Dense output [rows, N]: channel = index mod N; Conv [N, M, H, W]: channel = index / (H·W) mod M.
                    int m = channels[node], plane = node.OpType == "Conv" ? exact[i].Length / m / Math.Max(1, graph[node.Outputs[0]].Shape![0]) : 1;
                    for (int e = 0; e < exact[i].Length; e++) shift[node][e / plane % m] += (double)exact[i][e] - quantized[i][e];
                    counts[node] += exact[i].Length / m;
                }
            }
            progress?.Report(new CompileProgress("int8 bias correction", first + count, runs));
        }
        foreach (var node in layers)
        {
            int m = channels[node];
            var old = node.HasInput(2) ? graph[node.Inputs[2]].Constant : null;
            if (node.HasInput(2) && (old is null || old.Count != m)) continue; // a computed bias, or one per row as well as per column: left as is
            var corrected = new float[m];
            for (int j = 0; j < m; j++) corrected[j] = (old?.Floats[j] ?? 0f) + (float)(shift[node][j] / Math.Max(1, counts[node]));
            string name = (node.HasInput(2) ? node.Inputs[2] : node.Name + ".bias") + ".corrected";
            while (graph.Values.ContainsKey(name)) name += "_";
            var value = graph.GetOrAdd(name);
            value.Constant = new TensorData([m], corrected);
            value.Shape = [m];
            value.Type = ElementType.Float32;
            node.Form = (Int8LayerForm)node.Form with { Bias = new BiasInputs(node.HasInput(2) ? node.Inputs[2] : null, name) };
            if (node.Inputs.Count > 2) node.Inputs[2] = name; else node.Inputs.Add(name);
        }
    }
}
