using Google.Protobuf;
using ModelGen.Onnx.Proto;

namespace ModelGen.Onnx;

/// <summary>
/// Loads an ONNX file as untrusted input: the size is bounded before reading, protobuf errors become
/// MG0003, and external data is read only from files inside the model's folder.
/// </summary>
public static class OnnxModelLoader
{
    /// <summary>Protobuf caps one message at 2 GiB; ONNX larger than that uses external data.</summary>
    public const long MaxModelBytes = int.MaxValue;

    public static ModelProto Load(string path) => Parse(ReadModelBytes(path), path);

    /// <summary>The model file's bytes, read through <see cref="GuardedFile"/> (regular files only, size checked first).</summary>
    public static byte[] ReadModelBytes(string path) =>
        GuardedFile.ReadAll(path, MaxModelBytes, "the model file", ErrorCodes.FileTooLarge,
            "ONNX files over 2 GiB must keep their weights in external data files");

    public static ModelProto Parse(byte[] bytes, string path)
    {
        ModelProto model;
        try
        {
            // The wire format first: the parser would allocate what a lying length prefix declares.
            if (WireCheck.Problem(bytes, ModelProto.Descriptor, path) is { } problem)
                throw new ModelGenException(ErrorCodes.NotOnnx, path, $"the file is not a valid ONNX model ({problem}); re-export it or check that it is not truncated");
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (Exception e) when (IsMalformed(e))
        {
            throw new ModelGenException(ErrorCodes.NotOnnx, path, $"the file is not a valid ONNX model ({e.Message}); re-export it or check that it is not truncated");
        }
        if (model.Graph is null || (model.Graph.Node.Count == 0 && model.Graph.Output.Count == 0))
            throw new ModelGenException(ErrorCodes.NoGraph, path, "the file holds no ONNX graph; is it an ONNX model?");
        return model;
    }

    /// <summary>
    /// Whether a protobuf parser's exception means malformed input: besides InvalidProtocolBufferException,
    /// Google.Protobuf throws IndexOutOfRangeException or ArgumentOutOfRangeException on some truncated
    /// varints and unknown groups (found by the fuzzer).
    /// </summary>
    public static bool IsMalformed(Exception e) => e is InvalidProtocolBufferException or IndexOutOfRangeException or ArgumentOutOfRangeException;

    /// <summary>
    /// The bytes of a tensor stored in an external file (TensorProto.data_location = EXTERNAL),
    /// refusing any location that escapes the model's folder.
    /// </summary>
    public static byte[] ReadExternalData(TensorProto tensor, string modelPath, long expectedBytes)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var entry in tensor.ExternalData)
        {
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset": offset = ParseLong(entry.Value, tensor, modelPath); break;
                case "length": length = ParseLong(entry.Value, tensor, modelPath); break;
            }
        }
        if (string.IsNullOrEmpty(location))
            throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}' says its data is external but names no location");
        // A NUL (or, on Windows, another character no path holds) names no file; Path would throw ArgumentException.
        if (location.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
            throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}': external data location '{Printable(location)}' holds a NUL or another character no file name can");
        if (Path.IsPathRooted(location))
            throw new ModelGenException(ErrorCodes.ExternalDataOutsideFolder, modelPath, $"initializer '{tensor.Name}' points to external data '{Printable(location)}', which is not a relative path inside the model's folder; ModelGen reads external data only from the model's own folder");
        // Confined after every symbolic link is resolved, the folders' too: a link inside the folder may not
        // lead out of it.
        string folder = GuardedFile.RealPath(Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".");
        string full = GuardedFile.RealPath(Path.Combine(folder, location));
        if (!GuardedFile.IsInside(full, folder))
            throw new ModelGenException(ErrorCodes.ExternalDataOutsideFolder, modelPath, $"initializer '{tensor.Name}' points to external data '{Printable(location)}', which is outside the model's folder (it resolves to {full}); ModelGen reads external data only from the model's own folder, symbolic links resolved");
        if (!File.Exists(full) && !Directory.Exists(full))
            throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}' needs the external data file '{Printable(location)}', which does not exist beside the model");
        var info = GuardedFile.Regular(full, $"the external data file '{Printable(location)}' of initializer '{tensor.Name}'");
        if (length < 0) length = expectedBytes;
        // offset + length may overflow: compare by subtraction.
        if (length != expectedBytes || offset < 0 || offset > info.Length || length > info.Length - offset)
            throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}': external data '{Printable(location)}' offset {offset} length {length} does not fit the file ({info.Length} bytes) or the tensor ({expectedBytes} bytes)");
        return GuardedFile.ReadRange(info, offset, length, modelPath, $"the external data file '{Printable(location)}'");
    }

    /// <summary>A name from the model as it may appear in a message: control characters escaped.</summary>
    static string Printable(string s) =>
        string.Concat(s.Select(c => char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069' ? $"\\u{(int)c:X4}" : c.ToString()));

    static long ParseLong(string s, TensorProto tensor, string modelPath) =>
        long.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v)
            ? v
            : throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}': external data field value '{s}' is not a number");
}
