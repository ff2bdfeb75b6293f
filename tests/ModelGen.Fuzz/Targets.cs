using System.IO.Compression;
using Google.Protobuf.Reflection;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Import;
using ModelGen.Compiler.Normalize;
using ModelGen.Generator.Emit;
using ModelGen.Onnx;
using ModelGen.Onnx.Proto;

namespace ModelGen.Fuzz;

/// <summary>
/// One thing fuzzed: bytes in, and the contract that they end in success or a <see cref="ModelGenException"/>
/// (other than MG9000). <see cref="Message"/> is set for protobuf inputs (structural mutations).
/// </summary>
public sealed record Target(string Name, string Description, MessageDescriptor? Message, int MaxInputBytes, Action<byte[]> Run);

public static class Targets
{
    /// <summary>An empty folder the targets name as the file's place: external data and data files resolve inside it, to nothing.</summary>
    static readonly string Scratch = Directory.CreateTempSubdirectory("modelgen-fuzz").FullName;

    /// <summary>Removes the scratch folder (at exit).</summary>
    public static void Cleanup()
    {
        try { Directory.Delete(Scratch, recursive: true); }
        catch (IOException) { }
    }

    static readonly DataInput[] OneInput = [new("x", [1, 2, 3])];
    static readonly DataInput[] TwoInputs = [new("x", [1, 2, 3]), new("y", [1, 4])];

    public static readonly Target[] All =
    [
        new("onnx", "OnnxModelLoader.Parse, ModelInspector.Inspect (every blocker: the import and shape inference going on past errors), OnnxImporter.Import and shape inference", ModelProto.Descriptor, 64 * 1024, bytes =>
        {
            string path = Path.Combine(Scratch, "fuzz.onnx");
            // inspect goes on where compile stops, so it meets states compile never does; either may refuse the file.
            try { ModelInspector.Inspect(OnnxModelLoader.Parse(bytes, path), path); }
            catch (ModelGenException e) when (e.Code != ErrorCodes.Internal) { }
            var graph = OnnxImporter.Import(OnnxModelLoader.Parse(bytes, path), path);
            ShapeInference.Run(graph);
        }),
        new("npy", "NpyReader.Read (bytes) and stacking against a [1,2,3] input", null, 16 * 1024, bytes =>
        {
            string path = Path.Combine(Scratch, "fuzz.npy");
            CalibrationData.Stack(path, OneInput, [0], [NpyReader.Read(bytes, path, Scale(bytes))]);
        }),
        new("npz", "CalibrationData's .npz reader (from a stream) for inputs x [1,2,3] and y [1,4]", null, 16 * 1024, bytes =>
        {
            string path = Path.Combine(Scratch, "fuzz.npz");
            using var stream = new MemoryStream(bytes, writable: false);
            CalibrationData.FromNpz(stream, path, bytes.Length % 2 == 0 ? OneInput : TwoInputs, Scale(bytes));
        }),
        new("pb", "CalibrationData's TensorProto .pb reader (bytes) and stacking against a [1,2,3] input", TensorProto.Descriptor, 16 * 1024, bytes =>
        {
            string path = Path.Combine(Scratch, "fuzz.pb");
            CalibrationData.Stack(path, OneInput, [0], [CalibrationData.ReadPb(bytes, path)]);
        }),
        new("compile", "the whole compile (ModelCompiler.Compile, the artifact text round trip, ModelEmitter.Emit) of a tiny model, with options chosen by the input's hash", ModelProto.Descriptor, 32 * 1024, Compile),
    ];

    /// <summary>FNV-1a of the input.</summary>
    public static ulong Hash(byte[] bytes)
    {
        ulong h = 14695981039346656037;
        foreach (byte b in bytes) h = (h ^ b) * 1099511628211;
        return h;
    }

    /// <summary>The uint8 scale: 1 or 255, by the input (deterministic for an input, so a finding replays).</summary>
    static float Scale(byte[] bytes) => bytes.Length % 3 == 0 ? 255f : 1f;

    static readonly string[] Compressions = ["none", "none", "int8-weights", "int4-weights", "int8"];

    static void Compile(byte[] bytes)
    {
        ulong hash = Hash(bytes);
        string dir = Path.Combine(Scratch, "compile");
        Directory.CreateDirectory(dir);
        string model = Path.Combine(dir, "model.onnx");
        File.WriteAllBytes(model, bytes);
        string compression = Compressions[(int)(hash % (ulong)Compressions.Length)];
        string? calibration = null;
        if (compression == "int8")
        {
            // Calibration data for the model's first input when it is float32 (else int8 ends in a coded error).
            calibration = Path.Combine(dir, "calibration.npy");
            File.WriteAllBytes(calibration, CalibrationFor(bytes, model));
        }
        var options = new CompileOptions
        {
            ModelPath = model,
            ClassName = "Fuzzed",
            Simd = (hash >> 8) % 3 == 0 ? "none" : "auto",
            BatchSize = (hash >> 16) % 5 == 0 ? 2 : 1,
            Compression = compression,
            CalibrationPath = calibration,
        };
        var artifact = ModelCompiler.Compile(options);
        ModelEmitter.Emit(ArtifactText.Read(ArtifactText.Write(artifact)));
    }

    /// <summary>Two samples of deterministic values for the model's first input, or an empty .npy when that input has no float shape.</summary>
    static byte[] CalibrationFor(byte[] bytes, string model)
    {
        int[] shape = [0];
        try
        {
            var graph = OnnxImporter.Import(OnnxModelLoader.Parse(bytes, model), model);
            if (graph.Inputs.Count > 0 && graph[graph.Inputs[0]].Shape is { } s && s.Length > 0 && s.Skip(1).Aggregate(1L, (a, b) => a * b) <= 4096)
                shape = [2, .. s.Skip(1)];
        }
        catch (ModelGenException) { }
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++) values[i] = (i * 37 % 17) / 8f - 1f;
        return Npy.Float32(shape, values);
    }
}
