using Google.Protobuf.Reflection;

namespace ModelGen.Onnx;

/// <summary>
/// A check of protobuf bytes before Google.Protobuf parses them. Google.Protobuf 3.35, parsing a byte
/// array, allocates what a length prefix near int.MaxValue declares (2 GB) before it fails, and throws
/// IndexOutOfRangeException or ArgumentOutOfRangeException on some truncated varints and unknown groups
/// (found by the fuzzer, docs/fuzzing.md). This walks the wire format with the message's descriptor:
/// every length-delimited field must fit in what contains it, nested messages are checked the same
/// way (at most 100 deep, as the parser allows), and groups, which ONNX never uses, are refused.
/// The same walk counts what the parse would build: nodes (in every graph, subgraphs included) and
/// length-delimited fields (messages, strings, byte strings, unknown fields). A two-byte empty node costs
/// the parser a hundred times its size in objects, so a 40 MB file of empty nodes would cost gigabytes
/// before any count made after parsing could refuse it.
/// </summary>
public static class WireCheck
{
    public const int MaxDepth = 100;

    /// <summary>More nodes than any real model has; bounds the compiler's work on hostile files.</summary>
    public const int MaxNodes = 50_000;

    /// <summary>Messages and strings in all: a real model of <see cref="MaxNodes"/> nodes has a few per node and value.</summary>
    public const int MaxFields = 2_000_000;

    /// <summary>
    /// What is wrong with <paramref name="bytes"/> as a <paramref name="message"/>, or null if the parser may read
    /// them; MG1007 naming <paramref name="path"/> as soon as the nodes or fields pass their bounds.
    /// </summary>
    public static string? Problem(ReadOnlySpan<byte> bytes, MessageDescriptor message, string path = "")
    {
        var counts = new Counts { Path = path };
        return Problem(bytes, message, 0, counts);
    }

    sealed class Counts
    {
        public string Path = "";
        public int Nodes, Fields;

        public void Add(ref int count, int max, string what)
        {
            if (++count > max)
                throw new ModelGenException(ErrorCodes.TooLarge, Path,
                    $"the model holds more than {max:N0} {what}; ModelGen compiles models of at most {MaxNodes:N0} nodes (counted before the file is parsed, so that a hostile file cannot exhaust memory)");
        }
    }

    static string? Problem(ReadOnlySpan<byte> bytes, MessageDescriptor message, int depth, Counts counts)
    {
        if (depth > MaxDepth) return $"messages are nested more than {MaxDepth} deep";
        int pos = 0;
        while (pos < bytes.Length)
        {
            if (ReadVarint(bytes, ref pos) is not { } tag) return "a field tag is truncated";
            int number = (int)Math.Min(tag >> 3, int.MaxValue);
            switch (tag & 7)
            {
                case 0:
                    if (ReadVarint(bytes, ref pos) is null) return $"field {number} of {message.Name}: a number is truncated";
                    break;
                case 1 or 5:
                    int size = (tag & 7) == 1 ? 8 : 4;
                    if (bytes.Length - pos < size) return $"field {number} of {message.Name} is truncated";
                    pos += size;
                    break;
                case 2:
                    if (ReadVarint(bytes, ref pos) is not { } length || length > (ulong)(bytes.Length - pos))
                        return $"field {number} of {message.Name} declares more bytes than its message has";
                    counts.Add(ref counts.Fields, MaxFields, "messages and strings");
                    if (message.FindFieldByNumber(number) is { FieldType: FieldType.Message } field)
                    {
                        if (field.MessageType == Proto.NodeProto.Descriptor) counts.Add(ref counts.Nodes, MaxNodes, "nodes");
                        if (Problem(bytes.Slice(pos, (int)length), field.MessageType, depth + 1, counts) is { } problem)
                            return problem;
                    }
                    pos += (int)length;
                    break;
                default:
                    return $"field {number} of {message.Name} has wire type {tag & 7} (a group or no type), which ONNX does not use";
            }
        }
        return null;
    }

    static ulong? ReadVarint(ReadOnlySpan<byte> bytes, ref int pos)
    {
        ulong value = 0;
        for (int shift = 0; shift < 70 && pos < bytes.Length; shift += 7)
        {
            byte b = bytes[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        return null;
    }
}
