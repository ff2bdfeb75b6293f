using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Pruning;

/// <summary>
/// Sparse fully connected layers (issue 23, item 5): the storage stage picks the format the weights allow, the
/// emitted kernels (every format, float32 and int8 values, every SIMD level through eng/test.sh) compute what the
/// evaluator computes and, on float models pruned exactly as built, what ONNX Runtime computes, and the weight
/// bytes the pipeline reports are the bytes the layout embeds.
/// </summary>
public sealed class SparseDenseConformanceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The weight patterns: name → (rows, columns, the format's text, how the kept weights are placed).</summary>
    static (int Rows, int Columns, string Format, Func<Random, int, int, float[]> Weights) Case(string name) => name switch
    {
        // 6% kept, row 3 empty, row 5 with columns 0 and 600 only (a gap of 600: padding at 255 and 510), a run of 5 (no N:M).
        "u8" => (37, 601, "u8", (random, rows, columns) =>
        {
            var w = Scatter(random, rows, columns, 0.06);
            Array.Clear(w, 3 * columns, columns);
            Array.Clear(w, 5 * columns, columns);
            w[5 * columns] = 0.5f; w[5 * columns + 600] = -0.75f;
            for (int c = 10; c < 15; c++) w[c] = 0.25f;
            return w;
        }),
        // 20% kept: gaps mostly under 16 (4-bit relative indices, padding the rare wider gap).
        "u4" => (13, 97, "u4", (random, rows, columns) =>
        {
            var w = Scatter(random, rows, columns, 0.2);
            Array.Clear(w, 2 * columns, columns);
            for (int c = 20; c < 25; c++) w[c] = -0.5f;
            return w;
        }),
        // 10% and 4% kept: 5- and 6-bit relative indices (read across bytes), with padding where a gap is wider than 31 or 63.
        "u5" => (11, 300, "u5", (random, rows, columns) => Scatter(random, rows, columns, 0.1)),
        "u6" => (9, 500, "u6", (random, rows, columns) => Scatter(random, rows, columns, 0.04)),
        // 30% kept over 1,200 columns: rows of more than 255 entries, whose counts take 16 bits.
        "u4-long-rows" => (5, 1200, "u4", (random, rows, columns) => Scatter(random, rows, columns, 0.3)),
        // At most one per group of 4 (columns 50: a last group of 2).
        "1:4" => (9, 50, "1:4", (random, rows, columns) => Groups(random, rows, columns, 4, 1, 1)),
        // Exactly two per group of 4 but in a short last group (81 columns: the last group has 1).
        "2:4" => (11, 81, "2:4", (random, rows, columns) => Groups(random, rows, columns, 4, 2, 2)),
        // Three or four per group of 8, a group's first four all kept in row 0 (so not 2:4); 45 columns: a last group of 5.
        "4:8" => (7, 45, "4:8", (random, rows, columns) =>
        {
            var w = Groups(random, rows, columns, 8, 3, 4);
            Array.Clear(w, 0, 8);
            for (int c = 0; c < 4; c++) w[c] = 0.3f + c;
            return w;
        }),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Nonzero values (|v| at least 0.05) at a <paramref name="share"/> of the places, the rest zero.</summary>
    static float[] Scatter(Random random, int rows, int columns, double share)
    {
        var w = new float[rows * columns];
        for (int i = 0; i < w.Length; i++) if (random.NextDouble() < share) w[i] = Value(random);
        return w;
    }

    /// <summary>Per group of <paramref name="m"/> columns between <paramref name="least"/> and <paramref name="most"/> nonzero values, at random places.</summary>
    static float[] Groups(Random random, int rows, int columns, int m, int least, int most)
    {
        var w = new float[rows * columns];
        for (int r = 0; r < rows; r++)
            for (int first = 0; first < columns; first += m)
            {
                int width = Math.Min(m, columns - first), keep = Math.Min(width, random.Next(least, most + 1));
                foreach (int c in Enumerable.Range(first, width).OrderBy(_ => random.Next()).Take(keep)) w[r * columns + c] = Value(random);
            }
        return w;
    }

    static float Value(Random random) => (float)((random.NextDouble() * 0.95 + 0.05) * (random.Next(2) == 0 ? -1 : 1));

    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (string pattern in new[] { "u8", "u4", "u5", "u6", "u4-long-rows", "1:4", "2:4", "4:8" })
            foreach (string compression in new[] { "none", "int8-weights", "shared-3", "shared-4" })
                foreach (string simd in new[] { "auto", "none" }) data.Add(pattern, compression, simd);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SparseKernelsComputeWhatTheEvaluatorAndOnnxRuntimeCompute(string pattern, string compression, string simd)
    {
        var (rows, columns, format, weights) = Case(pattern);
        var random = new Random(23);
        var w = weights(random, rows, columns);
        // One layer, with a Relu fused: y = relu(x·Wᵀ + b), its weights already pruned, so ONNX Runtime runs the model the kernel computes.
        string path = new OnnxBuilder(13, "sparse").Input("x", 1, columns)
            .Initializer("w", [rows, columns], w).Initializer("b", [rows], [.. Enumerable.Range(0, rows).Select(i => 0.01f * i)])
            .Node("Gemm", ["x", "w", "b"], ["h"], ("transB", 1)).Node("Relu", ["h"], ["y"]).Output("y").Save();
        // The kernel for the pattern, whether or not the storage stage would choose it (it chooses by the measured
        // cost: of these, only the 6% unstructured layer is faster sparse than dense).
        var chosen = SparseStorage.Choose(w, rows, columns, 4);
        // Of these, only the sparsest unstructured layers (6%, 10%, 4% kept) are faster sparse than dense: stored with the
        // relative index width of the fewest bytes (6% of 601 columns takes fewer as 5 or 6 bits than 8).
        if (pattern is "u8" or "u5" or "u6")
            Assert.Equal(SparseStorage.UnstructuredIndexBits.Min(bits => SparseWeights.Unstructured(w, rows, columns, bits).Bytes(4)), chosen!.Bytes(4));
        else Assert.Null(chosen);
        // shared-B: weight sharing with codebooks of 2^B values (code 0 for the zeros), the codes stored sparse.
        int? sharingBits = compression.StartsWith("shared-", StringComparison.Ordinal) ? compression[^1] - '0' : null;
        var options = new CompileOptions { ModelPath = path, ClassName = "Sparse", Namespace = "SparseTests", Simd = simd, Compression = sharingBits is null ? compression : "none", WeightSharing = sharingBits };
        var prepared = ModelCompiler.Prepare(options);
        var dense = prepared.Nodes.Single(n => n.OpType == "Dense");
        var int8 = WeightQuantization.Of(dense);
        // (With sharing the plan runs sparse storage too: a layer it found worth storing sparse holds its codes already.)
        if (((dense.Form as SharedWeightsForm)?.Weights ?? (dense.Form as SparseDenseForm)?.Shared) is { } shared)
        {
            var coded = Store(pattern, SparseStorage.CodeValues(shared), rows, columns);
            dense.Form = new SparseDenseForm(coded, null, shared);
            // Worked out here: the codes packed B bits each over every entry (with a byte of slack below 8 bits: four codes are read at once),
            // the indices per row from a byte, when unstructured a count per row (a byte, two when a row holds 256 entries
            // or more), the codebook in float32.
            var perRow = Enumerable.Range(0, rows).Select(r => coded.RowStarts[r + 1] - coded.RowStarts[r]).ToList();
            long indexBytes = perRow.Sum(n => ((long)n * coded.IndexBits + 7) / 8) + (8 % coded.IndexBits == 0 ? 0 : 1); // 5, 6 bits: a byte of slack
            long countBytes = pattern[0] != 'u' ? 0 : rows * (perRow.All(n => n < 256) ? 1 : 2);
            Assert.Equal(pattern == "u4-long-rows", countBytes == 2 * rows);
            long expected = ((long)coded.Entries * shared.Bits + 7) / 8 + (shared.Bits == 8 ? 0 : 1) + indexBytes + countBytes + 4 * (1 << shared.Bits);
            Assert.Equal(expected, ((SparseDenseForm)dense.Form).Bytes);
        }
        else
        {
            float[] values = int8 is null ? prepared[dense.Inputs[1]].Constant!.Floats : [.. int8.Q.Select(q => (float)q)];
            dense.Form = new SparseDenseForm(Store(pattern, values, rows, columns), int8);
        }
        var artifact = ModelCompiler.Compile(options, prepared, out _);
        var node = Assert.Single(artifact.Nodes, n => n.Kernel == KernelKind.Dense);
        Assert.Equal(DenseLayout.Sparse, node.Dense!.Layout);
        Assert.Equal(format, node.Dense.Sparse!.Text);
        Assert.Equal(compression == "int8-weights", node.Dense.Sparse.Int8);
        Assert.Equal(sharingBits ?? 0, node.Dense.Sparse.CodeBits);
        AssertBytesAsEmbedded(artifact, prepared);

        var models = GeneratedModels.Build(artifact);
        using var ort = new OnnxRuntimeOracle(path);
        for (int trial = 0; trial < 5; trial++)
        {
            var x = OnnxBuilder.Random(columns, 100 + trial);
            var y = new float[rows];
            models.Run(artifact, [x], [y]);
            var evaluated = ReferenceEvaluator.Run(prepared, new Dictionary<string, TensorData> { ["x"] = new([1, columns], x) })[prepared.Outputs[0]].Floats;
            Tolerance.AssertClose(evaluated, y, $"{pattern} {compression} {simd}, input {trial}: against the evaluator");
            if (compression == "none") Tolerance.AssertClose(ort.Run(("x", x, [1, columns]))[0], y, $"{pattern} {simd}, input {trial}: against ONNX Runtime");
        }
    }

    static SparseWeights Store(string pattern, float[] w, int rows, int columns) => pattern switch
    {
        "u4" or "u4-long-rows" => SparseWeights.Unstructured(w, rows, columns, 4),
        "u5" => SparseWeights.Unstructured(w, rows, columns, 5),
        "u6" => SparseWeights.Unstructured(w, rows, columns, 6),
        "u8" => SparseWeights.Unstructured(w, rows, columns, 8),
        _ => SparseWeights.NOfM(w, rows, columns, pattern[0] - '0', pattern[2] - '0')!,
    };

    /// <summary>Each sparse layer's bytes as the pipeline counts them (SparseDenseForm.Bytes) are its embedded tensors' bytes.</summary>
    internal static void AssertBytesAsEmbedded(ModelArtifact artifact, Graph prepared)
    {
        foreach (var node in artifact.Nodes.Where(n => n.Dense?.Sparse is not null))
        {
            var form = Assert.IsType<SparseDenseForm>(prepared.Nodes.Single(n => n.Name == node.Name).Form);
            int stored = 3 + (node.Dense!.Sparse!.Unstructured ? 1 : 0) + (node.Dense.Sparse.Int8 || node.Dense.Sparse.Shared ? 1 : 0);
            long embedded = node.Inputs.Skip(1).Take(stored - 1).Sum(i => (long)artifact.Tensors[i].Data!.Length);
            Assert.Equal(form.Bytes, embedded);
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("int8-weights")]
    public void PrunedLeNet300RunsSparseAndAsTheEvaluatorSays(string compression)
    {
        string path = TestData.Mnist("lenet300.onnx");
        var options = new CompileOptions { ModelPath = path, ClassName = "Pruned", Namespace = "SparseTests", Compression = compression, Pruning = 0.92 };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        var sparse = artifact.Nodes.Where(n => n.Dense?.Sparse is not null).ToList();
        Assert.NotEmpty(sparse);
        AssertBytesAsEmbedded(artifact, prepared);
        // The sparse attributes read back from the artifact's text as written.
        var read = ArtifactText.Read(ArtifactText.Write(artifact));
        Assert.Equal(sparse.Select(n => n.Dense), read.Nodes.Where(n => n.Dense?.Sparse is not null).Select(n => n.Dense));
        long bytes = prepared.CompressionStages[^1].WeightBytes;
        output.WriteLine($"{compression}: {string.Join(", ", sparse.Select(n => $"{n.Name} {n.Dense!.Sparse!.Text}"))}; WeightBytes {bytes:N0} (float32 dense 1,066,640: 1/{1066640.0 / bytes:F1})");

        var models = GeneratedModels.Build(artifact);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        for (int d = 0; d < 100; d++)
        {
            var x = images[(d * 784)..((d + 1) * 784)];
            var y = new float[10];
            models.Run(artifact, [x], [y]);
            var evaluated = ReferenceEvaluator.Run(prepared, new Dictionary<string, TensorData> { [prepared.Inputs[0]] = new([1, 1, 28, 28], x) })[prepared.Outputs[0]].Floats;
            Tolerance.AssertClose(evaluated, y, $"digit {d}");
        }
    }

    [Fact]
    public void WithoutPruningNoLayerIsStoredSparse()
    {
        var options = new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx"), ClassName = "Dense", Namespace = "SparseTests" };
        Assert.DoesNotContain(CompressionPlan.Parse(options).Passes(), p => p is SparseStoragePass);
        Assert.DoesNotContain(ModelCompiler.Compile(options).Nodes, n => n.Dense?.Layout == DenseLayout.Sparse);
        Assert.Contains(CompressionPlan.Parse(options with { Pruning = 0.5 }).Passes(), p => p is SparseStoragePass);
    }

    [Fact]
    public void DenserLayersStayDense()
    {
        // Half the weights kept at random: neither N:M nor few enough entries for the one-by-one kernel to be faster.
        var random = new Random(5);
        var w = Scatter(random, 20, 64, 0.5);
        for (int c = 0; c < 8; c++) w[c] = 1f; // a full group of 8: no N:M
        Assert.Null(SparseStorage.Choose(w, 20, 64, 4));
        Assert.Null(SparseStorage.Choose(w, 20, 64, 1));
        Assert.Null(SparseStorage.Choose(new float[20 * 64], 20, 64, 4)); // nothing kept: nothing to gain from a kernel of none
        // 2:4 at exactly half: fewer bytes, but 8 kept values a step cost more than 16 dense weights (measured).
        var half = new float[20 * 64];
        for (int i = 0; i < half.Length; i += 2) half[i] = 1f;
        Assert.NotNull(SparseWeights.NOfM(half, 20, 64, 2, 4));
        Assert.Null(SparseStorage.Choose(half, 20, 64, 4));
        // One in eight kept, one per group of 8 (1:4 fits too): the one-by-one kernel on the fewest entries is the fastest.
        var eighth = new float[20 * 64];
        for (int i = 3; i < eighth.Length; i += 8) eighth[i] = 1f;
        var chosen = SparseStorage.Choose(eighth, 20, 64, 4)!;
        Assert.Equal((SparsePattern.Unstructured, 160), (chosen.Pattern, chosen.Entries));
    }

    [Fact]
    public void OnlyTheFormatsTheKernelsReadAreSparseFormats()
    {
        Assert.Throws<FormatException>(() => new SparseFormat(2, 0, 0, false)); // unstructured indices are 4 or 8 bits
        Assert.Throws<FormatException>(() => new SparseFormat(4, 2, 4, false)); // 2:4 positions are 2 bits
        Assert.Throws<FormatException>(() => new SparseFormat(4, 8, 16, false)); // no kernel for M = 16
        Assert.Throws<FormatException>(() => new DenseAttributes(false, DenseLayout.Sparse, 4, 8)); // sparse without its format
        Assert.Equal("2:4", new SparseFormat(2, 2, 4, true).Text);
    }
}
