using System.Runtime.InteropServices;
using Google.Protobuf;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Ir;
using ModelGen.Onnx;
using ModelGen.Onnx.Proto;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Pruning;

/// <summary>
/// Pruned convolution weights made in the test (the N:M mask selection is another part of issue 23: here 2:4 zeroes
/// the 2 smallest of each group of 4 columns of a row), and models compiled with the sparse storage pass alone.
/// </summary>
public static class SparseConvModels
{
    /// <summary>Each group of 4 columns of each row keeps its 2 largest magnitudes (a short last group keeps at most 2).</summary>
    public static float[] TwoOfFour(float[] w, int rows) => NOfM(w, rows, 2, 4);

    /// <summary>The <paramref name="sparsity"/> share of the weights with the smallest magnitudes zeroed (ties by position).</summary>
    public static float[] Unstructured(float[] w, double sparsity)
    {
        var pruned = (float[])w.Clone();
        foreach (int i in Enumerable.Range(0, w.Length).OrderBy(i => Math.Abs(w[i])).ThenBy(i => i).Take((int)(sparsity * w.Length))) pruned[i] = 0f;
        return pruned;
    }

    /// <summary>Each group of <paramref name="m"/> columns of each row keeps its <paramref name="n"/> largest magnitudes.</summary>
    public static float[] NOfM(float[] w, int rows, int n, int m)
    {
        var pruned = (float[])w.Clone();
        int columns = w.Length / rows;
        for (int r = 0; r < rows; r++)
            for (int first = 0; first < columns; first += m)
            {
                var group = Enumerable.Range(first, Math.Min(m, columns - first)).Select(c => r * columns + c).OrderBy(i => Math.Abs(w[i])).ThenBy(i => i).ToList();
                foreach (int i in group.Take(Math.Max(0, group.Count - n))) pruned[i] = 0f;
            }
        return pruned;
    }

    /// <summary>"2:4" (or another N:M such as "4:8") or an unstructured share such as "0.9".</summary>
    public static float[] Prune(float[] w, int rows, string kind) =>
        kind == "2:4" ? TwoOfFour(w, rows)
        : kind.Contains(':') ? NOfM(w, rows, int.Parse(kind.Split(':')[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(kind.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture))
        : Unstructured(w, double.Parse(kind, System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>A copy of the model at <paramref name="path"/> with the weights of every convolution but the depthwise ones pruned as <paramref name="kind"/> says.</summary>
    public static string PrunedCopy(string path, string kind)
    {
        var model = OnnxModelLoader.Load(path);
        var weights = model.Graph.Node.Where(n => n.OpType == "Conv" && n.Input.Count > 1).ToDictionary(n => n.Input[1], n => n.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1);
        foreach (var t in model.Graph.Initializer)
        {
            if (!weights.TryGetValue(t.Name, out long group) || (group > 1 && t.Dims[1] == 1)) continue;
            float[] values = t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray() : [.. t.FloatData];
            float[] pruned = Prune(values, (int)t.Dims[0], kind);
            t.FloatData.Clear();
            t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(pruned.AsSpan()));
        }
        string dir = Path.Combine(Path.GetTempPath(), "modelgen-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string copy = Path.Combine(dir, Path.GetFileNameWithoutExtension(path) + "-" + kind.Replace(":", "of") + ".onnx");
        File.WriteAllBytes(copy, model.ToByteArray());
        return copy;
    }

    /// <summary>The model compiled with only the sparse storage pass (its weights pruned already), and the graph it was built from.</summary>
    public static (ModelArtifact Artifact, Graph Graph) Compile(string path, string className, string simd = "auto", double? maxKeptShare = null)
    {
        var options = new CompileOptions { ModelPath = path, ClassName = className, Namespace = "Sparse.Conv", Simd = simd };
        var graph = ModelCompiler.Normalized(options);
        CompressionPipeline.Run(graph, [new SparseConvStoragePass(maxKeptShare)], new PassContext(CompressionPlan.Parse(options), null));
        return (ModelCompiler.Compile(options, graph, out _), graph);
    }

    /// <summary>The artifact's Conv kernels computed sparse.</summary>
    public static List<ArtifactNode> SparseConvs(ModelArtifact artifact) => [.. artifact.Nodes.Where(n => n.Conv?.Method == ConvMethod.Sparse)];
}
