using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Plan;
using ModelGen.Onnx;

namespace ModelGen.Cli.Bench;

/// <summary>
/// <c>modelgen bench</c>: the generated code against ONNX Runtime on the same model and input, in one
/// process, measured side by side (interleaved rounds, medians), with the memory plan and the agreement.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var model = new Argument<FileInfo>("model") { Description = "The ONNX model file." };
        var data = new Option<FileInfo?>("--data") { Description = "Inputs, samples stacked on axis 0: a .npy (one input; uint8 is divided by --uint8-scale), a .npz (an array per input, by name), a .pb or a folder of .pb files. Default: pseudo-random inputs in [0, 1)." };
        var uint8Scale = new Option<float>("--uint8-scale") { Description = "Divisor applied to uint8 data (255 maps 0..255 to 0..1).", DefaultValueFactory = _ => 1f };
        var batch = new Option<int>("--batch-size") { Description = "Size given to a symbolic batch dimension.", DefaultValueFactory = _ => 1 };
        var inputShape = Program.InputShapeOption();
        var simd = new Option<string>("--simd") { Description = "SIMD level of the emitted code: auto, vector128 or none.", DefaultValueFactory = _ => "auto" };
        var compression = new Option<string>("--compression") { Description = "none, int8, int8-weights or int4-weights (calibrated on --data; ONNX Runtime runs the original model).", DefaultValueFactory = _ => "none" };
        var seconds = new Option<double>("--seconds") { Description = "Measuring time per contender (after warm-up).", DefaultValueFactory = _ => 3 };
        var samples = new Option<int>("--samples") { Description = "Most samples of --data to compare outputs on.", DefaultValueFactory = _ => 1000 };
        var training = new TrainingOptions();
        var command = new Command("bench", "Time the generated code against ONNX Runtime on the same model and input (one thread, batch as compiled) and print one table.")
        {
            model, data, uint8Scale, batch, inputShape, simd, compression, seconds, samples,
        };
        training.AddTo(command);
        command.SetAction(parse =>
        {
            var modelFile = parse.GetValue(model)!;
            return Program.Guarded(modelFile.FullName, parse.GetValue(Program.Verbose), () =>
            {
                var options = new BenchOptions(modelFile.FullName, parse.GetValue(data)?.FullName, parse.GetValue(uint8Scale), parse.GetValue(batch),
                    parse.GetValue(simd)!, parse.GetValue(seconds), parse.GetValue(samples)) 
                {
                    Compression = parse.GetValue(compression)!,
                    InputShape = Program.InputShapeValue(parse, inputShape),
                    // Pruning and training as compile takes them (validated here, before any work).
                    Training = training.Apply(parse, new CompileOptions { ModelPath = modelFile.FullName, Cancellation = Program.Cancellation }) is var t
                        && (t.Pruning is not null || t.PruningKind is not null || t.LowRank is not null || t.WeightSharing is not null || t.FineTune || t.Student is not null) ? c => c with
                        {
                            TrainingDataPath = t.TrainingDataPath, TrainingLabelsPath = t.TrainingLabelsPath, FineTune = t.FineTune, Epochs = t.Epochs, LearningRate = t.LearningRate,
                            Seed = t.Seed, TrainingTimeLimit = t.TrainingTimeLimit, TrainingAugmentation = t.TrainingAugmentation, Pruning = t.Pruning, PruningKind = t.PruningKind, LowRank = t.LowRank, WeightSharing = t.WeightSharing, Cancellation = t.Cancellation,
                            Student = t.Student, StudentInit = t.StudentInit, DistillationTemperature = t.DistillationTemperature, DistillationLabelWeight = t.DistillationLabelWeight,
                        } : null,
                };
                Console.Write(Run(options).Format());
                return 0;
            });
        });
        return command;
    }

    public sealed record BenchOptions(string ModelPath, string? DataPath, float Uint8Scale, int BatchSize, string Simd, double Seconds, int Samples)
    {
        public string Compression { get; init; } = "none";
        /// <summary>--input-shape: fixes symbolic sizes beyond the batch.</summary>
        public string? InputShape { get; init; }
        /// <summary>Pruning and training switches, applied to the compile options of the model timed (null: none).</summary>
        public Func<CompileOptions, CompileOptions>? Training { get; init; }
    }

    public static BenchResult Run(BenchOptions o)
    {
        // Comparisons written so that NaN fails them too.
        if (!(o.Seconds > 0 && o.Seconds <= 600)) throw new ModelGenException(ErrorCodes.BadOption, o.ModelPath, "--seconds must be above 0 and at most 600");
        if (o.Samples < 1) throw new ModelGenException(ErrorCodes.BadOption, o.ModelPath, $"--samples must be at least 1 (it is {o.Samples})");
        var dense = new CompileOptions { ModelPath = o.ModelPath, ClassName = "BenchModel", Namespace = "ModelGenBench", BatchSize = o.BatchSize, InputShape = o.InputShape, Simd = o.Simd, Compression = o.Compression, CalibrationPath = o.DataPath, CalibrationUint8Scale = o.Uint8Scale };
        var options = o.Training is null ? dense : o.Training(dense);
        var artifact = ModelCompiler.Compile(options);
        var plan = artifact.MemoryPlan!;
        var ours = InProcessModel.Load(ArtifactText.Read(ArtifactText.Write(artifact)));
        // Compressed (quantized, pruned or fine-tuned): our dense float32 model too, timed in the same rounds, so the two compare side by side.
        var plainArtifact = options.Compression.Equals("none", StringComparison.OrdinalIgnoreCase) && o.Training is null ? null
            : ModelCompiler.Compile(dense with { Compression = "none", CalibrationPath = null });
        var plain = plainArtifact is null ? null : InProcessModel.Load(ArtifactText.Read(ArtifactText.Write(plainArtifact)));

        // Inputs: the first from --data (sample by sample), the others pseudo-random (int64: zeros, valid indices).
        var inputTensors = artifact.Inputs.Select(b => artifact.Tensors[b.Tensor]).ToArray();
        var outputTensors = artifact.Outputs.Select(b => artifact.Tensors[b.Tensor]).ToArray();
        if (inputTensors.Length == 0)
            throw new ModelGenException(ErrorCodes.InvalidGraph, o.ModelPath, "the model has no inputs: its outputs are constants, and there is nothing to time");
        var random = new Random(1234);
        object[] inputs = [.. inputTensors.Select(t => t.Element == TensorElement.Int64 ? (object)new long[t.ElementCount] : Enumerable.Range(0, (int)t.ElementCount).Select(_ => random.NextSingle()).ToArray())];
        object[] outputs = [.. outputTensors.Select(t => t.Element == TensorElement.Int64 ? (object)new long[t.ElementCount] : new float[t.ElementCount])];
        object[] ortOutputs = [.. outputTensors.Select(t => t.Element == TensorElement.Int64 ? (object)new long[t.ElementCount] : new float[t.ElementCount])];
        // --data: samples for every float32 input (a .npy for one input, a .npz by input name, .pb files).
        DataSet? dataset = null;
        int batches = 1, batch = Math.Max(1, inputTensors[0].Shape.FirstOrDefault(1));
        var fed = Enumerable.Range(0, inputTensors.Length).Where(i => inputTensors[i].Element != TensorElement.Int64).ToArray();
        if (o.DataPath is not null)
        {
            if (fed.Length == 0) throw new ModelGenException(ErrorCodes.BadOption, o.DataPath, "the model has no float32 input for --data to feed");
            dataset = CalibrationData.Load(o.DataPath, [.. fed.Select(i => new DataInput(artifact.Inputs[i].Name, inputTensors[i].Shape))], o.Uint8Scale);
            if (dataset.Count < batch)
                throw new ModelGenException(ErrorCodes.BadOption, o.DataPath, $"the data holds {dataset.Count} samples; one run at batch size {batch} needs {batch}");
            batches = Math.Min(dataset.Count / batch, Math.Max(1, o.Samples / batch));
        }
        // Batch s of the data into the model's input buffers.
        void Feed(int s)
        {
            if (dataset is null) return;
            for (int f = 0; f < fed.Length; f++)
            {
                int length = (int)(dataset.SampleLength(f) * batch);
                Array.Copy(dataset.Values[f], (long)s * length, (float[])inputs[fed[f]], 0, length);
            }
        }
        Feed(0);

        string ortVersion = OnnxRuntimeVersion(o.ModelPath);
        using var ort = new OnnxRuntimeModel(o.ModelPath,
            [.. artifact.Inputs.Select((b, i) => (b.Name, (Array)inputs[i], inputTensors[i].Shape))],
            [.. artifact.Outputs.Select((b, i) => (b.Name, (Array)ortOutputs[i], outputTensors[i].Shape))]);

        // Agreement on every batch of the data (or the one random input).
        var agreement = new Agreement();
        for (int s = 0; s < batches; s++)
        {
            Feed(s);
            ours.Run(inputs, outputs);
            ort.Run();
            agreement.Add(outputs, ortOutputs, outputTensors);
        }
        Feed(0);

        // Warm-up (tiered JIT, caches), then interleaved rounds; each contender's median per inference.
        Calibrate(() => ours.Ticks(inputs, outputs, 1), 0.5);
        Calibrate(() => ort.Ticks(1), 0.5);
        if (plain is not null) Calibrate(() => plain.Ticks(inputs, outputs, 1), 0.5);
        int oursCount = Calibrate(() => ours.Ticks(inputs, outputs, 1), 0.05), ortCount = Calibrate(() => ort.Ticks(1), 0.05);
        int plainCount = plain is null ? 0 : Calibrate(() => plain.Ticks(inputs, outputs, 1), 0.05);
        int rounds = Math.Max(5, (int)(o.Seconds / 0.1));
        var oursTimes = new List<double>();
        var ortTimes = new List<double>();
        var plainTimes = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            oursTimes.Add(Seconds(ours.Ticks(inputs, outputs, oursCount)) / oursCount);
            ortTimes.Add(Seconds(ort.Ticks(ortCount)) / ortCount);
            if (plain is not null) plainTimes.Add(Seconds(plain.Ticks(inputs, outputs, plainCount)) / plainCount);
        }
        long oursAllocated = ours.Allocated(inputs, outputs, 100) / 100, ortAllocated = ort.Allocated(100) / 100;
        // Where the time goes: each kernel timed over as many runs as one round; beside a compressed model, our dense
        // float32 model's kernel of the same ONNX node, profiled in alternation (medians of 5 rounds each).
        var oursKernels = new List<double[]>();
        var plainKernels = new List<double[]>();
        for (int r = 0; r < (plain is null ? 1 : 5); r++)
        {
            var ticks = new long[artifact.Nodes.Count];
            ours.Profile(inputs, outputs, oursCount, ticks);
            oursKernels.Add([.. ticks.Select(t => Seconds(t) / oursCount)]);
            if (plain is null) continue;
            var plainTicks = new long[plainArtifact!.Nodes.Count];
            plain.Profile(inputs, outputs, plainCount, plainTicks);
            plainKernels.Add([.. plainTicks.Select(t => Seconds(t) / plainCount)]);
        }
        var plainByNode = plainArtifact is null ? new Dictionary<string, double>()
            : plainArtifact.Nodes.Select((n, i) => (n.Name, Seconds: Median([.. plainKernels.Select(k => k[i])]))).GroupBy(k => k.Name).ToDictionary(g => g.Key, g => g.First().Seconds);
        var kernels = artifact.Nodes.Select((n, i) => new KernelTime(n.OnnxOp, n.Name, n.Kernel.ToString(), Median([.. oursKernels.Select(k => k[i])]), MultiplyAdds(artifact, n))
        {
            Float32Seconds = plainByNode.TryGetValue(n.Name, out double f) ? f : null,
        }).ToList();
        long weightBytes = artifact.Tensors.Where(t => t.Storage == TensorStorage.Weight && t.Data is not null).Select(t => t.Data!).Distinct(ReferenceEqualityComparer.Instance).Sum(d => (long)((byte[])d!).Length);
        return new BenchResult(Path.GetFileName(o.ModelPath), o.BatchSize, o.Simd, ortVersion, Median(oursTimes), Median(ortTimes), oursAllocated, ortAllocated,
            plan, weightBytes, MultiplyAdds(artifact), agreement, batches * batch, dataset is not null, kernels, MeasurePeak())
        { Compression = Describe(options), Stream = MeasureStream(weightBytes), Float32Seconds = plain is null ? null : Median(plainTimes) };
    }

    /// <summary>The compression as the table names it: the Compression value, with pruning and fine-tuning when asked.</summary>
    static string Describe(CompileOptions options)
    {
        var parts = new List<string>();
        if (Compiler.Compress.StudentSpec.Parse(options.Student, options.ModelPath) is { } student) parts.Add($"distilled into {student.Describe()}");
        string kind = options.PruningKind is null ? "" : " " + options.PruningKind;
        if (options.Pruning is double p) parts.Add(FormattableString.Invariant($"pruned{kind} {p * 100:0.##}%"));
        else if (options.PruningKind is not null) parts.Add($"pruned{kind}");
        if (options.LowRank is { } lowRank) parts.Add($"low rank {lowRank}");
        if (options.WeightSharing is int bits) parts.Add(FormattableString.Invariant($"shared {bits}-bit"));
        if (!options.Compression.Equals("none", StringComparison.OrdinalIgnoreCase) || parts.Count == 0) parts.Add(options.Compression);
        if (options.FineTune) parts.Add("fine-tuned");
        return string.Join(" + ", parts);
    }

    /// <summary>
    /// ONNX Runtime's version, or MG0010 when its native library cannot load: the copy of modelgen inside
    /// the ModelGen build package leaves the native libraries out (compiling never needs them).
    /// </summary>
    static string OnnxRuntimeVersion(string modelPath)
    {
        try
        {
            return OrtEnv.Instance().GetVersionString();
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException or EntryPointNotFoundException)
        {
            throw new ModelGenException(ErrorCodes.OnnxRuntimeMissing, modelPath,
                $"modelgen bench runs the model in ONNX Runtime too, and its native library does not load here ({e.GetBaseException().Message}). " +
                "The modelgen inside the ModelGen build package leaves ONNX Runtime out; install the modelgen tool, which carries it: " +
                "dotnet tool install --global ModelGen.Cli --prerelease (see the README's quick-start).");
        }
    }

    /// <summary>Runs until <paramref name="seconds"/> have passed; returns how many runs take about that long.</summary>
    static int Calibrate(Func<long> once, double seconds)
    {
        long start = Stopwatch.GetTimestamp();
        int n = 0;
        while (Seconds(Stopwatch.GetTimestamp() - start) < seconds) { once(); n++; }
        return Math.Max(1, n);
    }

    static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>Multiply-adds of the kernels that do them (convolutions, matrix products, recurrent layers' gates); one per output element elsewhere is not counted.</summary>
    public static long MultiplyAdds(ModelArtifact m) => m.Nodes.Sum(n => MultiplyAdds(m, n));

    /// <summary>
    /// A sparse layer's stored entries: its values' elements, or for codebook codes (values "cB", or a Conv format
    /// ending ",cB") the sum of the row counts when unstructured, else the codes' bits over B (N:M, within one entry).
    /// </summary>
    static long StoredEntries(ArtifactNode node, ArtifactTensor[] inputs, string values)
    {
        int comma = values.LastIndexOf(',');
        string codes = comma >= 0 ? values[(comma + 1)..] : values;
        if (codes.Length != 2 || codes[0] != 'c') return inputs[1].ElementCount;
        int bits = codes[1] - '0';
        bool unstructured = node.Kernel == KernelKind.Dense ? node.Attributes["sparse"].StartsWith('u') : node.Attributes["sparse"].StartsWith("unstructured", StringComparison.Ordinal);
        if (unstructured && inputs[3].Data is { } counts)
            return inputs[3].Element == TensorElement.UInt8 ? counts.Sum(c => (long)c) : Enumerable.Range(0, counts.Length / 2).Sum(r => (long)BitConverter.ToUInt16(counts, r * 2));
        return (inputs[1].ElementCount - (8 % bits == 0 ? 0 : 1)) * 8 / bits;
    }

    static long MultiplyAdds(ModelArtifact m, ArtifactNode node)
    {
        long total = 0;
        {
            var inputs = node.Inputs.Select(i => m.Tensors[i]).ToArray();
            var y = node.Outputs.Length > 0 ? m.Tensors[node.Outputs[0]] : null;
            switch (node.Kernel.ToString())
            {
                case "Conv" when y is not null && node.Attributes.TryGetValue("method", out var method) && method == "sparse":
                    // The stored entries (kept weights and any padding), each once per output position.
                    total += y.ElementCount / y.Shape[1] * StoredEntries(node, inputs, node.Attributes["sparse"]);
                    break;
                case "Dense" when y is not null && node.Attributes.TryGetValue("layout", out var sparse) && sparse == "sparse":
                    total += StoredEntries(node, inputs, node.Attributes.TryGetValue("values", out var values) ? values : ""); // one row: each stored entry once
                    break;
                case "Conv" when y is not null:
                    total += y.ElementCount * (inputs[1].ElementCount / inputs[1].Shape[0]);
                    break;
                case "ConvTranspose":
                    total += inputs[0].ElementCount * (inputs[1].ElementCount / inputs[1].Shape[0]);
                    break;
                case "Dense" when y is not null:
                    // W is [K, N(padded)] (several rows), in 4-row panels with K an attribute (one row), or [N, K] (int8, int4).
                    node.Attributes.TryGetValue("layout", out var layout);
                    total += y.ElementCount * (layout == "kn" ? inputs[1].Shape[0] : node.Attributes.TryGetValue("k", out var k) ? int.Parse(k, System.Globalization.CultureInfo.InvariantCulture) : inputs[1].Shape[1]);
                    break;
                case "DenseInt8" when y is not null:
                    total += y.ElementCount * inputs[1].Shape[1];
                    break;
                case "ConvInt8" or "DepthwiseInt8" when y is not null:
                    // The real taps per output: input channels per group times the window (the int8 rows may be padded).
                    var window = ArtifactText.ParseInts(node.Attributes["kernel"]);
                    long perGroup = node.Kernel == KernelKind.DepthwiseInt8 ? 1 : inputs[0].Shape[1] / int.Parse(node.Attributes["group"], System.Globalization.CultureInfo.InvariantCulture);
                    total += y.ElementCount * perGroup * window[0] * window[1];
                    break;
                case "MatMul" when y is not null:
                    total += y.ElementCount * inputs[0].Shape[inputs[0].Shape.Length - 1];
                    break;
                case "Gemm" when y is not null:
                    total += y.ElementCount * (node.Attributes.TryGetValue("transA", out var t) && t == "1" ? inputs[0].Shape[0] : inputs[0].Shape[inputs[0].Shape.Length - 1]);
                    break;
                case "LSTM" or "GRU":
                    // W and R times each step's input and state: their element counts per step (and batch).
                    var dims = ArtifactText.ParseInts(node.Attributes["dims"]);
                    total += (long)dims[0] * dims[1] * (inputs[1].ElementCount + inputs[2].ElementCount);
                    break;
            }
        }
        return total;
    }

    /// <summary>
    /// How fast this processor reads a buffer of the weights' size, once per pass, as a batch-1 model must:
    /// vector sums over it in 64-byte-aligned loads, then 4 bytes off alignment (every load then straddles two
    /// cache lines). The buffer is written first: pages never touched all map one zero page and read as if cached.
    /// </summary>
    public static StreamRate MeasureStream(long bytes)
    {
        int floats = (int)(Math.Clamp(bytes / 4, 4096, 64L << 20) / 64 * 64);
        var buffer = GC.AllocateArray<float>(floats + 32, pinned: true);
        for (int i = 0; i < buffer.Length; i++) buffer[i] = i % 7;
        long address = (long)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0);
        int aligned = (int)((64 - address % 64) % 64 / 4);
        double Rate(int offset)
        {
            int reps = Math.Max(1, (int)(16_000_000 / floats));
            StreamSum(buffer, offset, floats);
            double best = 0;
            for (int r = 0; r < 5; r++)
            {
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < reps; i++) StreamSum(buffer, offset, floats);
                best = Math.Max(best, (double)floats * 4 * reps / Seconds(Stopwatch.GetTimestamp() - start) / 1e9);
            }
            return best;
        }
        return new StreamRate((long)floats * 4, Rate(aligned), Rate(aligned + 1));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static float StreamSum(float[] buffer, int offset, int count)
    {
        ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(buffer);
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
        {
            System.Runtime.Intrinsics.Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int i = offset; i <= offset + count - 64; i += 64)
            {
                s0 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref r, (nuint)i); s1 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref r, (nuint)(i + 16));
                s2 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref r, (nuint)(i + 32)); s3 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref r, (nuint)(i + 48));
            }
            return System.Runtime.Intrinsics.Vector512.Sum(s0 + s1 + s2 + s3);
        }
        System.Runtime.Intrinsics.Vector128<float> t0 = default, t1 = default, t2 = default, t3 = default;
        for (int i = offset; i <= offset + count - 16; i += 16)
        {
            t0 += System.Runtime.Intrinsics.Vector128.LoadUnsafe(ref r, (nuint)i); t1 += System.Runtime.Intrinsics.Vector128.LoadUnsafe(ref r, (nuint)(i + 4));
            t2 += System.Runtime.Intrinsics.Vector128.LoadUnsafe(ref r, (nuint)(i + 8)); t3 += System.Runtime.Intrinsics.Vector128.LoadUnsafe(ref r, (nuint)(i + 12));
        }
        return System.Runtime.Intrinsics.Vector128.Sum(t0 + t1 + t2 + t3);
    }

    /// <summary>
    /// This processor's float32 peak, measured: twelve independent chains of fused multiply-adds on the
    /// widest vectors the runtime accelerates (enough in flight to cover the FMA latency on every port).
    /// </summary>
    public static Peak MeasurePeak()
    {
        var (width, loop) = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? (16, (Func<long, float>)FmaLoop512)
            : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? (8, FmaLoop256) : (4, FmaLoop128);
        loop(1000);
        double best = 0;
        for (int r = 0; r < 5; r++)
        {
            const long n = 2_000_000;
            long start = Stopwatch.GetTimestamp();
            loop(n);
            best = Math.Max(best, n * 12.0 * width * 2 / Seconds(Stopwatch.GetTimestamp() - start) / 1e9);
        }
        return new Peak(best, width * 32);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static float FmaLoop512(long n)
    {
        var v = System.Runtime.Intrinsics.Vector512.Create(1.0000001f); var m = System.Runtime.Intrinsics.Vector512.Create(0.9999999f);
        System.Runtime.Intrinsics.Vector512<float> c0 = v, c1 = v + m, c2 = v - m, c3 = v * m, c4 = c1 + m, c5 = c2 + m, c6 = c3 + m, c7 = c4 + m, c8 = c5 + m, c9 = c6 + m, c10 = c7 + m, c11 = c8 + m;
        for (long i = 0; i < n; i++)
        {
            c0 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c0, m, v); c1 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c1, m, v);
            c2 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c2, m, v); c3 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c3, m, v);
            c4 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c4, m, v); c5 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c5, m, v);
            c6 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c6, m, v); c7 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c7, m, v);
            c8 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c8, m, v); c9 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c9, m, v);
            c10 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c10, m, v); c11 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(c11, m, v);
        }
        return System.Runtime.Intrinsics.Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static float FmaLoop256(long n)
    {
        var v = System.Runtime.Intrinsics.Vector256.Create(1.0000001f); var m = System.Runtime.Intrinsics.Vector256.Create(0.9999999f);
        System.Runtime.Intrinsics.Vector256<float> c0 = v, c1 = v + m, c2 = v - m, c3 = v * m, c4 = c1 + m, c5 = c2 + m, c6 = c3 + m, c7 = c4 + m, c8 = c5 + m, c9 = c6 + m, c10 = c7 + m, c11 = c8 + m;
        for (long i = 0; i < n; i++)
        {
            c0 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c0, m, v); c1 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c1, m, v);
            c2 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c2, m, v); c3 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c3, m, v);
            c4 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c4, m, v); c5 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c5, m, v);
            c6 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c6, m, v); c7 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c7, m, v);
            c8 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c8, m, v); c9 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c9, m, v);
            c10 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c10, m, v); c11 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(c11, m, v);
        }
        return System.Runtime.Intrinsics.Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static float FmaLoop128(long n)
    {
        var v = System.Runtime.Intrinsics.Vector128.Create(1.0000001f); var m = System.Runtime.Intrinsics.Vector128.Create(0.9999999f);
        System.Runtime.Intrinsics.Vector128<float> c0 = v, c1 = v + m, c2 = v - m, c3 = v * m, c4 = c1 + m, c5 = c2 + m, c6 = c3 + m, c7 = c4 + m, c8 = c5 + m, c9 = c6 + m, c10 = c7 + m, c11 = c8 + m;
        for (long i = 0; i < n; i++)
        {
            c0 = c0 * m + v; c1 = c1 * m + v; c2 = c2 * m + v; c3 = c3 * m + v; c4 = c4 * m + v; c5 = c5 * m + v;
            c6 = c6 * m + v; c7 = c7 * m + v; c8 = c8 * m + v; c9 = c9 * m + v; c10 = c10 * m + v; c11 = c11 * m + v;
        }
        return System.Runtime.Intrinsics.Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}

/// <summary>How far the generated code's outputs are from ONNX Runtime's.</summary>
public sealed class Agreement
{
    public int Compared { get; private set; }
    public int SameTop1 { get; private set; }
    public double MaxAbsolute { get; private set; }
    public double MaxRelative { get; private set; }
    /// <summary>Output values outside 1e-4 relative and 1e-5 absolute of ONNX Runtime's (DESIGN.md §6).</summary>
    public long OutsideTolerance { get; private set; }
    public long Values { get; private set; }

    public void Add(object[] ours, object[] theirs, ArtifactTensor[] tensors)
    {
        for (int o = 0; o < ours.Length; o++)
        {
            if (ours[o] is not float[] a || theirs[o] is not float[] b) continue;
            for (int i = 0; i < a.Length; i++)
            {
                double d = Math.Abs((double)a[i] - b[i]);
                Values++;
                if (!(d <= 1e-5 || d <= 1e-4 * Math.Abs(b[i]))) OutsideTolerance++;
                MaxAbsolute = Math.Max(MaxAbsolute, d);
                if (Math.Abs(b[i]) > 1e-5) MaxRelative = Math.Max(MaxRelative, d / Math.Abs(b[i]));
            }
            if (o != 0) continue;
            // Top-1 over the last axis of the first output, per row.
            int classes = tensors[0].Shape.Length == 0 ? 1 : tensors[0].Shape[^1];
            for (int row = 0; row + classes <= a.Length; row += classes)
            {
                Compared++;
                if (ArgMax(a, row, classes) == ArgMax(b, row, classes)) SameTop1++;
            }
        }
    }

    static int ArgMax(float[] v, int start, int count)
    {
        int best = 0;
        for (int i = 1; i < count; i++) if (v[start + i] > v[start + best]) best = i;
        return best;
    }
}

/// <summary>One kernel's share of a run.</summary>
public sealed record KernelTime(string OnnxOp, string Node, string Kernel, double Seconds, long MultiplyAdds)
{
    /// <summary>Our dense float32 model's kernel of the same ONNX node, when a compressed model is timed beside it.</summary>
    public double? Float32Seconds { get; init; }
}

/// <summary>Read rates (GB/s) of a buffer of <paramref name="Bytes"/>, in aligned and in misaligned vector loads.</summary>
public sealed record StreamRate(long Bytes, double AlignedGBs, double MisalignedGBs);

/// <summary>The measured float32 peak (GFLOP/s) and the vector width (bits) it was measured with.</summary>
public sealed record Peak(double Gflops, int Bits);

public sealed record BenchResult(string Model, int BatchSize, string Simd, string OrtVersion, double OursSeconds, double OrtSeconds, long OursAllocated, long OrtAllocated,
    MemoryPlanReport Plan, long WeightBytes, long MultiplyAdds, Agreement Agreement, int Samples, bool FromData, IReadOnlyList<KernelTime> Kernels, Peak Peak)
{
    public string Compression { get; init; } = "none";
    /// <summary>With compression: our float32 model's median latency, timed in the same rounds.</summary>
    public double? Float32Seconds { get; init; }
    /// <summary>How fast a buffer of the weights' size streams in: reading every weight once bounds a batch-1 run.</summary>
    public StreamRate? Stream { get; init; }

    public string Format()
    {
        static string Time(double s) => s < 1e-3 ? $"{s * 1e6:F1} µs" : $"{s * 1e3:F2} ms";
        static string Bytes(long b) => b.ToString("N0", CultureInfo.InvariantCulture) + " B";
        double gflops(double s) => 2.0 * MultiplyAdds / s / 1e9;
        double ratio = OrtSeconds / OursSeconds;
        string Above(long v) => Plan.LowerBound == 0 ? "" : $" ({100.0 * (v - Plan.LowerBound) / Plan.LowerBound:+0.0;-0.0;0.0}% over the bound)";
        var rows = new List<string[]>
        {
            new[] { "", "ModelGen", $"ONNX Runtime {OrtVersion}", "ratio" },
            new[] { "latency (median, batch " + BatchSize + ")", Time(OursSeconds), Time(OrtSeconds), ratio >= 1 ? $"{ratio:F2}x faster" : $"{1 / ratio:F2}x slower" },
            new[] { "allocated per run", Bytes(OursAllocated), Bytes(OrtAllocated), "" },
        };
        if (Float32Seconds is double plain)
            rows.Insert(2, new[] { Compression.StartsWith("distilled", StringComparison.Ordinal) ? "ModelGen teacher float32, same rounds" : "ModelGen float32, same rounds", Time(plain), "", OursSeconds <= plain ? $"{Compression} {plain / OursSeconds:F2}x faster" : $"{Compression} {OursSeconds / plain:F2}x slower" });
        rows.AddRange(new[]
        {
            new[] { "GFLOP/s (2 x multiply-adds / latency)", $"{gflops(OursSeconds):F2}", $"{gflops(OrtSeconds):F2}", "" },
        });
        int[] widths = [.. Enumerable.Range(0, 4).Select(c => rows.Max(r => r[c].Length))];
        var w = new System.Text.StringBuilder();
        w.AppendLine($"modelgen bench {Model}: batch {BatchSize}, SIMD {Simd}, compression {Compression}, one thread, {Environment.ProcessorCount} processors, .NET {Environment.Version}");
        foreach (var r in rows) w.AppendLine(string.Join("  ", r.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
        w.AppendLine($"multiply-adds per run  {MultiplyAdds.ToString("N0", CultureInfo.InvariantCulture)}");
        w.AppendLine($"weights                {Bytes(WeightBytes)}");
        w.AppendLine($"arena (ScratchBytes)   {Bytes(Plan.ArenaBytes)}{Above(Plan.ArenaBytes)}; liveness lower bound {Bytes(Plan.LowerBound)} (buffers 64-byte aligned); all tensors without reuse {Bytes(Plan.TensorBytes)}");
        w.AppendLine($"float32 peak           {Peak.Gflops:F1} GFLOP/s measured (12 independent {Peak.Bits}-bit FMA chains); ModelGen reaches {100 * gflops(OursSeconds) / Peak.Gflops:F1}% of it");
        if (Stream is { } st)
            w.AppendLine($"weight stream          {st.AlignedGBs:F1} GB/s reading {Bytes(st.Bytes)} in 64-byte-aligned loads ({st.MisalignedGBs:F1} GB/s misaligned): reading the weights once takes {WeightBytes / st.AlignedGBs / 1e3:F1} µs at least");
        w.AppendLine($"agreement              top-1 same on {Agreement.SameTop1} of {Agreement.Compared} {(FromData ? $"rows ({Samples} samples of the data)" : "rows (a pseudo-random input)")}; max |difference| {Agreement.MaxAbsolute:G3}; {Agreement.OutsideTolerance} of {Agreement.Values} values outside 1e-4 relative / 1e-5 absolute");
        w.AppendLine();
        bool beside = Kernels.Any(k => k.Float32Seconds is not null);
        w.AppendLine(beside ? "per kernel (ModelGen, profiled runs; float32: our dense float32 model's kernel of the same node, in alternate runs)" : "per kernel (ModelGen, profiled run)");
        var table = new List<string[]> { new[] { "#", "ONNX node", "kernel", "time", "share", "GFLOP/s", "of peak" }.Concat(beside ? ["float32", "speed-up"] : []).ToArray() };
        double total = Kernels.Sum(k => k.Seconds);
        for (int i = 0; i < Kernels.Count; i++)
        {
            var k = Kernels[i];
            double g = k.MultiplyAdds == 0 || k.Seconds <= 0 ? 0 : 2.0 * k.MultiplyAdds / k.Seconds / 1e9;
            var row = new List<string> { i.ToString(CultureInfo.InvariantCulture), $"{k.OnnxOp} '{k.Node}'", k.Kernel, Time(k.Seconds), $"{100 * k.Seconds / total:F1}%",
                g > 0 ? $"{g:F1}" : "", g > 0 ? $"{100 * g / Peak.Gflops:F0}%" : "" };
            if (beside) row.AddRange(k.Float32Seconds is double f ? [Time(f), k.Seconds > 0 ? $"{f / k.Seconds:F2}x" : ""] : ["", ""]);
            table.Add([.. row]);
        }
        int[] tw = [.. Enumerable.Range(0, table[0].Length).Select(c => table.Max(r => r[c].Length))];
        foreach (var r in table) w.AppendLine(string.Join("  ", r.Select((cell, c) => c is 1 or 2 ? cell.PadRight(tw[c]) : cell.PadLeft(tw[c]))).TrimEnd());
        return w.ToString();
    }
}
