using System.Numerics;
using ModelGen.Artifact;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Training;

/// <summary>A trained tensor: a float32 constant of the graph that its consumer's rule says is a weight or a bias.</summary>
public sealed class Parameter(string name, int[] shape, float[] values)
{
    /// <summary>The graph value it is (the initializer's name).</summary>
    public string Name { get; } = name;
    public int[] Shape { get; } = shape;
    /// <summary>The master copy, float32, updated in place by the optimizer.</summary>
    public float[] Values { get; } = values;
}

/// <summary>
/// A graph made trainable: each node's <see cref="GradientRule"/>, the parameters, and which values need a
/// gradient. Forward runs a mini-batch and keeps what the backward pass needs; see <see cref="ForwardPass{T}"/>.
/// </summary>
public sealed class TrainableModel
{
    readonly List<(Node Node, GradientRule Rule, (string Op, float Alpha, float Beta)[] Activation)> _steps = [];
    readonly Dictionary<string, Parameter> _parameters = new(StringComparer.Ordinal);
    readonly HashSet<string> _needsGrad, _needsGradWithInputs;

    public Graph Graph { get; }
    public IReadOnlyList<Parameter> Parameters { get; }

    TrainableModel(Graph graph)
    {
        Graph = graph;
        var parameters = new List<Parameter>();
        foreach (var node in graph.Nodes)
        {
            var rule = OperatorSet.Get(node, graph).Gradient
                ?? throw Refuse(graph, node, $"operator {node.OpType} has no gradient");
            if (rule.Refusal(node, graph) is { } why) throw Refuse(graph, node, why);
            // A shared layer's graph weight holds the values its codes stand for: it trains as float32 (see Share).
            if (node.Form != Ir.LayerForm.Float32 && node.Form is not Compress.SharedWeightsForm)
                throw new InvalidOperationException($"{node.Describe} is already compressed ({node.Form}); train the float32 graph");
            var activation = node.Annotations.TryGetValue("activation", out var chain) ? Activations.ParseChain(chain) : [];
            foreach (var (op, _, _) in activation)
                if (!ElementFunctions.IsTrainable(op)) throw Refuse(graph, node, $"the activation {op} fused into it has no gradient");
            _steps.Add((node, rule, activation));

            for (int i = 0; i < node.Inputs.Count; i++)
            {
                if (!node.HasInput(i)) continue;
                var v = graph[node.Inputs[i]];
                if (v.Constant is { Type: ElementType.Float32 } c && rule.IsParameter(node, i, graph))
                {
                    if (_parameters.ContainsKey(v.Name)) continue;
                    var p = new Parameter(v.Name, c.Shape, (float[])c.Floats.Clone());
                    _parameters[v.Name] = p;
                    parameters.Add(p);
                }
                else if (v.Constant is null && (v.Shape is not { Length: > 0 } || v.Shape[0] != 1))
                    throw new ModelGenException(ErrorCodes.NoBatchAxis, graph.ModelPath,
                        $"{node.Describe}: its input '{v.Name}' has shape [{string.Join(",", v.Shape ?? [])}], without the batch axis of 1 first that training needs; export the model with a leading batch dimension");
            }
        }
        Parameters = parameters;
        _needsGrad = Downstream(_parameters.Keys);
        _needsGradWithInputs = Downstream(_parameters.Keys.Concat(graph.Inputs));
    }

    /// <summary>The values computed from any of <paramref name="sources"/> (and the sources).</summary>
    HashSet<string> Downstream(IEnumerable<string> sources)
    {
        var set = new HashSet<string>(sources, StringComparer.Ordinal);
        foreach (var (node, _, _) in _steps)
            if (node.Inputs.Any(set.Contains))
                foreach (var o in node.Outputs) if (o.Length > 0) set.Add(o);
        return set;
    }

    /// <summary>Makes <paramref name="graph"/> (shapes inferred, normalized, float32) trainable, or says which node cannot train (MG4001, MG4002).</summary>
    public static TrainableModel Build(Graph graph) => new(graph);

    static ModelGenException Refuse(Graph graph, Node node, string why) =>
        new(ErrorCodes.NotTrainable, graph.ModelPath,
            $"{node.Describe}: {why}, so this model cannot be trained (fine-tuning, distillation); it still compiles without training. Operators that train: {string.Join(", ", OperatorSet.Trainable)}");

    /// <summary>Whether a value's gradient is computed: a parameter, or a value computed from one (or from a graph input, when the pass asks for the inputs' gradients).</summary>
    public bool NeedsGradient(string value, bool inputGradients = false) => (inputGradients ? _needsGradWithInputs : _needsGrad).Contains(value);

    /// <summary>
    /// Runs a mini-batch: <paramref name="inputs"/> by graph input name, each [batch, …]. Parameters are read
    /// from <see cref="Parameters"/> (converted when T is not float) unless <paramref name="parameterValues"/> gives
    /// them (the gradient checks perturb parameters in double). <paramref name="inputGradients"/> asks the backward
    /// pass for the gradient of the graph inputs too.
    /// </summary>
    public ForwardPass<T> Forward<T>(IReadOnlyDictionary<string, Tensor<T>> inputs, bool inputGradients = false,
        IReadOnlyDictionary<string, Tensor<T>>? parameterValues = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int batch = -1;
        var values = new Dictionary<string, Tensor<T>>(StringComparer.Ordinal);
        foreach (var name in Graph.Inputs)
        {
            var given = inputs[name];
            var sample = Graph[name].Shape!;
            if (batch < 0) batch = given.Shape[0];
            if (given.Shape[0] != batch || !given.Shape.AsSpan(1).SequenceEqual(sample.AsSpan(1)))
                throw new ArgumentException($"input '{name}' must be [{batch}, {string.Join(", ", sample[1..])}], got [{string.Join(", ", given.Shape)}]");
            values[name] = given;
        }
        var pass = new ForwardPass<T>(this, batch, values, inputGradients, parameterValues);
        foreach (var (node, rule, activation) in _steps) pass.Run(node, rule, activation);
        return pass;
    }

    readonly Dictionary<string, Func<float[], float[]>> _fakeQuantizers = new(StringComparer.Ordinal);

    /// <summary>
    /// Quantization-aware training: the forward pass reads parameter <paramref name="parameter"/> as
    /// <paramref name="roundTrip"/> makes it (quantized and dequantized, as the compression pass will round it)
    /// while the gradient updates the float32 master weights unchanged (the straight-through estimator).
    /// </summary>
    public void FakeQuantize(string parameter, Func<float[], float[]> roundTrip)
    {
        if (!_parameters.ContainsKey(parameter)) throw new ArgumentException($"'{parameter}' is not a trained parameter", nameof(parameter));
        _fakeQuantizers[parameter] = roundTrip;
    }

    readonly Dictionary<string, bool[]> _masks = new(StringComparer.Ordinal);

    /// <summary>
    /// Pruning: the weights of <paramref name="parameter"/> where <paramref name="keep"/> is false are zero from now on,
    /// in the forward pass and in the master copy after every optimizer step (<see cref="ApplyConstraints"/>), so
    /// fine-tuning cannot grow them back. A new mask replaces the old one (a gradual schedule prunes more each step).
    /// </summary>
    public void Mask(string parameter, bool[] keep)
    {
        var p = Parameters.FirstOrDefault(q => q.Name == parameter) ?? throw new ArgumentException($"'{parameter}' is not a trained parameter", nameof(parameter));
        if (keep.Length != p.Values.Length) throw new ArgumentException($"the mask has {keep.Length} entries for {p.Values.Length} weights", nameof(keep));
        _masks[parameter] = keep;
        ApplyConstraints();
    }

    /// <summary>The masks set by <see cref="Mask"/>, by parameter.</summary>
    public IReadOnlyDictionary<string, bool[]> Masks => _masks;

    readonly Dictionary<string, SharedParameter> _shared = new(StringComparer.Ordinal);
    List<Parameter>? _trained;

    /// <summary>
    /// Weight sharing's fine-tuning (Deep Compression): <paramref name="parameter"/>'s values become
    /// <paramref name="shared"/>'s codebook entries at its codes, and from now on the optimizer trains the codebook
    /// instead (<see cref="Trained"/>): each step the weight's gradient is summed per code (<see cref="TrainedGradients{T}"/>)
    /// and the weight is set to codebook[codes] again (<see cref="ApplyConstraints"/>). The codes never change; with
    /// <see cref="Compress.SharedWeights.ZeroCode"/> code 0 stays exactly 0, so pruned weights stay pruned. Returns the
    /// codebook's parameter (a copy of the codebook, named after the weight).
    /// </summary>
    public Parameter Share(string parameter, Compress.SharedWeights shared)
    {
        var p = Parameters.FirstOrDefault(q => q.Name == parameter) ?? throw new ArgumentException($"'{parameter}' is not a trained parameter", nameof(parameter));
        if (shared.Codes.Length != p.Values.Length) throw new ArgumentException($"{shared.Codes.Length} codes for {p.Values.Length} weights", nameof(shared));
        if (_shared.ContainsKey(parameter)) throw new ArgumentException($"'{parameter}' is already shared", nameof(parameter));
        var codebook = new Parameter(parameter + ".codebook", [shared.Codebook.Length], (float[])shared.Codebook.Clone());
        _shared[parameter] = new SharedParameter(p, codebook, shared.Codes, shared.ZeroCode);
        _trained = null;
        ApplyConstraints();
        return codebook;
    }

    /// <summary>A weight trained through its codebook (<see cref="Share"/>).</summary>
    sealed record SharedParameter(Parameter Weight, Parameter Codebook, byte[] Codes, bool ZeroCode);

    /// <summary>The codebook trained in place of a shared weight (<see cref="Share"/>), or null.</summary>
    public Parameter? CodebookOf(string parameter) => _shared.TryGetValue(parameter, out var s) ? s.Codebook : null;

    /// <summary>What the optimizer updates: the parameters, each shared weight replaced by its codebook.</summary>
    public IReadOnlyList<Parameter> Trained => _shared.Count == 0 ? Parameters
        : _trained ??= [.. Parameters.Select(p => _shared.TryGetValue(p.Name, out var s) ? s.Codebook : p)];

    /// <summary>
    /// The gradients of <see cref="Trained"/> from those of <see cref="Parameters"/> (what the backward pass returns):
    /// a codebook entry's gradient is the sum of the gradients of the weights with its code, added in index order
    /// (one fixed scalar order: the same bits on every processor); code 0 of a layer with a zero code gets none.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor<T>> TrainedGradients<T>(IReadOnlyDictionary<string, Tensor<T>> gradients) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (_shared.Count == 0) return gradients;
        var result = new Dictionary<string, Tensor<T>>(gradients, StringComparer.Ordinal);
        foreach (var (name, s) in _shared)
        {
            if (!result.Remove(name, out var g)) continue;
            var sums = new Tensor<T>(s.Codebook.Shape);
            for (int i = 0; i < s.Codes.Length; i++) sums.Data[s.Codes[i]] += g.Data[i];
            if (s.ZeroCode) sums.Data[0] = T.Zero;
            result[s.Codebook.Name] = sums;
        }
        return result;
    }

    /// <summary>
    /// Puts the parameters back inside their constraints: pruned weights to zero, shared weights to their codebook's
    /// entries (a zero code's entry to exactly 0 first); the trainer calls it after each step.
    /// </summary>
    public void ApplyConstraints()
    {
        foreach (var s in _shared.Values)
        {
            if (s.ZeroCode) s.Codebook.Values[0] = 0f;
            for (int i = 0; i < s.Codes.Length; i++) s.Weight.Values[i] = s.Codebook.Values[s.Codes[i]];
        }
        foreach (var p in Parameters)
            if (_masks.TryGetValue(p.Name, out var keep))
                for (int i = 0; i < keep.Length; i++) if (!keep[i]) p.Values[i] = 0f;
    }

    /// <summary>The parameters the forward pass reads quantized (<see cref="FakeQuantize"/>).</summary>
    public IReadOnlyCollection<string> FakeQuantized => _fakeQuantizers.Keys;

    internal Tensor<T>? Constant<T>(string name) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (_parameters.TryGetValue(name, out var p))
        {
            var values = _fakeQuantizers.TryGetValue(name, out var roundTrip) ? roundTrip(p.Values) : p.Values;
            return typeof(T) == typeof(float) ? (Tensor<T>)(object)new Tensor<float>(p.Shape, values) : Tensor<T>.From(p.Shape, values);
        }
        var c = Graph[name].Constant!;
        return c.Type == ElementType.Float32 ? Tensor<T>.From(c) : null;
    }

    /// <summary>A copy of the graph with the trained parameters as its constants.</summary>
    public Graph TrainedGraph()
    {
        var graph = Graph.Clone();
        foreach (var p in Parameters) graph[p.Name].Constant = new TensorData(p.Shape, (float[])p.Values.Clone());
        return graph;
    }
}

/// <summary>One mini-batch's forward pass, kept for its backward pass.</summary>
public sealed class ForwardPass<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    readonly TrainableModel _model;
    readonly Dictionary<string, Tensor<T>> _values;
    readonly bool _inputGradients;
    readonly List<(NodeRun<T> Run, GradientRule Rule, (string Op, float Alpha, float Beta)[] Activation, Tensor<T>[] ActivationInputs)> _runs = [];

    readonly IReadOnlyDictionary<string, Tensor<T>>? _parameterValues;

    internal ForwardPass(TrainableModel model, int batch, Dictionary<string, Tensor<T>> values, bool inputGradients, IReadOnlyDictionary<string, Tensor<T>>? parameterValues)
    {
        _model = model; Batch = batch; _values = values; _inputGradients = inputGradients; _parameterValues = parameterValues;
    }

    public int Batch { get; }

    /// <summary>A value computed in this pass (or a graph input), batched.</summary>
    public Tensor<T> this[string value] => _values[value];

    internal void Run(Node node, GradientRule rule, (string Op, float Alpha, float Beta)[] activation)
    {
        var inputs = new Tensor<T>?[node.Inputs.Count];
        for (int i = 0; i < inputs.Length; i++)
            if (node.HasInput(i)) inputs[i] = _values.TryGetValue(node.Inputs[i], out var t) ? t
                    : _parameterValues is not null && _parameterValues.TryGetValue(node.Inputs[i], out var p) ? p
                    : _model.Constant<T>(node.Inputs[i]);
        var run = new NodeRun<T>(node, _model.Graph, Batch, inputs);
        rule.Forward(run);
        // A fused activation chain: each step's input is kept for its derivative.
        var stepInputs = new Tensor<T>[activation.Length];
        for (int s = 0; s < activation.Length; s++)
        {
            var x = run.Outputs[0];
            var y = new Tensor<T>(x.Shape);
            ElementFunctions.Apply(activation[s].Op, activation[s].Alpha, activation[s].Beta, x.Data, y.Data);
            stepInputs[s] = x;
            run.Outputs[0] = y;
        }
        for (int o = 0; o < node.Outputs.Count && o < run.Outputs.Length; o++)
            if (node.Outputs[o].Length > 0) _values[node.Outputs[o]] = run.Outputs[o];
        _runs.Add((run, rule, activation, stepInputs));
    }

    /// <summary>
    /// Back-propagates <paramref name="outputGradients"/> (the loss's gradient for graph outputs, by name) and
    /// returns the gradient of every parameter (by name) and, when asked in Forward, of the graph inputs.
    /// </summary>
    public Dictionary<string, Tensor<T>> Backward(IReadOnlyDictionary<string, Tensor<T>> outputGradients)
    {
        var grads = new Dictionary<string, Tensor<T>>(StringComparer.Ordinal);
        foreach (var (name, g) in outputGradients)
        {
            var acc = new Tensor<T>(g.Shape);
            g.Data.CopyTo(acc.Data, 0);
            grads[name] = acc;
        }
        var graph = _model.Graph;
        for (int r = _runs.Count - 1; r >= 0; r--)
        {
            var (run, rule, activation, stepInputs) = _runs[r];
            var node = run.Node;
            bool any = false;
            var outGrads = new Tensor<T>?[run.Outputs.Length];
            for (int o = 0; o < outGrads.Length; o++)
                if (o < node.Outputs.Count && grads.TryGetValue(node.Outputs[o], out var g)) { outGrads[o] = g; any = true; }
            if (!any) continue;
            for (int o = 0; o < outGrads.Length; o++) outGrads[o] ??= new Tensor<T>(run.Outputs[o].Shape);
            if (activation.Length > 0)
            {
                var g = new Tensor<T>(outGrads[0]!.Shape);
                outGrads[0]!.Data.CopyTo(g.Data, 0);
                for (int s = activation.Length - 1; s >= 0; s--)
                    ElementFunctions.Backward(activation[s].Op, activation[s].Alpha, activation[s].Beta, stepInputs[s].Data, g.Data, g.Data);
                outGrads[0] = g;
            }
            var inGrads = new Tensor<T>?[node.Inputs.Count];
            bool wanted = false;
            for (int i = 0; i < inGrads.Length; i++)
            {
                if (!node.HasInput(i)) continue;
                string name = node.Inputs[i];
                if (!_model.NeedsGradient(name, _inputGradients)) continue;
                if (!grads.TryGetValue(name, out var acc))
                    grads[name] = acc = new Tensor<T>(run.Inputs[i]!.Shape);
                inGrads[i] = acc;
                wanted = true;
            }
            if (!wanted) continue;
            run.OutputGrads = outGrads;
            run.InputGrads = inGrads;
            rule.Backward(run);
        }
        var result = new Dictionary<string, Tensor<T>>(StringComparer.Ordinal);
        foreach (var p in _model.Parameters) result[p.Name] = grads.TryGetValue(p.Name, out var g) ? g : new Tensor<T>(p.Shape);
        if (_inputGradients)
            foreach (var name in graph.Inputs) result[name] = grads.TryGetValue(name, out var g) ? g : new Tensor<T>(_values[name].Shape);
        return result;
    }
}
