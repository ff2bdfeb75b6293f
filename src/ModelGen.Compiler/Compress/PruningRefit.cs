using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>A layer's output error on the calibration inputs, ‖(Ŵ − W)·X‖² / ‖W·X‖², with its weights pruned by magnitude alone and refit.</summary>
public sealed record RefitResult(string Node, double MagnitudeError, double RefitError);

/// <summary>
/// One-shot pruning with layer-wise reconstruction (issue 23, item 4; in the spirit of OBS and SparseGPT's sequential
/// mode): layer by layer in graph order, the mask is chosen by magnitude (<see cref="PruningTarget"/>) and the kept
/// weights of each row are refit by least squares on the layer's inputs over the calibration samples, those inputs
/// computed by the model as the earlier layers were already pruned and refit, so each layer also makes up for the
/// error of those before it. Per row w (kept columns S): minimise ‖X_S·v − X·w‖² + λ‖v − w_S‖², i.e.
/// (H_SS + λI)·v = (H·w)_S + λ·w_S with H = XᵀX; the ridge pulls towards the original weights, λ = 1% of H's mean
/// diagonal (GPTQ's damping), so a layer with fewer samples than inputs stays well posed. A row keeps plain
/// magnitude pruning where the refit would not lower its error. Deterministic: fixed-order sums (<see cref="DenseMath"/>),
/// rows independent.
/// </summary>
public static class PruningRefit
{
    /// <summary>Most calibration samples whose inputs enter a layer's Gram matrix.</summary>
    public const int MaxSamples = 256;

    /// <summary>Most patch rows a convolution takes from one sample (every r-th output position beyond it): bounds the cost on large images.</summary>
    const int MaxRowsPerRun = 4096;

    public static IReadOnlyList<RefitResult> PruneAndRefit(Graph graph, PruningTarget target, DataSet calibration, IProgress<CompileProgress>? progress = null)
    {
        var layers = PrunableLayer.Of(graph);
        // The masks of the original weights: the refit changes the kept values only.
        var masks = target.Masks([.. layers.Select(l => (l, graph[l.Weight].Constant!.Floats))]);
        var feeds = Feeds(calibration, MaxSamples);
        var results = new List<RefitResult>();
        foreach (var layer in layers)
        {
            if (!masks.TryGetValue(layer.Weight, out var keep)) continue;
            int at = graph.Nodes.IndexOf(layer.Node);
            var inputs = feeds.Select(f => Evaluate(graph, f, 0, at)[layer.Node.Inputs[0]]).ToList();
            var w = graph[layer.Weight].Constant!;
            var grams = Grams(layer, w.Shape, inputs);
            if (grams is null)
            {
                PruningMasks.Apply(graph, new Dictionary<string, bool[]> { [layer.Weight] = keep });
                continue;
            }
            var (refit, result) = Refit(w.Floats, keep, layer, grams);
            graph[layer.Weight].Constant = new TensorData(w.Shape, refit);
            results.Add(result);
            progress?.Report(new CompileProgress("pruning refit", results.Count, masks.Count, layer.Node.Name));
        }
        return results;
    }

    /// <summary>The calibration data as the model's input batches: the first samples, at most <paramref name="maxSamples"/>.</summary>
    public static List<Dictionary<string, TensorData>> Feeds(DataSet calibration, int maxSamples)
    {
        int batch = Math.Max(1, calibration.Inputs[0].Shape.FirstOrDefault(1));
        int runs = Math.Min(calibration.Count / batch, Math.Max(1, maxSamples / batch));
        return [.. Enumerable.Range(0, runs).Select(r =>
        {
            var feed = new Dictionary<string, TensorData>(StringComparer.Ordinal);
            for (int i = 0; i < calibration.Inputs.Count; i++)
            {
                long length = calibration.SampleLength(i) * batch;
                feed[calibration.Inputs[i].Name] = new TensorData(calibration.Inputs[i].Shape, calibration.Values[i].AsSpan((int)(r * length), (int)length).ToArray());
            }
            return feed;
        })];
    }

    /// <summary>
    /// The values of nodes [<paramref name="from"/>, <paramref name="to"/>) of the graph, reading earlier values from
    /// <paramref name="known"/> (a feed, or a whole earlier run) and adding to a copy of it.
    /// </summary>
    internal static Dictionary<string, TensorData> Evaluate(Graph graph, IReadOnlyDictionary<string, TensorData> known, int from, int to)
    {
        var values = new Dictionary<string, TensorData>(known, StringComparer.Ordinal);
        TensorData Lookup(string name) => values.TryGetValue(name, out var t) ? t : graph[name].Constant ?? throw new KeyNotFoundException(name);
        for (int i = from; i < to; i++)
        {
            var node = graph.Nodes[i];
            var outputs = ReferenceEvaluator.EvaluateNode(node, graph, Lookup);
            for (int o = 0; o < outputs.Length && o < node.Outputs.Count; o++)
                if (node.Outputs[o].Length > 0) values[node.Outputs[o]] = outputs[o];
        }
        return values;
    }

    /// <summary>
    /// H = XᵀX of the layer's input rows, one per group of a grouped convolution (its rows read that group's channels);
    /// null where the layer's inputs are not rows of its columns (a transposed Dense, a convolution of 3 spatial axes).
    /// </summary>
    internal static double[][]? Grams(PrunableLayer layer, int[] weightShape, IReadOnlyList<TensorData> inputs)
    {
        var node = layer.Node;
        int k = layer.Columns;
        if (node.OpType == DenseOperator.Name)
        {
            if (node.Int("transA", 0) != 0) return null;
            int rows = inputs.Sum(x => (int)(x.Count / k));
            var xt = new double[(long)k * rows];
            int at = 0;
            foreach (var x in inputs)
                for (long r = 0; r < x.Count / k; r++, at++)
                    for (int c = 0; c < k; c++) xt[(long)c * rows + at] = x.Floats[r * k + c];
            return [DenseMath.Gram(xt, k, rows)];
        }
        if (inputs[0].Shape.Length is not (3 or 4)) return null;
        int groups = (int)node.Int("group", 1), channels = inputs[0].Shape[1], groupChannels = channels / groups;
        var grams = Enumerable.Range(0, groups).Select(_ => new double[(long)k * k]).ToArray();
        foreach (var x in inputs)
        {
            var g = ConvOperator.Geometry(node, x.Shape, weightShape);
            int batch = x.Shape[0], width = batch * g.OutH * g.OutW, step = Math.Max(1, (width + MaxRowsPerRun - 1) / MaxRowsPerRun), taken = (width + step - 1) / step;
            var col = new float[(long)k * width];
            var xt = new double[(long)k * taken];
            for (int group = 0; group < groups; group++)
            {
                Training.Kernels.Im2Col.Gather(x.Floats, batch, channels, group * groupChannels, groupChannels, g, col);
                for (int c = 0; c < k; c++)
                    for (int s = 0; s < taken; s++) xt[(long)c * taken + s] = col[(long)c * width + (long)s * step];
                var h = DenseMath.Gram(xt, k, taken);
                for (long i = 0; i < h.LongLength; i++) grams[group][i] += h[i];
            }
        }
        return grams;
    }

    /// <summary>The masked weights with each row's kept values refit (see the class), and the layer's errors.</summary>
    internal static (float[] Weights, RefitResult Result) Refit(float[] weights, bool[] keep, PrunableLayer layer, double[][] grams)
    {
        int rows = layer.Rows, k = layer.Columns, rowsPerGroup = rows / grams.Length;
        var lambdas = grams.Select(h =>
        {
            double diagonal = 0;
            for (int i = 0; i < k; i++) diagonal += h[(long)i * k + i];
            return 0.01 * diagonal / k + 1e-8;
        }).ToArray();
        var result = new float[weights.Length];
        var (reference, magnitude, refit) = (new double[rows], new double[rows], new double[rows]);
        DenseMath.ParallelRows(0, rows, r =>
        {
            var h = grams[Math.Min(grams.Length - 1, r / rowsPerGroup)];
            double lambda = lambdas[Math.Min(grams.Length - 1, r / rowsPerGroup)];
            var w = new double[k];
            for (int c = 0; c < k; c++) w[c] = weights[(long)r * k + c];
            var masked = new double[k];
            var kept = new List<int>();
            for (int c = 0; c < k; c++) if (keep[(long)r * k + c]) { kept.Add(c); masked[c] = w[c]; }
            reference[r] = Quadratic(h, w, k);
            magnitude[r] = Quadratic(h, Difference(masked, w), k);
            var best = masked;
            if (kept.Count > 0 && kept.Count < k)
            {
                int s = kept.Count;
                var hw = new double[k];
                for (int i = 0; i < k; i++) hw[i] = DenseMath.Dot(h.AsSpan(i * k, k), w);
                var a = new double[(long)s * s];
                var b = new double[s];
                for (int i = 0; i < s; i++)
                {
                    for (int j = 0; j < s; j++) a[(long)i * s + j] = h[(long)kept[i] * k + kept[j]];
                    a[(long)i * s + i] += lambda;
                    b[i] = hw[kept[i]] + lambda * w[kept[i]];
                }
                var solved = SolveCholesky(DenseMath.Cholesky(a, s), b, s);
                var candidate = new double[k];
                for (int i = 0; i < s; i++) candidate[kept[i]] = solved[i];
                double error = Quadratic(h, Difference(candidate, w), k);
                if (error < magnitude[r]) (best, refit[r]) = (candidate, error);
                else refit[r] = magnitude[r];
            }
            else refit[r] = magnitude[r];
            for (int c = 0; c < k; c++) result[(long)r * k + c] = (float)best[c];
        }, (long)k * k * k / 8);
        double total = Math.Max(1e-30, reference.Sum());
        return (result, new RefitResult(layer.Node.Name, magnitude.Sum() / total, refit.Sum() / total));
    }

    static double[] Difference(double[] a, double[] b) => [.. a.Select((v, i) => v - b[i])];

    /// <summary>vᵀ·H·v.</summary>
    static double Quadratic(double[] h, double[] v, int k)
    {
        double sum = 0;
        for (int i = 0; i < k; i++) if (v[i] != 0) sum += v[i] * DenseMath.Dot(h.AsSpan(i * k, k), v);
        return sum;
    }

    /// <summary>x with L·Lᵀ·x = b (L lower, row-major): forward then back substitution.</summary>
    static double[] SolveCholesky(double[] l, double[] b, int n)
    {
        var y = new double[n];
        for (int i = 0; i < n; i++) y[i] = (b[i] - DenseMath.Dot(l.AsSpan(i * n, i), y.AsSpan(0, i))) / l[(long)i * n + i];
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double sum = y[i];
            for (int j = i + 1; j < n; j++) sum -= l[(long)j * n + i] * x[j];
            x[i] = sum / l[(long)i * n + i];
        }
        return x;
    }
}
