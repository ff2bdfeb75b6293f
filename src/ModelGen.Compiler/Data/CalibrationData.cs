using System.IO.Compression;
using ModelGen.Compiler.Import;
using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Data;

/// <summary>A model input as calibration and benchmark data must match it: its name and its compiled shape (batch first).</summary>
public sealed record DataInput(string Name, int[] Shape);

/// <summary>
/// Samples for each model input, stacked: <see cref="Values"/>[i] holds <see cref="Count"/> samples of
/// input i, each of the input's shape without its batch axis.
/// </summary>
public sealed record DataSet(IReadOnlyList<DataInput> Inputs, IReadOnlyList<float[]> Values, int Count)
{
    /// <summary>Inputs whose data was uint8 and taken as 0..255 (no divisor): likely not what a model trained on scaled pixels saw.</summary>
    public IReadOnlyList<string> RawUint8Inputs { get; init; } = [];

    /// <summary>Elements of one sample of input <paramref name="i"/> (its shape without the batch axis).</summary>
    public long SampleLength(int i) => Inputs[i].Shape.Skip(1).Aggregate(1L, (a, b) => a * b);

    /// <summary>Sample <paramref name="sample"/> of input <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> Sample(int i, int sample) => Values[i].AsSpan((int)(sample * SampleLength(i)), (int)SampleLength(i));
}

/// <summary>
/// Reads calibration (and benchmark) data for a model: a NumPy .npy (the model's only input), a .npz
/// (one array per input, by name), an ONNX TensorProto .pb (the only input), or a folder of .pb files
/// (input_0.pb, input_1.pb… of one sample; test_data_set_* folders of them; or any .pb files, each a
/// stack of samples of the only input). Samples are stacked on axis 0; the other axes must be the
/// input's shape without its batch axis. Every problem is an MG0201/MG0202 naming the file.
/// </summary>
public static class CalibrationData
{
    /// <summary>
    /// How far a .npz entry may inflate: its stored size times this, or <see cref="InflateFloorBytes"/>. numpy's
    /// savez stores arrays as they are and savez_compressed deflates real data a few times over; a thousandfold
    /// is a zip bomb.
    /// </summary>
    const long MaxInflateRatio = 100;
    const long InflateFloorBytes = 16 << 20;

    public static DataSet Load(string path, IReadOnlyList<DataInput> inputs, float uint8Scale = 1f)
    {
        if (inputs.Count == 0) throw new ArgumentException("a model has at least one input", nameof(inputs));
        if (Directory.Exists(path)) return FromFolder(path, inputs);
        if (!File.Exists(path)) throw new ModelGenException(ErrorCodes.FileNotFound, path, "the data file or folder does not exist");
        string extension = Path.GetExtension(path).ToLowerInvariant();
        return extension switch
        {
            ".npy" => Stack(path, inputs, [OnlyInput(path, inputs, "a .npy holds one array; give a .npz with one array per input, named after the inputs")], [NpyReader.Read(path, uint8Scale)]),
            ".npz" => FromNpz(path, inputs, uint8Scale),
            ".pb" => Stack(path, inputs, [OnlyInput(path, inputs, "a .pb holds one tensor; give a folder with input_0.pb, input_1.pb…")], [ReadPb(path)]),
            _ => throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"'{extension}' is not a data format ModelGen reads; give a .npy, .npz, .pb or a folder of .pb files"),
        };
    }

    /// <summary>
    /// Class labels (.npy): one per sample of the data, <paramref name="samples"/> in all, each a whole
    /// number in [0, <paramref name="classes"/>). Anything else would make the report's accuracy a lie.
    /// </summary>
    public static long[] LoadLabels(string path, int samples, int classes)
    {
        var labels = NpyReader.Read(path).Data;
        if (labels.Length != samples)
            throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"{labels.Length} labels for {samples} calibration samples; give one class index per sample, in the samples' order");
        for (int i = 0; i < labels.Length; i++)
            if (!(labels[i] >= 0 && labels[i] < classes && labels[i] == MathF.Floor(labels[i])))
                throw new ModelGenException(ErrorCodes.DataFileInvalid, path,
                    $"label {i} is {labels[i].ToString(System.Globalization.CultureInfo.InvariantCulture)}; a label is a class index, a whole number from 0 to {classes - 1} (the model's output has {classes} classes)");
        return [.. labels.Select(v => (long)v)];
    }

    static int OnlyInput(string path, IReadOnlyList<DataInput> inputs, string advice) =>
        inputs.Count == 1 ? 0 : throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"the model has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); {advice}");

    static DataSet FromNpz(string path, IReadOnlyList<DataInput> inputs, float uint8Scale)
    {
        var file = GuardedFile.Regular(path, "the .npz file");
        using var stream = file.OpenRead();
        return FromNpz(stream, path, inputs, uint8Scale);
    }

    /// <summary>A .npz read from <paramref name="data"/> (the fuzzer's entry point); <paramref name="path"/> names it in the errors.</summary>
    internal static DataSet FromNpz(Stream data, string path, IReadOnlyList<DataInput> inputs, float uint8Scale)
    {
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(data, ZipArchiveMode.Read, leaveOpen: true);
            _ = zip.Entries; // read here: a central directory that does not add up is an InvalidDataException too
        }
        catch (InvalidDataException e) { throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"not a readable .npz (zip) file: {e.Message}"); }
        using (zip)
        {
            var arrays = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
                if (entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) arrays[entry.FullName[..^4]] = entry;
            var read = new List<NpyArray>();
            for (int i = 0; i < inputs.Count; i++)
            {
                // One input and one array: its name does not matter (numpy.savez names it arr_0).
                var entry = arrays.TryGetValue(inputs[i].Name, out var named) ? named
                    : inputs.Count == 1 && arrays.Count == 1 ? arrays.Values.Single()
                    : throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"no array named '{inputs[i].Name}' (the model's input {i}); it holds {(arrays.Count == 0 ? "no arrays" : string.Join(", ", arrays.Keys))}: save with numpy.savez(path, {string.Join(", ", inputs.Select(x => x.Name + "=..."))})");
                var bytes = Inflate(entry, data.CanSeek ? data.Length : long.MaxValue, path);
                read.Add(NpyReader.Read(bytes, $"{path}[{entry.FullName}]", uint8Scale));
            }
            return Stack(path, inputs, [.. Enumerable.Range(0, inputs.Count)], read);
        }
    }

    /// <summary>
    /// The entry's bytes, bounded by what it may inflate to (<see cref="MaxInflateRatio"/>) before anything is
    /// allocated, and counted as they inflate: neither the declared size nor the data can make this read more.
    /// </summary>
    static byte[] Inflate(ZipArchiveEntry entry, long archiveBytes, string path)
    {
        // The compressed size is declared too: no more than the archive holds.
        long compressed = Math.Min(entry.CompressedLength, archiveBytes);
        long limit = Math.Min(Array.MaxLength, Math.Max(InflateFloorBytes, compressed * MaxInflateRatio));
        if (entry.Length > limit || entry.Length < 0)
            throw new ModelGenException(ErrorCodes.DataFileInvalid, path,
                $"array '{entry.FullName}' declares {entry.Length:N0} bytes from {compressed:N0} compressed, more than ModelGen inflates ({limit:N0}: {MaxInflateRatio} times the compressed size, or 16 MiB); save it with numpy.save or numpy.savez");
        var bytes = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            int total = 0;
            while (total < bytes.Length)
            {
                int n = stream.Read(bytes, total, bytes.Length - total);
                if (n == 0) throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"array '{entry.FullName}' is truncated");
                total += n;
            }
            // More data than the entry declares: a lying header; nothing past the declared size is kept.
            if (stream.ReadByte() >= 0)
                throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"array '{entry.FullName}' inflates to more than the {entry.Length:N0} bytes it declares");
        }
        catch (InvalidDataException e) { throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"array '{entry.FullName}' cannot be decompressed: {e.Message}"); }
        catch (IOException e) when (e is not EndOfStreamException) { throw new ModelGenException(ErrorCodes.FileUnreadable, path, $"array '{entry.FullName}' cannot be read: {e.Message}"); }
        return bytes;
    }

    static NpyArray ReadPb(string path) =>
        ReadPb(GuardedFile.ReadAll(path, Array.MaxLength, "the .pb file", ErrorCodes.DataFileInvalid, "save fewer samples per file"), path);

    /// <summary>The tensor in the bytes of a .pb file (the fuzzer's entry point); <paramref name="path"/> names it in the errors.</summary>
    internal static NpyArray ReadPb(byte[] bytes, string path)
    {
        TensorProto proto;
        if (WireCheck.Problem(bytes, TensorProto.Descriptor, path) is { } problem)
            throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"not an ONNX TensorProto: {problem}");
        try { proto = TensorProto.Parser.ParseFrom(bytes); }
        catch (Exception e) when (OnnxModelLoader.IsMalformed(e)) { throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"not an ONNX TensorProto: {e.Message}"); }
        TensorData t;
        try { t = OnnxImporter.ReadTensor(proto, path); }
        catch (ModelGenException e) { throw new ModelGenException(e.Code == ErrorCodes.UnsupportedDataType ? ErrorCodes.DataTypeUnsupported : ErrorCodes.DataFileInvalid, path, e.Message); }
        var values = t.Type == Ir.ElementType.Float32 ? t.Floats : [.. t.Ints.Select(v => (float)v)];
        return new NpyArray(t.Shape, values, t.Type == Ir.ElementType.Float32 ? "float32" : "int64");
    }

    static DataSet FromFolder(string path, IReadOnlyList<DataInput> inputs)
    {
        // test_data_set_0, test_data_set_1…: one sample per folder, input_<i>.pb in each (ONNX's test layout).
        var sets = Directory.GetDirectories(path, "test_data_set_*").Order(StringComparer.Ordinal).ToList();
        if (sets.Count == 0 && File.Exists(Path.Combine(path, "input_0.pb"))) sets = [path];
        if (sets.Count > 0)
        {
            var perInput = Enumerable.Range(0, inputs.Count).Select(i => sets.Select(set =>
            {
                string file = Path.Combine(set, $"input_{i}.pb");
                return File.Exists(file) ? ReadPb(file) : throw new ModelGenException(ErrorCodes.DataFileInvalid, set, $"input_{i}.pb (the model's input '{inputs[i].Name}') is missing");
            }).ToList()).ToList();
            return Stack(path, inputs, [.. Enumerable.Range(0, inputs.Count)], [.. perInput.Select(Concatenate)]);
        }
        var files = Directory.GetFiles(path, "*.pb").Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new ModelGenException(ErrorCodes.DataFileInvalid, path, "the folder holds no .pb files (nor test_data_set_* folders of input_<i>.pb)");
        OnlyInput(path, inputs, "give test_data_set_* folders (or one folder) with input_0.pb, input_1.pb…");
        return Stack(path, inputs, [0], [Concatenate(files.Select(ReadPb).ToList())]);
    }

    /// <summary>Tensors of one input stacked on axis 0 (each a sample with or without a leading batch axis).</summary>
    static NpyArray Concatenate(List<NpyArray> parts) =>
        parts.Count == 1 ? parts[0] : new NpyArray([-1, .. parts[0].Shape], [.. parts.SelectMany(p => p.Data)], parts[0].DType);

    /// <summary>Checks each array against its input's sample shape and counts the samples (equal for every input).</summary>
    internal static DataSet Stack(string path, IReadOnlyList<DataInput> inputs, int[] order, IReadOnlyList<NpyArray> arrays)
    {
        var values = new float[inputs.Count][];
        var rawUint8 = new List<string>();
        int count = -1;
        for (int a = 0; a < arrays.Count; a++)
        {
            int i = order[a];
            int[] sample = inputs[i].Shape.Skip(1).ToArray();
            long sampleLength = sample.Aggregate(1L, (x, y) => x * y);
            var array = arrays[a];
            // [N, sample…], or [sample…] for one sample, or [N, input shape…] (each sample saved as the model's
            // input, batch axis and all: a (200, 1, 25, 96) file for an input [1, 25, 96]), or, concatenated,
            // any stacking whose length is whole samples.
            bool shaped = array.Shape.Length == sample.Length + 1 && array.Shape.Skip(1).SequenceEqual(sample)
                || array.Shape.Length == sample.Length && array.Shape.SequenceEqual(sample)
                || array.Shape.Length == inputs[i].Shape.Length + 1 && array.Shape.Skip(1).SequenceEqual(inputs[i].Shape)
                || array.Shape.Length > 0 && array.Shape[0] == -1;
            if (!shaped || sampleLength == 0 || array.Data.LongLength % sampleLength != 0)
                throw new ModelGenException(ErrorCodes.DataFileInvalid, path,
                    $"the data for input '{inputs[i].Name}' has shape ({string.Join(", ", array.Shape)}); it must be samples of shape ({string.Join(", ", sample)}) stacked on axis 0: (N, {string.Join(", ", sample)}), or the input's shape with a leading sample axis: (N, {string.Join(", ", inputs[i].Shape)})");
            // NaN or infinity would poison the activation ranges, GPTQ's matrices and the report's figures.
            int bad = Array.FindIndex(array.Data, v => !float.IsFinite(v));
            if (bad >= 0)
                throw new ModelGenException(ErrorCodes.DataFileInvalid, path,
                    $"input '{inputs[i].Name}' sample {bad / sampleLength} holds {array.Data[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)} (element {bad % sampleLength} of the sample); the data must be finite numbers: drop or repair that sample");
            int n = (int)(array.Data.LongLength / sampleLength);
            if (count >= 0 && n != count)
                throw new ModelGenException(ErrorCodes.DataFileInvalid, path, $"input '{inputs[i].Name}' has {n} samples, another input {count}: every input needs the same number");
            count = n;
            values[i] = array.Data;
            if (array.DType is "|u1" or "<u1" or "u1" && array.Data.Any(v => v > 1)) rawUint8.Add(inputs[i].Name);
        }
        if (count == 0) throw new ModelGenException(ErrorCodes.DataFileInvalid, path, "the data holds no samples");
        return new DataSet(inputs, values, count) { RawUint8Inputs = rawUint8 };
    }
}
