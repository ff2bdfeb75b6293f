using System.Globalization;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// How the compressed model's output is compared with the original's (item metadata Measure, --measure):
/// <c>classification</c> (top-1 over the last axis), <c>binary</c> (each output value a decision, positive
/// when above <see cref="Threshold"/>), <c>regression</c> (the output error, also relative to the range of the
/// original outputs). Chosen from the model when not given: a first output whose last axis has 2 or more
/// values is classification; one value is binary when a Sigmoid computes it, regression otherwise.
/// </summary>
public sealed record OutputMeasure(string Kind, double Threshold = 0.5)
{
    public const string Classification = "classification", Binary = "binary", Regression = "regression";
    public static readonly string[] Kinds = [Classification, Binary, Regression];

    public override string ToString() => Kind == Binary ? FormattableString.Invariant($"binary:{Threshold:G}") : Kind;

    /// <summary>"classification", "binary", "binary:0.7", "regression" (case-insensitive); anything else is MG0007.</summary>
    public static OutputMeasure Parse(string spec, string file)
    {
        string s = spec.Trim().ToLowerInvariant();
        int colon = s.IndexOf(':');
        string kind = colon < 0 ? s : s[..colon];
        if (kind == Binary && colon < 0) return new(Binary);
        if (kind == Binary && double.TryParse(s[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double t) && double.IsFinite(t))
            return new(Binary, t);
        if (colon < 0 && kind is Classification or Regression) return new(kind);
        throw new ModelGenException(ErrorCodes.BadOption, file,
            $"Measure '{spec}' is not one of classification, binary, binary:<threshold> (a finite number, e.g. binary:0.7) or regression; set the Measure metadata (--measure) to one of them, or leave it empty to choose from the model's output");
    }

    /// <summary>The measure given, or the one the model's first output calls for (<paramref name="graph"/> normalized).</summary>
    public static OutputMeasure For(Graph graph, string? spec)
    {
        if (!string.IsNullOrWhiteSpace(spec)) return Parse(spec, graph.ModelPath);
        string output = graph.Outputs[0];
        if (CompressionReport.Classes(graph) >= 2) return new(Classification);
        // One value: a probability when a Sigmoid (a node, or fused into the layer) computes it.
        var producer = graph.Nodes.LastOrDefault(n => n.Outputs.Contains(output));
        bool sigmoid = producer is not null && (producer.OpType is "Sigmoid" or "HardSigmoid"
            || producer.Annotations.TryGetValue("activation", out var a) && ModelGen.Artifact.Activations.ParseChain(a)[^1].Op is "Sigmoid" or "HardSigmoid");
        return new(sigmoid ? Binary : Regression);
    }

    /// <summary>How many values of the first output one label stands for: a row of class scores, or one decision.</summary>
    public int ValuesPerRow(int classes) => Kind == Classification ? classes : 1;

    /// <summary>The classes labels index: the output's for classification, 0 and 1 for binary (regression takes no labels).</summary>
    public int LabelClasses(int classes) => Kind == Binary ? 2 : classes;
}

/// <summary>
/// The comparison of the compressed model's first output with the original's, accumulated run by run: rows
/// that agree (top-1, or the decision at the threshold), right against the labels, and the output error
/// (worst, mean absolute, RMSE) with the original outputs' range.
/// </summary>
public sealed class MeasureTally(OutputMeasure measure, int classes, long[]? labels)
{
    public OutputMeasure Measure => measure;
    public int Rows, Same, RightOriginal, RightCompressed;
    public double Worst, SumAbs, SumSquares, Min = double.PositiveInfinity, Max = double.NegativeInfinity;
    public long Values;

    public void Add(float[] original, float[] compressed)
    {
        for (int i = 0; i < original.Length; i++)
        {
            double d = Math.Abs((double)original[i] - compressed[i]);
            Worst = Math.Max(Worst, d);
            SumAbs += d;
            SumSquares += d * d;
            Min = Math.Min(Min, original[i]);
            Max = Math.Max(Max, original[i]);
            Values++;
        }
        if (measure.Kind == OutputMeasure.Regression) return;
        int width = measure.ValuesPerRow(classes);
        for (int row = 0; row + width <= original.Length; row += width, Rows++)
        {
            int a, b;
            if (measure.Kind == OutputMeasure.Binary) { a = original[row] > measure.Threshold ? 1 : 0; b = compressed[row] > measure.Threshold ? 1 : 0; }
            else { a = ArgMax(original, row, width); b = ArgMax(compressed, row, width); }
            if (a == b) Same++;
            if (labels is not null && Rows < labels.Length)
            {
                if (a == labels[Rows]) RightOriginal++;
                if (b == labels[Rows]) RightCompressed++;
            }
        }
    }

    /// <summary>The original outputs' range (max − min), what a regression's relative error is taken against.</summary>
    public double Range => Max > Min ? Max - Min : 0;

    /// <summary>
    /// The loss a budget bounds: in percent (<paramref name="percent"/>), the top-1 or decision drop (accuracy
    /// against the labels, else disagreement) or, for regression, the worst error relative to the range; else
    /// the worst output error.
    /// </summary>
    public double Loss(bool percent)
    {
        if (!percent) return Worst;
        if (measure.Kind == OutputMeasure.Regression) return Range > 0 ? Worst / Range : Worst > 0 ? double.PositiveInfinity : 0;
        if (labels is not null) return (double)(RightOriginal - RightCompressed) / Math.Max(1, Rows);
        return 1 - (double)Same / Math.Max(1, Rows);
    }

    static int ArgMax(float[] v, int start, int count)
    {
        int best = 0;
        for (int i = 1; i < count; i++) if (v[start + i] > v[start + best]) best = i;
        return best;
    }
}
