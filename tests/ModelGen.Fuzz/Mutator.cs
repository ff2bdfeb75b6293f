using System.Buffers.Binary;
using System.Collections;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using ModelGen.Onnx;

namespace ModelGen.Fuzz;

/// <summary>
/// Seeded mutations: byte-level (bit flips, interesting integers over any offset or over a decimal
/// number in text, inserts, deletes, duplicated ranges, splices with another input) and, for
/// protobuf inputs, structural ones through reflection (a field set to an interesting value, a
/// repeated element removed, duplicated or copied from elsewhere, a sub-message dropped), which reach
/// the importer and the compiler past the protobuf parser. Deterministic for the generator's seed.
/// </summary>
public sealed class Mutator(Random rng, MessageDescriptor? message)
{
    static readonly long[] Interesting =
    [
        0, 1, -1, 2, 3, 4, 7, 8, 16, 31, 32, 63, 64, 100, 127, 128, 255, 256, 1000, 1024, 4096, 32767, 32768, 65535, 65536,
        int.MaxValue, int.MinValue, (long)int.MaxValue + 1, uint.MaxValue, 1L << 28, (1L << 28) + 1, 1L << 31, 1L << 32,
        1L << 40, long.MaxValue, long.MinValue, long.MaxValue / 2, -2, -128, 0x7FFFFFD0,
    ];

    static readonly double[] InterestingFloats =
        [0, -0.0, 1, -1, 0.5, 2, 1e-45, 1e-7, 1e30, 1e300, double.NaN, double.PositiveInfinity, double.NegativeInfinity, float.MaxValue, 65504, -3];

    /// <summary>Operators the importer knows and a few it does not, for op_type strings.</summary>
    static readonly string[] OpTypes =
    [
        "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul", "Add", "Mul", "Div", "Pow",
        "Relu", "Sigmoid", "Softmax", "Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Gather",
        "Pad", "Resize", "Flatten", "Identity", "Constant", "Shape", "Cast", "ReduceMean", "LSTM", "GRU", "BatchNormalization",
        "LayerNormalization", "Clip", "Expand", "Tile", "If", "Loop", "NoSuchOp", "",
    ];

    public int Next(int max) => rng.Next(max);

    /// <summary>A mutant of <paramref name="input"/>; <paramref name="other"/> is another corpus entry to splice with.</summary>
    public byte[] Mutate(byte[] input, byte[] other, int maxLength)
    {
        byte[] result = input;
        // Structural first when the input parses (most of the time), then zero to three byte mutations.
        if (message is not null && rng.Next(4) != 0 && TryStructural(input, other) is { } structural) result = structural;
        else result = Bytes(result, other);
        for (int n = rng.Next(4) == 0 ? rng.Next(1, 4) : 0; n > 0; n--) result = Bytes(result, other);
        return result.Length > maxLength ? result[..maxLength] : result;
    }

    byte[] Bytes(byte[] input, byte[] other)
    {
        var b = new List<byte>(input);
        int Pos(int extra = 0) => rng.Next(b.Count + extra);
        switch (b.Count == 0 ? 4 : rng.Next(11))
        {
            case 0: { int p = Pos(); b[p] ^= (byte)(1 << rng.Next(8)); break; }
            case 1: { b[Pos()] = (byte)rng.Next(256); break; }
            case 2: { WriteInteger(b, Pos(), Pick(Interesting)); break; }
            case 3: { int p = Pos(), n = Math.Min(b.Count - p, 1 + rng.Next(Math.Max(1, b.Count / 8))); b.RemoveRange(p, n); break; }
            case 4: { var bytes = new byte[1 + rng.Next(8)]; rng.NextBytes(bytes); b.InsertRange(Pos(1), bytes); break; }
            case 5: { int p = Pos(), n = Math.Min(b.Count - p, 1 + rng.Next(64)); b.InsertRange(Pos(1), b.GetRange(p, n)); break; }
            case 6: // splice: a prefix of this input and a suffix of the other
            {
                int p = Pos(1), q = other.Length == 0 ? 0 : rng.Next(other.Length);
                b.RemoveRange(p, b.Count - p);
                b.AddRange(other.AsSpan(q).ToArray());
                break;
            }
            case 7: // a chunk of the other input written over this one
            {
                if (other.Length == 0) break;
                int q = rng.Next(other.Length), n = Math.Min(other.Length - q, 1 + rng.Next(32)), p = Pos();
                for (int i = 0; i < n && p + i < b.Count; i++) b[p + i] = other[q + i];
                break;
            }
            case 8: ReplaceNumber(b); break;
            case 9: { int p = Pos(); b.Insert(p, (byte)"(),:'\" \n[]{}-_.eL"[rng.Next(17)]); break; }
            default: { int p = Pos(), n = Math.Min(b.Count - p, 1 + rng.Next(16)); b.RemoveRange(p, n); b.InsertRange(p, Varint(Pick(Interesting))); break; }
        }
        return [.. b];
    }

    T Pick<T>(T[] values) => values[rng.Next(values.Length)];

    void WriteInteger(List<byte> b, int p, long v)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, v);
        int width = Pick(new[] { 1, 2, 4, 8 });
        if (rng.Next(2) == 0) bytes[..width].Reverse();
        for (int i = 0; i < width && p + i < b.Count; i++) b[p + i] = bytes[i];
    }

    static byte[] Varint(long v)
    {
        var bytes = new List<byte>();
        ulong u = (ulong)v;
        do { byte x = (byte)(u & 0x7F); u >>= 7; bytes.Add(u != 0 ? (byte)(x | 0x80) : x); } while (u != 0);
        return [.. bytes];
    }

    /// <summary>A run of ASCII digits (a .npy header's shape or length) replaced by an interesting number.</summary>
    void ReplaceNumber(List<byte> b)
    {
        var starts = new List<int>();
        for (int i = 0; i < b.Count && starts.Count < 64; i++)
            if (char.IsAsciiDigit((char)b[i]) && (i == 0 || !char.IsAsciiDigit((char)b[i - 1]))) starts.Add(i);
        if (starts.Count == 0) { b.Insert(rng.Next(b.Count + 1), (byte)'9'); return; }
        int s = starts[rng.Next(starts.Count)], e = s;
        while (e < b.Count && char.IsAsciiDigit((char)b[e])) e++;
        b.RemoveRange(s, e - s);
        b.InsertRange(s, Encoding.ASCII.GetBytes(Pick(Interesting).ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>One field of the parsed message changed; null when the input does not parse.</summary>
    byte[]? TryStructural(byte[] input, byte[] other)
    {
        IMessage parsed, donor;
        // Google.Protobuf would allocate what a lying length declares (the inputs of findings are in the corpus).
        if (WireCheck.Problem(input, message!) is not null || WireCheck.Problem(other, message!) is not null) return null;
        try
        {
            parsed = message!.Parser.ParseFrom(input);
            donor = message.Parser.ParseFrom(other);
        }
        catch (Exception e) when (OnnxModelLoader.IsMalformed(e)) { return null; }
        var slots = new List<(IMessage Owner, FieldDescriptor Field)>();
        var pool = new List<(IMessage Owner, FieldDescriptor Field)>();
        Collect(parsed, slots, 0);
        Collect(donor, pool, 0);
        if (slots.Count == 0) return null;
        int mutations = 1 + (rng.Next(3) == 0 ? rng.Next(3) : 0);
        for (int m = 0; m < mutations; m++)
        {
            var (owner, field) = slots[rng.Next(slots.Count)];
            try { MutateField(owner, field, pool); }
            catch (Exception e) when (e is ArgumentException or InvalidCastException or InvalidOperationException) { }
        }
        try { return parsed.ToByteArray(); }
        catch (InvalidOperationException) { return null; } // a message the mutations left unserializable
    }

    static void Collect(IMessage message, List<(IMessage, FieldDescriptor)> slots, int depth)
    {
        if (depth > 12 || slots.Count > 20_000) return;
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            slots.Add((message, field));
            if (field.FieldType != FieldType.Message || field.IsMap) continue;
            var value = field.Accessor.GetValue(message);
            if (field.IsRepeated) { foreach (var item in (IList)value) Collect((IMessage)item, slots, depth + 1); }
            else if (value is IMessage child) Collect(child, slots, depth + 1);
        }
    }

    void MutateField(IMessage owner, FieldDescriptor field, List<(IMessage Owner, FieldDescriptor Field)> pool)
    {
        var accessor = field.Accessor;
        if (field.IsMap) return;
        if (field.IsRepeated)
        {
            var list = (IList)accessor.GetValue(owner);
            switch (rng.Next(list.Count == 0 ? 2 : 6))
            {
                case 0: list.Add(Fresh(field, pool)); break;
                case 1: if (Donor(field, pool) is { } d && d.Count > 0) list.Add(Clone(d[rng.Next(d.Count)])); break;
                case 2: list.RemoveAt(rng.Next(list.Count)); break;
                case 3: list.Add(Clone(list[rng.Next(list.Count)])); break;
                case 4: if (field.FieldType != FieldType.Message) list[rng.Next(list.Count)] = Fresh(field, pool); break;
                default: list.Clear(); break;
            }
            return;
        }
        if (field.FieldType == FieldType.Message)
        {
            if (rng.Next(3) == 0) accessor.Clear(owner);
            else accessor.SetValue(owner, Fresh(field, pool));
            return;
        }
        accessor.SetValue(owner, Fresh(field, pool));
    }

    static object? Clone(object? value) => value is IMessage m ? m.Descriptor.Parser.ParseFrom(m.ToByteArray()) : value;

    static IList? Donor(FieldDescriptor field, List<(IMessage Owner, FieldDescriptor Field)> pool)
    {
        var same = pool.Where(s => s.Field.FullName == field.FullName).ToList();
        return same.Count == 0 ? null : (IList)same[0].Field.Accessor.GetValue(same[0].Owner);
    }

    /// <summary>A value for one element of the field: interesting, or taken from the donor message.</summary>
    object Fresh(FieldDescriptor field, List<(IMessage Owner, FieldDescriptor Field)> pool)
    {
        long i = rng.Next(3) == 0 ? rng.Next(-4, 12) : Pick(Interesting);
        double f = Pick(InterestingFloats);
        switch (field.FieldType)
        {
            case FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32: return (int)i;
            case FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64: return i;
            case FieldType.UInt32 or FieldType.Fixed32: return (uint)i;
            case FieldType.UInt64 or FieldType.Fixed64: return (ulong)i;
            case FieldType.Float: return (float)f;
            case FieldType.Double: return f;
            case FieldType.Bool: return rng.Next(2) == 0;
            case FieldType.Enum: return (int)i;
            case FieldType.String:
                if (field.Name == "op_type") return Pick(OpTypes);
                var strings = Strings(pool);
                return rng.Next(6) == 0 || strings.Count == 0 ? Pick(new[] { "", "x", "../x", "a\0b", new string('n', 300), "ai.onnx", "input", "output" }) : strings[rng.Next(strings.Count)];
            case FieldType.Bytes:
            {
                var bytes = new byte[Pick(new[] { 0, 1, 3, 4, 8, 12, 16, 64, 100 })];
                rng.NextBytes(bytes);
                return ByteString.CopyFrom(bytes);
            }
            default: // a message: one of the same type from the donor, or an empty one
            {
                var donor = pool.Where(s => s.Field.MessageType?.FullName == field.MessageType.FullName).ToList();
                if (donor.Count > 0 && rng.Next(4) != 0)
                {
                    var (owner, f2) = donor[rng.Next(donor.Count)];
                    var value = f2.Accessor.GetValue(owner);
                    if (f2.IsRepeated) { var list = (IList)value; if (list.Count > 0) return Clone(list[rng.Next(list.Count)])!; }
                    else if (value is IMessage m) return Clone(m)!;
                }
                return field.MessageType.Parser.ParseFrom(ByteString.Empty);
            }
        }
    }

    static List<string> Strings(List<(IMessage Owner, FieldDescriptor Field)> pool)
    {
        var strings = new List<string>();
        foreach (var (owner, field) in pool)
        {
            if (field.FieldType != FieldType.String || strings.Count > 200) continue;
            var value = field.Accessor.GetValue(owner);
            if (field.IsRepeated) { foreach (var s in (IList)value) strings.Add((string)s); }
            else strings.Add((string)value);
        }
        return strings;
    }
}
