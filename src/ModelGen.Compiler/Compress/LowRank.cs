using System.Globalization;
using MathNet.Numerics.LinearAlgebra;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Compress;

/// <summary>How LowRank chooses each factorized layer's rank.</summary>
public enum LowRankMode { Energy, Bytes, Rank }

/// <summary>
/// The LowRank value (--low-rank): "0.9" or "energy:0.9", the share of each layer's energy (squared singular values)
/// kept; "bytes:0.5", the most the factorized layers may take together as a share of their bytes; "rank:8", a fixed rank.
/// </summary>
public sealed record LowRankTarget(LowRankMode Mode, double Value)
{
    /// <summary>The target, null for none (empty); anything else is MG0007 naming the option and what to write.</summary>
    public static LowRankTarget? Parse(string? text, string file)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        string t = text.Trim();
        int colon = t.IndexOf(':');
        string kind = colon < 0 ? "energy" : t[..colon].Trim().ToLowerInvariant();
        string number = colon < 0 ? t : t[(colon + 1)..].Trim();
        bool share = double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && v < 1;
        const string Forms = "write an energy, the share of each factorized layer's energy (squared singular values) kept, above 0 and below 1 (0.9 or energy:0.9), "
            + "a size budget, the most the factorized layers may take together as a share of their float32 bytes, above 0 and below 1 (bytes:0.5), or a fixed rank, a whole number from 1 (rank:8)";
        return kind switch
        {
            "energy" when share => new(LowRankMode.Energy, v),
            "bytes" when share => new(LowRankMode.Bytes, v),
            "rank" when int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out int r) && r >= 1 => new(LowRankMode.Rank, r),
            _ => throw new ModelGenException(ErrorCodes.BadOption, file, $"LowRank (--low-rank) '{t}' is not a low-rank target: {Forms}"),
        };
    }

    /// <summary>"energy 0.9", "bytes 0.5", "rank 8".</summary>
    public override string ToString() => Mode.ToString().ToLowerInvariant() + " " + Value.ToString("0.###", CultureInfo.InvariantCulture);
}

/// <summary>
/// Low-rank factorization (issue 24, item 3): a fully connected layer's weight W [out, in] as the product of two thin
/// matrices by truncated SVD, W ≈ U_r·(S_r·V_rᵀ). The layer becomes two ordinary Dense layers, in → r (S_r·V_rᵀ, no
/// bias, no activation) then r → out (U_r, the original bias and fused activation), which the existing kernels run.
/// A k×k convolution in one of two forms: a thin k×k convolution to r channels then a 1×1 (W reshaped [out, in·k·k]),
/// or a k×1 convolution to r channels then a 1×k (W reshaped [in·kh, out·kw]: W[o, c, y, x] ≈ Σ_r V[r, c, y]·H[o, r, x],
/// Jaderberg, Vedaldi and Zisserman 2014), whichever computes fewer multiply-adds at the same energy. A layer is
/// factorized only when the two layers hold fewer weights and compute no more multiply-adds than it.
/// </summary>
public static class LowRank
{
    /// <summary>The two forms of a factorized layer (a fully connected layer has only the first).</summary>
    public enum Shape { ThinThenPointwise, Separable }

    /// <summary>One factorized layer: its name, sizes (a convolution's input: in·kh·kw), the rank kept, the form and the multiply-adds per run before and after.</summary>
    public sealed record Factorized(string Layer, int In, int Out, int Rank)
    {
        public Shape Form { get; init; }
        public string FormName { get; init; } = "";
        public long MultiplyAddsBefore { get; init; }
        public long MultiplyAddsAfter { get; init; }
        /// <summary>The share of the layer's energy the rank keeps.</summary>
        public double Energy { get; init; }
    }

    /// <summary>A layer that could be factorized and stays whole, and why.</summary>
    public sealed record Stayed(string Layer, string Why);

    /// <summary>What Apply did: the layers factorized and the ones that stayed.</summary>
    public sealed record Outcome(IReadOnlyList<Factorized> Done, IReadOnlyList<Stayed> Stays)
    {
        /// <summary>With a size budget: the weights of the factorized layers against the budget's (float32 weights), else null.</summary>
        public (long Weights, long Budget)? Budget { get; init; }
    }

    /// <summary>The annotation on a factorized layer's second half: the original layer's name, then its rank and form ("f1\nrank 41, 784→300").</summary>
    public const string Annotation = "low_rank";

    /// <summary>The annotation on a factorized layer's first half (in → r): the original layer's name.</summary>
    public const string FirstHalfAnnotation = "low_rank_in";

    /// <summary>Either half of a factorized layer: lowered unpadded (DenseLayout.Nk32) where the 4-row, 16-column panels would pad its rank.</summary>
    public static bool IsHalf(Node node) => node.Annotations.ContainsKey(Annotation) || node.Annotations.ContainsKey(FirstHalfAnnotation);

    /// <summary>The annotation on a layer that stayed whole: why.</summary>
    public const string StaysAnnotation = "low_rank_stays";

    /// <summary>
    /// The smallest r whose first r squared singular values (largest first) sum to at least <paramref name="energy"/>
    /// of all of them. At least 1.
    /// </summary>
    public static int RankFor(IReadOnlyList<double> singularValues, double energy)
    {
        double total = singularValues.Sum(s => s * s), kept = 0;
        for (int r = 0; r < singularValues.Count; r++)
        {
            kept += singularValues[r] * singularValues[r];
            if (kept >= energy * total) return r + 1;
        }
        return Math.Max(1, singularValues.Count);
    }

    /// <summary>Two layers cost r·(in + out) weights against in·out: factorizing pays only when that is fewer.</summary>
    public static bool Pays(int rank, int inputs, int outputs) => (long)rank * (inputs + outputs) < (long)inputs * outputs;

    /// <summary>Factorizes every layer where it pays, each keeping <paramref name="energy"/> of its energy.</summary>
    public static IReadOnlyList<Factorized> Apply(Graph graph, double energy) => Apply(graph, new LowRankTarget(LowRankMode.Energy, energy)).Done;

    /// <summary>
    /// Factorizes every fully connected layer and convolution with a float32 constant weight where it pays (fewer
    /// weights, no more multiply-adds), the ranks by <paramref name="target"/>; the graph's node order stays
    /// topological (the first half goes just before the second). Layers that stay are annotated with why.
    /// </summary>
    public static Outcome Apply(Graph graph, LowRankTarget target)
    {
        var layers = graph.Nodes.Select(n => Candidate.Of(graph, n)).OfType<Candidate>().ToList();
        var choices = Choose(layers, target, out var budget);
        var done = new List<Factorized>();
        var stays = new List<Stayed>();
        var firstHalves = new Dictionary<Node, Node>();
        foreach (var layer in layers)
        {
            if (choices[layer] is not var (factor, rank))
            {
                string why = layer.WhyStays(target, budget is null ? null : "the size budget is spent");
                layer.Node.Annotations[StaysAnnotation] = why;
                stays.Add(new Stayed(layer.Node.Name, why));
                continue;
            }
            string name = layer.Node.Name;
            firstHalves[layer.Node] = Rewrite(graph, layer, factor, rank);
            var result = new Factorized(name, layer.Inputs, layer.Outputs, rank)
            {
                Form = factor.Form, FormName = layer.FormName(factor.Form), MultiplyAddsBefore = layer.MultiplyAdds,
                MultiplyAddsAfter = factor.MultiplyAddsPerRank * rank, Energy = factor.Kept(rank),
            };
            layer.Node.Annotations[Annotation] = name + "\n" + Describe(result);
            done.Add(result);
        }
        var nodes = new List<Node>(graph.Nodes.Count + firstHalves.Count);
        foreach (var node in graph.Nodes)
        {
            if (firstHalves.TryGetValue(node, out var first)) nodes.Add(first);
            nodes.Add(node);
        }
        graph.Nodes = nodes;
        return new Outcome(done, stays) { Budget = budget };
    }

    /// <summary>"784→300 rank 41" or "3→8 rank 2 (3×1 then 1×3)", as the stage name and the report give a factorized layer.</summary>
    public static string Describe(Factorized f) =>
        FormattableString.Invariant($"{f.In}→{f.Out} rank {f.Rank}") + (f.Form == Shape.Separable ? $" ({f.FormName})" : "");

    /// <summary>
    /// Each layer's form and rank, or null where it stays. Energy and rank: each layer alone, the form with fewer
    /// multiply-adds among those that pay. Bytes: every layer that pays at rank 1 starts there in the first form, then
    /// one rank at a time goes to the layer gaining the most energy (its share of the layer's) per weight while the
    /// factorized layers' weights stay within the budget; a convolution then takes the separable form if it keeps at
    /// least that energy with no more weights and fewer multiply-adds.
    /// </summary>
    static Dictionary<Candidate, (Factor, int)?> Choose(List<Candidate> layers, LowRankTarget target, out (long, long)? budget)
    {
        budget = null;
        var choices = new Dictionary<Candidate, (Factor, int)?>();
        if (target.Mode != LowRankMode.Bytes)
        {
            foreach (var layer in layers)
                choices[layer] = layer.Factors
                    .Select(f => (Factor: f, Rank: target.Mode == LowRankMode.Energy ? RankFor(f.Singular, target.Value) : Math.Min((int)target.Value, f.Singular.Length)))
                    .Where(c => c.Factor.Pays(c.Rank))
                    .OrderBy(c => c.Factor.MultiplyAddsPerRank * c.Rank) // stable: the first form on a tie
                    .Select(c => ((Factor, int)?)(c.Factor, c.Rank)).FirstOrDefault();
            return choices;
        }
        var ranks = new Dictionary<Candidate, int>();
        foreach (var layer in layers)
        {
            choices[layer] = null;
            if (layer.Factors[0].Pays(1)) ranks[layer] = 1;
        }
        long allowed = (long)Math.Floor(target.Value * ranks.Keys.Sum(l => l.Weights) + 1e-9); // 0.7·160 is 112, not 111.99…
        long used = ranks.Sum(r => r.Key.Factors[0].WeightsPerRank);
        while (true)
        {
            Candidate? best = null;
            double bestGain = 0;
            foreach (var layer in layers) // graph order: the first layer wins a tie
            {
                if (!ranks.TryGetValue(layer, out int rank)) continue;
                var f = layer.Factors[0];
                if (!f.Pays(rank + 1) || used + f.WeightsPerRank > allowed) continue;
                double gain = f.Energy(rank) / f.WeightsPerRank;
                if (gain > bestGain) (best, bestGain) = (layer, gain);
            }
            if (best is null) break;
            ranks[best]++;
            used += best.Factors[0].WeightsPerRank;
        }
        budget = (used, allowed);
        foreach (var (layer, rank) in ranks)
        {
            var first = layer.Factors[0];
            choices[layer] = (first, rank);
            if (layer.Factors.Length < 2) continue;
            var separable = layer.Factors[1];
            int same = RankFor(separable.Singular, first.Kept(rank) - 1e-12);
            if (separable.Pays(same) && separable.WeightsPerRank * same <= first.WeightsPerRank * rank
                && separable.MultiplyAddsPerRank * same < first.MultiplyAddsPerRank * rank)
                choices[layer] = (separable, same);
        }
        return choices;
    }

    /// <summary>
    /// Rewrites the layer's node as its second half (r → out: the bias, activation and, renamed with a suffix so that
    /// nothing matching layers by name mistakes it for the original, the node) and gives the new first half.
    /// </summary>
    static Node Rewrite(Graph graph, Candidate layer, Factor factor, int rank)
    {
        var node = layer.Node;
        var (first, second) = factor.Halves(rank);
        string middle = NewName(graph, node.Name + "/low_rank");
        var thin = new Node
        {
            Name = NewNodeName(graph, node.Name + "/low_rank_in"), OpType = node.OpType, Domain = node.Domain,
            Inputs = [node.Inputs[0], AddConstant(graph, node.Name + ".low_rank_in.weight", first)],
            Outputs = [middle],
        };
        foreach (var (key, attribute) in node.Attributes) thin.Attributes[key] = attribute.Clone(); // Dense: onnx_op; Conv: the geometry
        thin.Annotations[FirstHalfAnnotation] = node.Name;
        node.Inputs[0] = middle;
        node.Inputs[1] = AddConstant(graph, node.Name + ".low_rank_out.weight", second);
        if (factor.Form == Shape.Separable && layer.Window is { } g)
        {
            // The vertical convolution takes the vertical kernel, pad, stride and dilation; the horizontal one the horizontal.
            foreach (var n in new[] { thin, node }) n.Attributes.Remove("auto_pad");
            SetInts(thin, "kernel_shape", g.KernelH, 1);
            SetInts(thin, "strides", g.StrideH, 1);
            SetInts(thin, "dilations", g.DilationH, 1);
            SetInts(thin, "pads", g.PadTop, 0, g.PadBottom, 0);
            SetInts(node, "kernel_shape", 1, g.KernelW);
            SetInts(node, "strides", 1, g.StrideW);
            SetInts(node, "dilations", 1, g.DilationW);
            SetInts(node, "pads", 0, g.PadLeft, 0, g.PadRight);
        }
        else if (!layer.Dense)
            foreach (var geometry in new[] { "auto_pad", "dilations", "kernel_shape", "pads", "strides" }) node.Attributes.Remove(geometry);
        graph.GetOrAdd(middle);
        OperatorSet.Get(thin, graph).InferShapes(thin, graph);
        node.Name = NewNodeName(graph, node.Name + "/low_rank_out");
        return thin;
    }

    /// <summary>
    /// The weight two halves compute together, in the original layer's shape: Σ_r second[o, r]·first[r, j] (fully
    /// connected, or a thin convolution then a 1×1), or for k×1 then 1×k W[o, c, y, x] = Σ_r H[o, r, x]·V[r, c, y].
    /// </summary>
    public static TensorData Product(TensorData first, TensorData second)
    {
        int outputs = second.Shape[0], rank = second.Shape[1];
        bool separable = second.Shape is [_, _, 1, > 1];
        int kw = separable ? second.Shape[3] : 1, columns = (int)(first.Count / rank); // separable: c·kh
        var w = new float[(long)outputs * columns * kw];
        for (int o = 0; o < outputs; o++)
            for (int j = 0; j < columns; j++)
                for (int x = 0; x < kw; x++)
                {
                    double sum = 0;
                    for (int k = 0; k < rank; k++) sum += (double)second.Floats[((long)o * rank + k) * kw + x] * first.Floats[(long)k * columns + j];
                    w[((long)o * columns + j) * kw + x] = (float)sum;
                }
        int[] shape = first.Shape.Length == 2 ? [outputs, columns] : [outputs, first.Shape[1], first.Shape[2], separable ? kw : first.Shape[3]];
        return new TensorData(shape, w);
    }

    static void SetInts(Node node, string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        node.Attributes[name] = attribute;
    }

    /// <summary>A layer that could be factorized: a float32 Dense (not transposed input) or 2-D Conv of one group with a constant weight and known shapes.</summary>
    sealed class Candidate
    {
        public required Node Node { get; init; }
        public bool Dense { get; init; }
        public int Outputs { get; init; }
        /// <summary>Each output's weights: in, or in·kh·kw.</summary>
        public int Inputs { get; init; }
        public WindowGeometry? Window { get; init; }
        public long MultiplyAdds { get; init; }
        public required Factor[] Factors { get; init; }
        public long Weights => (long)Outputs * Inputs;

        public static Candidate? Of(Graph graph, Node node)
        {
            bool dense = node.OpType == DenseOperator.Name && node.Int("transA", 0) == 0;
            bool conv = node.OpType == "Conv" && node.Int("group", 1) == 1;
            if (!(dense || conv) || node.Form != LayerForm.Float32 || !node.HasInput(1)) return null;
            if (graph[node.Inputs[1]].Constant is not { Type: ElementType.Float32 } weight || weight.Shape.Length != (dense ? 2 : 4)) return null;
            if (graph[node.Inputs[0]].Shape is not { } x || graph[node.Outputs[0]].Shape is not { } y) return null;
            int outputs = weight.Shape[0], inputs = (int)(weight.Count / outputs);
            if (dense)
            {
                long rows = TensorData.Size(y) / outputs; // the batch (and any leading axes)
                long multiplyAdds = rows * outputs * inputs;
                var matrix = new Factor(Shape.ThinThenPointwise, weight.Floats, outputs, inputs, rows * (inputs + outputs), multiplyAdds, weight.Shape);
                return new Candidate { Node = node, Dense = true, Outputs = outputs, Inputs = inputs, MultiplyAdds = multiplyAdds, Factors = [matrix] };
            }
            if (x.Length != 4 || y.Length != 4) return null;
            int c = weight.Shape[1], kh = weight.Shape[2], kw = weight.Shape[3];
            var g = WindowGeometry.Resolve(graph, node, x, [kh, kw], ceilMode: false);
            long positions = (long)y[0] * y[2] * y[3], original = positions * outputs * inputs;
            var thin = new Factor(Shape.ThinThenPointwise, weight.Floats, outputs, inputs, positions * (inputs + outputs), original, weight.Shape);
            Factor[] factors = [thin];
            if (kh > 1 && kw > 1)
            {
                // W[o, c, y, x] as M[c·kh + y, o·kw + x]; the vertical convolution runs over every input column (no horizontal stride).
                var reshaped = new float[weight.Count];
                for (int o = 0; o < outputs; o++)
                    for (int ci = 0; ci < c; ci++)
                        for (int yy = 0; yy < kh; yy++)
                            for (int xx = 0; xx < kw; xx++)
                                reshaped[(long)(ci * kh + yy) * outputs * kw + o * kw + xx] = weight.Floats[((long)(o * c + ci) * kh + yy) * kw + xx];
                long perRank = (long)y[0] * y[2] * g.InW * c * kh + positions * outputs * kw;
                factors = [thin, new Factor(Shape.Separable, reshaped, c * kh, outputs * kw, perRank, original, weight.Shape)];
            }
            return new Candidate { Node = node, Outputs = outputs, Inputs = inputs, Window = g, MultiplyAdds = original, Factors = factors };
        }

        public string FormName(Shape form) => Dense ? "two fully connected layers"
            : form == Shape.Separable ? $"{Window!.KernelH}×1 then 1×{Window.KernelW}" : $"{Window!.KernelH}×{Window.KernelW} then 1×1";

        /// <summary>Why no form pays: "rank 3 of 3 (energy 0.9): 18 weights in two layers against 9".</summary>
        public string WhyStays(LowRankTarget target, string? budgetSpent)
        {
            if (budgetSpent is not null && Factors[0].Pays(1)) return budgetSpent;
            var reasons = new List<string>();
            foreach (var f in Factors)
            {
                int rank = target.Mode switch
                {
                    LowRankMode.Energy => RankFor(f.Singular, target.Value),
                    LowRankMode.Rank => Math.Min((int)target.Value, f.Singular.Length),
                    _ => 1,
                };
                string form = Dense ? "" : $" as {FormName(f.Form)}";
                long weights = f.WeightsPerRank * rank, multiplyAdds = f.MultiplyAddsPerRank * rank;
                reasons.Add(weights >= Weights
                    ? FormattableString.Invariant($"rank {rank}{form} takes {weights:N0} weights against {Weights:N0}")
                    : FormattableString.Invariant($"rank {rank}{form} computes {multiplyAdds:N0} multiply-adds against {MultiplyAdds:N0}"));
            }
            return string.Join("; ", reasons);
        }
    }

    /// <summary>
    /// One form of a layer's factorization: the SVD of its weight reshaped [Rows, Columns], and what each unit of rank
    /// costs in weights and multiply-adds.
    /// </summary>
    sealed class Factor
    {
        readonly Matrix<double> _u, _vt;
        readonly int[] _shape;

        public Factor(Shape form, float[] matrix, int rows, int columns, long multiplyAddsPerRank, long originalMultiplyAdds, int[] shape)
        {
            (Form, Rows, Columns, MultiplyAddsPerRank, OriginalMultiplyAdds, _shape) = (form, rows, columns, multiplyAddsPerRank, originalMultiplyAdds, shape);
            var svd = Matrix<double>.Build.Dense(rows, columns, (i, j) => matrix[(long)i * columns + j]).Svd(computeVectors: true);
            (Singular, _u, _vt) = (svd.S.ToArray(), svd.U, svd.VT);
            Total = Singular.Sum(s => s * s);
        }

        public Shape Form { get; }
        public int Rows { get; }
        public int Columns { get; }
        public double[] Singular { get; }
        public double Total { get; }
        public long WeightsPerRank => (long)Rows + Columns;
        public long MultiplyAddsPerRank { get; }

        /// <summary>The share of the energy rank <paramref name="rank"/>'s next singular value adds (rank is 0-based here: σ_rank).</summary>
        public double Energy(int rank) => rank < Singular.Length && Total > 0 ? Singular[rank] * Singular[rank] / Total : 0;

        /// <summary>The share of the energy the first <paramref name="rank"/> singular values keep.</summary>
        public double Kept(int rank) => Total > 0 ? Singular.Take(rank).Sum(s => s * s) / Total : 1;

        /// <summary>Fewer weights than the layer, and no more multiply-adds.</summary>
        public bool Pays(int rank) => rank <= Singular.Length && WeightsPerRank * rank < (long)Rows * Columns && MultiplyAddsPerRank * rank <= OriginalMultiplyAdds;

        /// <summary>The original layer's multiply-adds per run.</summary>
        public long OriginalMultiplyAdds { get; }

        /// <summary>The two halves' weights: S_r·V_rᵀ and U_r for the first form, U_r·S_r and V_rᵀ rearranged for the separable one.</summary>
        public (TensorData First, TensorData Second) Halves(int rank)
        {
            int outputs = _shape[0];
            if (Form == Shape.ThinThenPointwise)
            {
                var first = new float[(long)rank * Columns];
                for (int k = 0; k < rank; k++)
                    for (int j = 0; j < Columns; j++) first[(long)k * Columns + j] = (float)(Singular[k] * _vt[k, j]);
                var second = new float[(long)Rows * rank];
                for (int i = 0; i < Rows; i++)
                    for (int k = 0; k < rank; k++) second[(long)i * rank + k] = (float)_u[i, k];
                return _shape.Length == 2
                    ? (new TensorData([rank, Columns], first), new TensorData([outputs, rank], second))
                    : (new TensorData([rank, .. _shape[1..]], first), new TensorData([outputs, rank, 1, 1], second));
            }
            // Rows are c·kh + y, columns o·kw + x: V[r, c, y] = σ_r·U[c·kh + y, r], H[o, r, x] = Vᵀ[r, o·kw + x].
            int kw = _shape[3];
            var vertical = new float[(long)rank * Rows];
            for (int k = 0; k < rank; k++)
                for (int i = 0; i < Rows; i++) vertical[(long)k * Rows + i] = (float)(Singular[k] * _u[i, k]);
            var horizontal = new float[(long)outputs * rank * kw];
            for (int o = 0; o < outputs; o++)
                for (int k = 0; k < rank; k++)
                    for (int x = 0; x < kw; x++) horizontal[((long)o * rank + k) * kw + x] = (float)_vt[k, o * kw + x];
            return (new TensorData([rank, _shape[1], _shape[2], 1], vertical), new TensorData([outputs, rank, 1, kw], horizontal));
        }
    }

    static string AddConstant(Graph graph, string baseName, TensorData data)
    {
        string name = NewName(graph, baseName);
        var v = graph.GetOrAdd(name);
        v.Constant = data;
        v.Shape = data.Shape;
        return name;
    }

    static string NewName(Graph graph, string baseName)
    {
        string name = baseName;
        for (int i = 2; graph.Values.ContainsKey(name); i++) name = baseName + "_" + i;
        return name;
    }

    static string NewNodeName(Graph graph, string baseName)
    {
        string name = baseName;
        for (int i = 2; graph.Nodes.Any(n => n.Name == name); i++) name = baseName + "_" + i;
        return name;
    }
}

/// <summary>
/// Low rank at the Structural stage (--low-rank). It runs before pruning in the same stage (and before the gradual
/// pruning inside fine-tuning): pruning first would be undone, since the factors of a sparse matrix are dense and a
/// pruned matrix has a flatter spectrum (a higher rank for the same energy); factorizing first, pruning then removes
/// weights of the two thin layers, so the savings multiply.
/// </summary>
public sealed class LowRankPass(LowRankTarget target) : ICompressionPass
{
    LowRank.Outcome _outcome = new([], []);

    public LowRankPass(double energy) : this(new LowRankTarget(LowRankMode.Energy, energy)) { }

    /// <summary>"low rank (energy 0.9): f1 784→300 rank 41, f2 300→100 rank 30; stays whole: f3 (why)" (read after Apply); with a size budget the float32 bytes of the factorized layers against it.</summary>
    public string Name
    {
        get
        {
            var done = _outcome.Done;
            string name = $"low rank ({target}): " + (done.Count == 0 ? "no layer pays" : string.Join(", ", done.Select(f => $"{f.Layer} {LowRank.Describe(f)}")));
            if (_outcome.Budget is var (weights, budget))
                name += FormattableString.Invariant($"; the factorized layers {weights * 4:N0} B of a {budget * 4:N0} B budget");
            return _outcome.Stays.Count == 0 ? name : name + "; stays whole: " + string.Join(", ", _outcome.Stays.Select(s => $"{s.Layer} ({s.Why})"));
        }
    }

    public CompressionStageOrder Stage => CompressionStageOrder.Structural;

    public void Apply(Graph graph, PassContext context) => _outcome = LowRank.Apply(graph, target);
}
