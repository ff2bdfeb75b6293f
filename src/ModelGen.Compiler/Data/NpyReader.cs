using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace ModelGen.Compiler.Data;

/// <summary>A NumPy array read from a .npy file: its shape, its values as float32, and the dtype it had on disk.</summary>
public sealed record NpyArray(int[] Shape, float[] Data, string DType);

/// <summary>
/// Reads NumPy .npy files (format versions 1.0, 2.0 and 3.0; little-endian float32, float64, int8, uint8,
/// int32, int64; C order). A data file is input from outside: the header is parsed with a bounded parser
/// and checked against the file's length before anything is allocated, so no file can make the reader
/// allocate more than a small multiple of its own size, loop, or fail with anything but a
/// <see cref="ModelGenException"/> (MG0001, MG0201 or MG0202).
/// </summary>
public static class NpyReader
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The longest header read; numpy writes a few hundred bytes at most.</summary>
    public const int MaxHeaderLength = 64 * 1024;

    const string SaveHint = "save the array with numpy.save(path, array.astype(numpy.float32))";

    /// <summary>Reads <paramref name="path"/>; uint8 values are divided by <paramref name="uint8Scale"/> (1 keeps 0..255, 255 maps them to 0..1).</summary>
    public static NpyArray Read(string path, float uint8Scale = 1f)
    {
        var bytes = GuardedFile.ReadAll(path, Array.MaxLength, "the .npy file", ErrorCodes.DataFileInvalid, "save fewer samples per file");
        return Read(bytes, path, uint8Scale);
    }

    /// <summary>Reads the bytes of a .npy file; <paramref name="pathForErrors"/> names it in the errors.</summary>
    public static NpyArray Read(byte[] bytes, string pathForErrors, float uint8Scale = 1f)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ModelGenException Invalid(string what, string todo = SaveHint) =>
            new(ErrorCodes.DataFileInvalid, pathForErrors, $"not a readable .npy file: {what}; {todo}");
        ModelGenException Unsupported(string what, string todo) =>
            new(ErrorCodes.DataTypeUnsupported, pathForErrors, $"{what}; {todo}");

        if (!(uint8Scale > 0) || float.IsInfinity(uint8Scale))
            throw new ModelGenException(ErrorCodes.BadOption, pathForErrors, $"the uint8 scale {uint8Scale} is not a positive number; give 1 (raw 0..255) or 255 (0..1)");

        // Magic, version, header length.
        if (bytes.Length < Magic.Length || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw Invalid("it does not start with the .npy magic bytes \\x93NUMPY (is it another format, or a Git LFS pointer?)");
        if (bytes.Length < 10) throw Invalid("the file ends inside its preamble (it is truncated)");
        int major = bytes[6], minor = bytes[7];
        if (major is not (1 or 2 or 3) || minor != 0)
            throw Invalid($"format version {major}.{minor} is unknown (1.0, 2.0 and 3.0 are read)");
        int headerStart = major == 1 ? 10 : 12;
        if (bytes.Length < headerStart) throw Invalid("the file ends inside its preamble (it is truncated)");
        long headerLength = major == 1
            ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8))
            : BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        if (headerLength > MaxHeaderLength)
            throw Invalid($"the header declares {headerLength} bytes, more than the {MaxHeaderLength} read");
        if (headerStart + headerLength > bytes.Length)
            throw Invalid($"the header declares {headerLength} bytes but the file has only {bytes.Length - headerStart} after the preamble (it is truncated)");

        // The header: a Python dict literal with 'descr', 'fortran_order' and 'shape'.
        string text = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes, headerStart, (int)headerLength);
        Dictionary<string, object?> header;
        try { header = new HeaderParser(text).ParseDict(); }
        catch (FormatException e) { throw Invalid($"the header {Shorten(text)} is not a Python dict literal ({e.Message})"); }

        foreach (string key in (string[])["descr", "fortran_order", "shape"])
            if (!header.ContainsKey(key)) throw Invalid($"the header {Shorten(text)} has no '{key}'");

        if (header["fortran_order"] is not bool fortran)
            throw Invalid($"'fortran_order' is {Show(header["fortran_order"])}, not True or False");
        if (fortran)
            throw Unsupported("the array is stored in Fortran (column-major) order, which is not read",
                "save it in C order with numpy.save(path, numpy.ascontiguousarray(array))");

        if (header["descr"] is not string descr)
            throw Unsupported($"the dtype {Show(header["descr"])} is a structured (record) dtype, which is not read",
                "save one plain numeric array per input with numpy.save(path, array.astype(numpy.float32))");
        var kind = Kind(descr);
        if (kind is null)
        {
            string what = descr.StartsWith('>')
                ? $"dtype {Show(descr)} is big-endian, which is not read"
                : $"dtype {Show(descr)} is not read (little-endian float32, float64, int8, uint8, int32 and int64 are)";
            throw Unsupported(what, "save it with numpy.save(path, array.astype(numpy.float32))");
        }

        if (header["shape"] is not PyTuple { Items: var dims })
            throw Invalid($"'shape' is {Show(header["shape"])}, not a tuple of sizes such as (256, 1, 28, 28) or ()");
        var shape = new int[dims.Count];
        long count = 1;
        for (int i = 0; i < dims.Count; i++)
        {
            if (dims[i] is not long dim) throw Invalid($"dimension {i} of the shape is {Show(dims[i])}, not a whole number");
            if (dim < 0) throw Invalid($"dimension {i} of the shape is {HeaderParser.ShowInt(dim)}; sizes must be 0 or more");
            if (dim > int.MaxValue) throw Invalid($"dimension {i} of the shape is {HeaderParser.ShowInt(dim)}, larger than any data file");
            shape[i] = (int)dim;
            count *= dim; // both factors are at most int.MaxValue, so this cannot overflow a long
            if (count > Array.MaxLength)
                throw Invalid($"the shape {ShowShape(dims)} holds more values than any data file");
        }

        // The data: exactly count × itemsize bytes after the header.
        var (itemSize, type) = kind.Value;
        long dataStart = headerStart + headerLength, available = bytes.Length - dataStart, expected = count * itemSize;
        if (available < expected)
            throw Invalid($"the data is truncated: shape {ShowShape(dims)} of '{descr}' needs {expected} bytes after the header, the file has {available}",
                "copy the file again, or save it again with numpy.save");
        if (available > expected)
            throw Invalid($"{available - expected} bytes follow the {expected} bytes of data that shape {ShowShape(dims)} of '{descr}' accounts for",
                "save one array per file with numpy.save (use numpy.savez for several arrays)");

        var src = bytes.AsSpan((int)dataStart, (int)expected);
        var data = new float[count];
        switch (type)
        {
            case 'f' when itemSize == 4:
                if (BitConverter.IsLittleEndian) src.CopyTo(MemoryMarshal.AsBytes(data.AsSpan()));
                else for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(i * 4)..]);
                break;
            case 'f':
                for (int i = 0; i < data.Length; i++) data[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(i * 8)..]);
                break;
            case 'u':
                for (int i = 0; i < data.Length; i++) data[i] = src[i] / uint8Scale;
                break;
            case 'b':
                for (int i = 0; i < data.Length; i++) data[i] = src[i] != 0 ? 1f : 0f;
                break;
            case 'i' when itemSize == 1:
                for (int i = 0; i < data.Length; i++) data[i] = (sbyte)src[i];
                break;
            case 'i' when itemSize == 4:
                for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(i * 4)..]);
                break;
            default:
                for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(i * 8)..]);
                break;
        }
        return new NpyArray(shape, data, descr);
    }

    /// <summary>The item size and kind ('f' float, 'i' signed, 'u' unsigned, 'b' bool) of a supported dtype, or null.</summary>
    static (int Size, char Type)? Kind(string descr) => descr switch
    {
        "<f4" => (4, 'f'),
        "<f8" => (8, 'f'),
        "|u1" or "<u1" or "u1" => (1, 'u'),
        "|i1" or "<i1" or "i1" => (1, 'i'),
        "|b1" or "<b1" or "b1" => (1, 'b'),
        "<i4" => (4, 'i'),
        "<i8" => (8, 'i'),
        _ => null,
    };

    /// <summary>Header text for a message: at most <paramref name="max"/> characters, control characters as <c>\xNN</c> so the message stays on one line.</summary>
    static string Shorten(string header, int max = 120)
    {
        string t = header.Trim();
        if (t.Length > max) t = t[..(max - 3)] + "...";
        var s = new StringBuilder(t.Length);
        foreach (char c in t) s.Append(char.IsControl(c) ? $"\\x{(int)c:x2}" : c);
        return s.ToString();
    }

    static string ShowShape(List<object?> dims) =>
        "(" + string.Join(", ", dims.Select(d => d is long l ? HeaderParser.ShowInt(l) : Show(d))) + (dims.Count == 1 ? ",)" : ")");

    static string Show(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        string s => "'" + Shorten(s, 60) + "'",
        long l => HeaderParser.ShowInt(l),
        PyTuple => "a tuple",
        List<object?> => "a list",
        _ => "a value",
    };

    /// <summary>A Python tuple from the header (a list is a <see cref="List{T}"/>).</summary>
    sealed record PyTuple(List<object?> Items);

    /// <summary>
    /// The subset of Python literals a .npy header uses: a dict of string keys; values are strings, True,
    /// False, None, integers, tuples and lists (nested at most <see cref="MaxDepth"/> deep). Anything else,
    /// or text after the closing brace other than whitespace, is a <see cref="FormatException"/>.
    /// </summary>
    sealed class HeaderParser(string text)
    {
        const int MaxDepth = 16;
        /// <summary>Integers larger than this are kept as this value: no shape can use them anyway.</summary>
        const long Huge = (long)int.MaxValue + 1;
        int pos;

        public static string ShowInt(long value) => value >= Huge ? $"more than {int.MaxValue}" : value <= -Huge ? $"less than {-int.MaxValue}" : value.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public Dictionary<string, object?> ParseDict()
        {
            SkipSpace();
            Expect('{');
            var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
            SkipSpace();
            while (Peek() != '}')
            {
                if (Peek() is not ('\'' or '"')) throw Error("a quoted key");
                string key = ParseString();
                SkipSpace();
                Expect(':');
                object? value = ParseValue(1);
                if (!dict.TryAdd(key, value)) throw new FormatException($"the key '{Shorten(key, 40)}' appears twice");
                SkipSpace();
                if (Peek() == ',') { pos++; SkipSpace(); }
                else if (Peek() != '}') throw Error("',' or '}'");
            }
            pos++;
            SkipSpace();
            if (pos != text.Length) throw Error("the end of the header");
            return dict;
        }

        object? ParseValue(int depth)
        {
            if (depth > MaxDepth) throw new FormatException($"values are nested more than {MaxDepth} deep");
            SkipSpace();
            char c = Peek();
            if (c is '\'' or '"') return ParseString();
            if (c is '(' or '[') return ParseSequence(depth);
            if (c is '-' or '+' || char.IsAsciiDigit(c)) return ParseInt();
            if (char.IsAsciiLetter(c))
            {
                int start = pos;
                while (pos < text.Length && (char.IsAsciiLetterOrDigit(text[pos]) || text[pos] == '_')) pos++;
                return text[start..pos] switch
                {
                    "True" => true,
                    "False" => false,
                    "None" => null,
                    var word => throw new FormatException($"'{Shorten(word, 20)}' at offset {start} is not a literal"),
                };
            }
            throw Error("a value");
        }

        /// <summary>A tuple <c>(a, b)</c>, <c>(a,)</c>, <c>()</c> or list <c>[a, b]</c>; <c>(a)</c> is just <c>a</c>, as in Python.</summary>
        object? ParseSequence(int depth)
        {
            char open = text[pos++], close = open == '(' ? ')' : ']';
            var items = new List<object?>();
            bool comma = false;
            SkipSpace();
            while (Peek() != close)
            {
                items.Add(ParseValue(depth + 1));
                SkipSpace();
                if (Peek() == ',') { pos++; comma = true; SkipSpace(); }
                else if (Peek() != close) throw Error($"',' or '{close}'");
            }
            pos++;
            if (open == '(' && items.Count == 1 && !comma) return items[0];
            return open == '(' ? new PyTuple(items) : items;
        }

        long ParseInt()
        {
            int start = pos;
            bool negative = text[pos] == '-';
            if (text[pos] is '-' or '+') { pos++; SkipSpace(); }
            if (!char.IsAsciiDigit(Peek())) throw Error("a digit");
            long value = 0;
            while (pos < text.Length && (char.IsAsciiDigit(text[pos]) || text[pos] == '_'))
            {
                if (text[pos] != '_') value = Math.Min(Huge, value * 10 + (text[pos] - '0'));
                pos++;
            }
            if (pos < text.Length && text[pos] is 'L' or 'l') pos++; // Python 2 long, written by old numpy
            if (pos < text.Length && (char.IsAsciiLetterOrDigit(text[pos]) || text[pos] == '.'))
                throw new FormatException($"'{Shorten(text[start..Math.Min(text.Length, pos + 1)], 30)}' at offset {start} is not a whole number");
            return negative ? -value : value;
        }

        string ParseString()
        {
            char quote = text[pos++];
            var s = new StringBuilder();
            while (true)
            {
                if (pos >= text.Length || text[pos] is '\n' or '\r') throw new FormatException("a string is not closed");
                char c = text[pos++];
                if (c == quote) return s.ToString();
                if (c == '\\')
                {
                    if (pos >= text.Length) throw new FormatException("a string is not closed");
                    c = text[pos++];
                }
                s.Append(c);
            }
        }

        void SkipSpace()
        {
            while (pos < text.Length && text[pos] is ' ' or '\t' or '\n' or '\r') pos++;
        }

        char Peek() => pos < text.Length ? text[pos] : '\0';

        void Expect(char c)
        {
            if (Peek() != c) throw Error($"'{c}'");
            pos++;
        }

        FormatException Error(string expected) => new(pos >= text.Length
            ? $"it ends where {expected} was expected"
            : $"'{(char.IsControl(text[pos]) || char.IsWhiteSpace(text[pos]) ? $"\\x{(int)text[pos]:x2}" : text[pos].ToString())}' at offset {pos} where {expected} was expected");
    }
}
