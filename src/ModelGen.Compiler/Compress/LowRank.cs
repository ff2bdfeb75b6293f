using MathNet.Numerics.LinearAlgebra;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// Low-rank factorization (issue 24, item 3): a fully connected layer's weight W [out, in] as the product of two thin
/// matrices by truncated SVD, W ≈ U_r·(S_r·V_rᵀ). The layer becomes two ordinary Dense layers, in → r (S_r·V_rᵀ, no
/// bias, no activation) then r → out (U_r, the original bias and fused activation), which the existing kernels run.
/// A convolution likewise: a thin convolution to r channels, then a 1×1 convolution.
/// </summary>
public static class LowRank
{
    /// <summary>One factorized layer: its name, sizes and the rank kept.</summary>
    public sealed record Factorized(string Layer, int In, int Out, int Rank);

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

    /// <summary>
    /// Factorizes every fully connected layer and convolution with a float32 constant weight where it pays, rank by
    /// <paramref name="energy"/>; the graph's node order stays topological (the thin layer goes just before).
    /// </summary>
    public static IReadOnlyList<Factorized> Apply(Graph graph, double energy)
    {
        var done = new List<Factorized>();
        var nodes = new List<Node>(graph.Nodes.Count);
        foreach (var node in graph.Nodes)
        {
            if (Factorize(graph, node, energy) is var (thin, result))
            {
                nodes.Add(thin);
                done.Add(result);
            }
            nodes.Add(node);
        }
        graph.Nodes = nodes;
        return done;
    }

    /// <summary>
    /// Rewrites <paramref name="node"/> as its r → out half and gives the new in → r node, or null when the layer stays
    /// (not a plain float32 Dense or 2-D Conv of one group, transposed input, or factorizing does not pay). The second
    /// half keeps the node's name suffixed, so nothing that matches layers by name (the report, per-layer precisions)
    /// mistakes it for the original. A k×k convolution, W reshaped [out, in·k·k], becomes a thin k×k convolution to r
    /// channels (the original's geometry) then a 1×1 convolution r → out.
    /// </summary>
    static (Node Thin, Factorized Result)? Factorize(Graph graph, Node node, double energy)
    {
        bool dense = node.OpType == DenseOperator.Name && node.Int("transA", 0) == 0;
        bool conv = node.OpType == "Conv" && node.Int("group", 1) == 1;
        if (!(dense || conv) || node.Form != LayerForm.Float32 || !node.HasInput(1)) return null;
        if (graph[node.Inputs[1]].Constant is not { Type: ElementType.Float32 } weight || weight.Shape.Length != (dense ? 2 : 4)) return null;
        int outputs = weight.Shape[0], inputs = (int)(weight.Count / outputs);
        if (Truncate(weight.Floats, outputs, inputs, energy) is not var (first, second, rank)) return null;

        string middle = NewName(graph, node.Name + "/low_rank");
        var thin = new Node
        {
            Name = NewNodeName(graph, node.Name + "/low_rank_in"), OpType = node.OpType, Domain = node.Domain,
            Inputs = [node.Inputs[0], AddConstant(graph, node.Name + ".low_rank_in.weight", new TensorData([rank, .. weight.Shape[1..]], first))],
            Outputs = [middle],
        };
        foreach (var (key, attribute) in node.Attributes) thin.Attributes[key] = attribute.Clone(); // Dense: onnx_op; Conv: the geometry
        graph.GetOrAdd(middle);
        OperatorSet.Get(thin, graph).InferShapes(thin, graph);
        node.Inputs[0] = middle;
        node.Inputs[1] = AddConstant(graph, node.Name + ".low_rank_out.weight", new TensorData(dense ? [outputs, rank] : [outputs, rank, 1, 1], second));
        if (conv) foreach (var geometry in new[] { "auto_pad", "dilations", "kernel_shape", "pads", "strides" }) node.Attributes.Remove(geometry);
        string name = node.Name;
        node.Name = NewNodeName(graph, name + "/low_rank_out");
        return (thin, new Factorized(name, inputs, outputs, rank));
    }

    /// <summary>
    /// W [rows, cols] ≈ U_r·(S_r·V_rᵀ) with r by <paramref name="energy"/>: S_r·V_rᵀ [r, cols] and U_r [rows, r],
    /// or null when that does not pay.
    /// </summary>
    static (float[] First, float[] Second, int Rank)? Truncate(float[] weight, int rows, int cols, double energy)
    {
        if (!Pays(1, cols, rows)) return null;
        var svd = Matrix<double>.Build.Dense(rows, cols, (i, j) => weight[(long)i * cols + j]).Svd(computeVectors: true);
        var singular = svd.S.ToArray();
        int rank = RankFor(singular, energy);
        if (!Pays(rank, cols, rows)) return null;
        var (u, vt) = (svd.U, svd.VT);
        var first = new float[(long)rank * cols];
        for (int k = 0; k < rank; k++)
            for (int j = 0; j < cols; j++) first[(long)k * cols + j] = (float)(singular[k] * vt[k, j]);
        var second = new float[(long)rows * rank];
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < rank; k++) second[(long)i * rank + k] = (float)u[i, k];
        return (first, second, rank);
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
/// Low rank at the Structural stage (--low-rank ENERGY). It runs before pruning in the same stage (and before the
/// gradual pruning inside fine-tuning): pruning first would be undone, since the factors of a sparse matrix are dense
/// and a pruned matrix has a flatter spectrum (a higher rank for the same energy); factorizing first, pruning then
/// removes weights of the two thin layers, so the savings multiply.
/// </summary>
public sealed class LowRankPass(double energy) : ICompressionPass
{
    IReadOnlyList<LowRank.Factorized> _done = [];

    /// <summary>"low rank (energy 0.9): f1 784→300 rank 41, f2 300→100 rank 30" (read after Apply).</summary>
    public string Name => FormattableString.Invariant($"low rank (energy {energy:0.###}): ")
        + (_done.Count == 0 ? "no layer pays" : string.Join(", ", _done.Select(f => FormattableString.Invariant($"{f.Layer} {f.In}→{f.Out} rank {f.Rank}"))));

    public CompressionStageOrder Stage => CompressionStageOrder.Structural;

    public void Apply(Graph graph, PassContext context) => _done = LowRank.Apply(graph, energy);
}
