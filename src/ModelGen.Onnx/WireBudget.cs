namespace ModelGen.Onnx;

/// <summary>
/// Counts, on the protobuf wire and before anything is parsed, what parsing an ONNX file would build: nodes
/// (in every graph, subgraphs included) and length-delimited fields (messages, strings, byte strings, unknown
/// fields). A two-byte empty node costs the parser a hundred times its size in objects, so a 40 MB file of
/// empty nodes would cost gigabytes before any count made after parsing could refuse it.
/// Malformed wire data is left to the parser, which reports it (MG0003).
/// </summary>
public static class WireBudget
{
    /// <summary>More nodes than any real model has; bounds the compiler's work on hostile files.</summary>
    public const int MaxNodes = 50_000;

    /// <summary>Messages and strings in all: a real model of <see cref="MaxNodes"/> nodes has a few per node and value.</summary>
    public const int MaxFields = 2_000_000;

    const int MaxDepth = 100; // the parser's own recursion limit

    enum Kind { Other, Model, Graph, Node, Attribute, Tensor, SparseTensor, ValueInfo, Type, TypeTensor, TypeElement, TypeMap, Shape }

    /// <summary>The message type of field <paramref name="field"/> of a <paramref name="parent"/> (onnx.proto's numbers).</summary>
    static Kind Child(Kind parent, int field) => (parent, field) switch
    {
        (Kind.Model, 7) => Kind.Graph,
        (Kind.Graph, 1) => Kind.Node,
        (Kind.Graph, 5) => Kind.Tensor,
        (Kind.Graph, 15) => Kind.SparseTensor,
        (Kind.Graph, 11 or 12 or 13) => Kind.ValueInfo,
        (Kind.Node, 5) => Kind.Attribute,
        (Kind.Attribute, 5 or 10) => Kind.Tensor,
        (Kind.Attribute, 6 or 11) => Kind.Graph,
        (Kind.Attribute, 22 or 23) => Kind.SparseTensor,
        (Kind.Attribute, 14 or 15) => Kind.Type,
        (Kind.SparseTensor, 1 or 2) => Kind.Tensor,
        (Kind.ValueInfo, 2) => Kind.Type,
        (Kind.Type, 1 or 8) => Kind.TypeTensor,
        (Kind.Type, 4 or 9) => Kind.TypeElement,
        (Kind.Type, 5) => Kind.TypeMap,
        (Kind.TypeElement, 1) => Kind.Type,
        (Kind.TypeMap, 2) => Kind.Type,
        (Kind.TypeTensor, 2) => Kind.Shape,
        _ => Kind.Other, // strings, bytes, leaf messages, unknown fields: counted, not entered
    };

    /// <summary>Throws MG1007 as soon as a count in the ModelProto <paramref name="bytes"/> passes its bound.</summary>
    public static void Check(byte[] bytes, string path) => Check(bytes, path, Kind.Model);

    /// <summary>The same for a TensorProto (a .pb data file).</summary>
    public static void CheckTensor(byte[] bytes, string path) => Check(bytes, path, Kind.Tensor);

    static void Check(byte[] bytes, string path, Kind root)
    {
        int nodes = 0, fields = 0;
        try
        {
            Walk(bytes, 0, bytes.Length, root, 0, ref nodes, ref fields, path);
        }
        catch (MalformedException)
        {
            // The parser says what is wrong, with its own words.
        }
    }

    sealed class MalformedException : Exception;

    static void Walk(byte[] b, int pos, int end, Kind kind, int depth, ref int nodes, ref int fields, string path)
    {
        while (pos < end)
        {
            ulong tag = ReadVarint(b, ref pos, end);
            int field = (int)(tag >> 3);
            switch (tag & 7)
            {
                case 0: ReadVarint(b, ref pos, end); break;
                case 1: pos += 8; break;
                case 5: pos += 4; break;
                case 3: case 4: Count(ref fields, MaxFields, "fields", path); break; // groups: ONNX has none; the parser keeps them as unknown fields
                case 2:
                    ulong length = ReadVarint(b, ref pos, end);
                    if (length > (ulong)(end - pos)) throw new MalformedException();
                    Count(ref fields, MaxFields, "messages and strings", path);
                    var child = Child(kind, field);
                    if (child == Kind.Node) Count(ref nodes, MaxNodes, "nodes", path);
                    if (child != Kind.Other && depth < MaxDepth) Walk(b, pos, pos + (int)length, child, depth + 1, ref nodes, ref fields, path);
                    pos += (int)length;
                    break;
                default: throw new MalformedException();
            }
            if (pos > end) throw new MalformedException();
        }
    }

    static void Count(ref int count, int max, string what, string path)
    {
        if (++count > max)
            throw new ModelGenException(ErrorCodes.TooLarge, path,
                $"the model holds more than {max:N0} {what}; ModelGen compiles models of at most {MaxNodes:N0} nodes (counted before the file is parsed, so that a hostile file cannot exhaust memory)");
    }

    static ulong ReadVarint(byte[] b, ref int pos, int end)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= end) throw new MalformedException();
            byte x = b[pos++];
            value |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return value;
        }
        throw new MalformedException();
    }
}
