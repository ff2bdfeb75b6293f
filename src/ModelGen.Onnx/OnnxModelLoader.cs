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

    public static ModelProto Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
            throw new ModelGenException(ErrorCodes.FileNotFound, path, "the model file does not exist; check the path of the CompressedModel item");
        if (info.Length > MaxModelBytes)
            throw new ModelGenException(ErrorCodes.FileTooLarge, path, $"the model file is {info.Length} bytes; ONNX files over 2 GiB must keep their weights in external data files");
        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path);
    }

    public static ModelProto Parse(byte[] bytes, string path)
    {
        ModelProto model;
        try
        {
            // The wire format first: the parser would allocate what a lying length prefix declares.
            if (WireCheck.Problem(bytes, ModelProto.Descriptor) is { } problem)
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
        string folder = Path.GetFullPath(Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".");
        string full = Path.GetFullPath(Path.Combine(folder, location));
        string folderWithSep = folder.EndsWith(Path.DirectorySeparatorChar) ? folder : folder + Path.DirectorySeparatorChar;
        if (Path.IsPathRooted(location) || !full.StartsWith(folderWithSep, StringComparison.Ordinal))
            throw new ModelGenException(ErrorCodes.ExternalDataOutsideFolder, modelPath, $"initializer '{tensor.Name}' points to external data '{location}' outside the model's folder; ModelGen reads external data only from the model's own folder");
        var info = new FileInfo(full);
        if (!info.Exists)
            throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}' needs the external data file '{location}', which does not exist beside the model");
        if (length < 0) length = expectedBytes;
        if (length != expectedBytes || offset < 0 || offset + length > info.Length)
            throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}': external data '{location}' offset {offset} length {length} does not fit the file ({info.Length} bytes) or the tensor ({expectedBytes} bytes)");
        var data = new byte[length];
        using var stream = File.OpenRead(full);
        stream.Seek(offset, SeekOrigin.Begin);
        stream.ReadExactly(data);
        return data;
    }

    static long ParseLong(string s, TensorProto tensor, string modelPath) =>
        long.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v)
            ? v
            : throw new ModelGenException(ErrorCodes.ExternalDataMissing, modelPath, $"initializer '{tensor.Name}': external data field value '{s}' is not a number");
}
