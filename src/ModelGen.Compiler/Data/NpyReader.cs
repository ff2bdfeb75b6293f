using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using ModelGen.Onnx;

namespace ModelGen.Compiler.Data;

/// <summary>A NumPy array read from a .npy file: its shape, its values as float32, and the dtype it had on disk.</summary>
public sealed record NpyArray(int[] Shape, float[] Data, string DType);

/// <summary>
/// Reads NumPy .npy files (format versions 1, 2 and 3; little-endian float32, float64, int8, uint8,
/// int32, int64; C order). A data file is input from outside: the header is checked against the file's
/// length before anything is allocated, so no file can make the reader allocate more than it holds.
/// </summary>
public static class NpyReader
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    const int MaxHeader = 64 * 1024;

    /// <summary>Reads <paramref name="path"/>; uint8 values are divided by <paramref name="uint8Scale"/> (255 maps 0..255 to 0..1).</summary>
    public static NpyArray Read(string path, float uint8Scale = 1f)
    {
        if (!File.Exists(path)) throw new ModelGenException(ErrorCodes.FileNotFound, path, "the data file does not exist");
        return Read(File.ReadAllBytes(path), path, uint8Scale);
    }

    public static NpyArray Read(byte[] bytes, string pathForErrors, float uint8Scale = 1f)
    {
        ModelGenException Invalid(string what) => new(ErrorCodes.DataFileInvalid, pathForErrors, $"not a readable .npy file: {what}; save the array with numpy.save(path, array)");
        if (!(uint8Scale > 0) || float.IsInfinity(uint8Scale)) throw new ModelGenException(ErrorCodes.BadOption, pathForErrors, "the uint8 scale must be a positive number");
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic)) throw Invalid("it does not start with the .npy magic bytes");
        int major = bytes[6];
        long headerLength;
        int headerStart;
        switch (major)
        {
            case 1: headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)); headerStart = 10; break;
            case 2 or 3:
                if (bytes.Length < 12) throw Invalid("the header is truncated");
                headerLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)); headerStart = 12; break;
            default: throw Invalid($"format version {major} is unknown (1, 2 and 3 are read)");
        }
        if (headerLength > MaxHeader || headerStart + headerLength > bytes.Length) throw Invalid("the header is longer than the file");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes, headerStart, (int)headerLength);
        string descr = Value(header, "descr") is { } d ? Unquote(d) : throw Invalid("the header has no 'descr'");
        string fortran = Value(header, "fortran_order") ?? throw Invalid("the header has no 'fortran_order'");
        string shapeText = Value(header, "shape") ?? throw Invalid("the header has no 'shape'");
        if (fortran.StartsWith("True", StringComparison.Ordinal))
            throw new ModelGenException(ErrorCodes.DataTypeUnsupported, pathForErrors, "the array is in Fortran order; save numpy.ascontiguousarray(array) instead");
        if (!fortran.StartsWith("False", StringComparison.Ordinal)) throw Invalid($"fortran_order is '{fortran}'");
        var shape = ParseShape(shapeText) ?? throw Invalid($"the shape '{shapeText}' is not a tuple of sizes");

        (int size, Func<ReadOnlyMemory<byte>, long, float> read)? kind = descr switch
        {
            "<f4" => (4, (m, i) => BinaryPrimitives.ReadSingleLittleEndian(m.Span[(int)(i * 4)..])),
            "<f8" => (8, (m, i) => (float)BinaryPrimitives.ReadDoubleLittleEndian(m.Span[(int)(i * 8)..])),
            "|u1" or "<u1" or "u1" or "|b1" => (1, (m, i) => m.Span[(int)i] / uint8Scale),
            "|i1" or "<i1" or "i1" => (1, (m, i) => (sbyte)m.Span[(int)i]),
            "<i4" => (4, (m, i) => BinaryPrimitives.ReadInt32LittleEndian(m.Span[(int)(i * 4)..])),
            "<i8" => (8, (m, i) => BinaryPrimitives.ReadInt64LittleEndian(m.Span[(int)(i * 8)..])),
            _ => null,
        };
        if (kind is null)
            throw new ModelGenException(ErrorCodes.DataTypeUnsupported, pathForErrors,
                $"dtype '{descr}' is not read (little-endian float32, float64, int8, uint8, int32, int64); save array.astype(numpy.float32)");
        var (itemSize, readOne) = kind.Value;
        long count = 1;
        foreach (int dim in shape)
        {
            count *= dim;
            if (count > int.MaxValue) throw Invalid($"the shape ({string.Join(", ", shape)}) holds more values than a file can");
        }
        long dataStart = headerStart + headerLength, expected = count * itemSize;
        if (bytes.Length - dataStart < expected)
            throw Invalid($"the data is truncated: shape ({string.Join(", ", shape)}) of '{descr}' needs {expected} bytes, the file has {bytes.Length - dataStart}");
        if (bytes.Length - dataStart > expected)
            throw Invalid($"{bytes.Length - dataStart - expected} bytes follow the data that the shape ({string.Join(", ", shape)}) does not account for");
        var data = new float[count];
        var memory = new ReadOnlyMemory<byte>(bytes, (int)dataStart, (int)expected);
        if (descr == "<f4" && BitConverter.IsLittleEndian) memory.Span.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        else for (long i = 0; i < count; i++) data[i] = readOne(memory, i);
        return new NpyArray(shape, data, descr);
    }

    /// <summary>The text after <c>'key':</c> in the header dict, up to the next top-level comma or brace.</summary>
    static string? Value(string header, string key)
    {
        foreach (char quote in new[] { '\'', '"' })
        {
            int at = header.IndexOf(quote + key + quote, StringComparison.Ordinal);
            if (at < 0) continue;
            int colon = header.IndexOf(':', at + key.Length + 2);
            if (colon < 0) return null;
            int i = colon + 1;
            while (i < header.Length && header[i] == ' ') i++;
            int depth = 0, start = i;
            for (; i < header.Length; i++)
            {
                char c = header[i];
                if (c == '(') depth++;
                else if (c == ')') { if (depth == 0) break; depth--; if (depth == 0) { i++; break; } }
                else if ((c == ',' || c == '}') && depth == 0) break;
            }
            return header[start..i].Trim();
        }
        return null;
    }

    static string Unquote(string s) => s.Length >= 2 && (s[0] == '\'' || s[0] == '"') && s[^1] == s[0] ? s[1..^1] : s;

    static int[]? ParseShape(string text)
    {
        if (text.Length < 2 || text[0] != '(' || text[^1] != ')') return null;
        var parts = text[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var shape = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            string part = parts[i].TrimEnd('L');
            if (!long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long dim) || dim > int.MaxValue) return null;
            shape[i] = (int)dim;
        }
        return shape;
    }
}
