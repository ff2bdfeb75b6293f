using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// How the stored weights of one format become the float32 operands of a kernel, written once per SIMD
/// width and once in scalar form, in the manner of TensorPrimitives' operator structs. The matrix-vector
/// kernel (<see cref="GemvEmitter.EmitRows"/>) is written over this interface: it owns the loops, the
/// accumulators, the loads of x and the <see cref="DenseEpilogue"/>; the decoder owns only what differs
/// between formats. The float32 kernel in 4-row panels (<see cref="GemvEmitter.Emit"/>) keeps its own layout
/// and reads each weight through <see cref="Float32Decoder"/> at the offsets it gives; the GEMM reads its operands
/// through Float32Decoder.Load and Scalar.
/// <para>
/// To add a weight format (sparse, codebook, N:M…): (1) the compiler stores the weights in the layout the
/// decoder reads, as the node's weight input (per-row scales or a codebook as further inputs); (2) write a
/// class implementing this interface: the widths it has a vector form for and the run-time test each needs,
/// the columns one step covers, the statements and the float vector expression that decode a step of a row,
/// and the scalar term; (3) give it to <see cref="GemvEmitter.EmitRows"/> from an entry point beside
/// <see cref="GemvEmitter.EmitInt8"/>, which KernelEmitter.Dense calls for the format. Decoding must be
/// exact (int8 and int4 values are, in float32): the scalar form and every width then multiply the same
/// numbers, and the reference evaluator's dequantized weights are what the kernel computes with.
/// </para>
/// </summary>
internal interface IWeightDecoder
{
    /// <summary>The C# element type of the weight span <c>w</c>.</summary>
    string Element { get; }

    /// <summary>Comment lines for the emitted kernel: the layout, and why the vector form decodes as it does.</summary>
    IEnumerable<string> Why { get; }

    /// <summary>The scale each row's sum is multiplied by (an expression of <c>j</c>), or null for none.</summary>
    string? RowScale(string row);

    /// <summary>Rows computed together: each shares every load of x, each with its own accumulator.</summary>
    int RowsPerStep { get; }

    /// <summary>The widths that have a vector form here, widest first (a subset of the SIMD level's).</summary>
    IReadOnlyList<SimdWidth> Widths(SimdLevel simd);

    /// <summary>The run-time test that selects <paramref name="width"/> (some forms call x86 instructions directly).</summary>
    string Guard(SimdWidth width);

    /// <summary>Columns of a row one step of the vector loop decodes (a multiple of the width).</summary>
    int Step(SimdWidth width);

    /// <summary>Columns the vector loop covers; the rest are added one by one after the vector sum.</summary>
    int VectorColumns(SimdWidth width);

    /// <summary>Statements before the row loop at this width (constants the decoding uses).</summary>
    IEnumerable<string> Setup(SimdWidth width);

    /// <summary>Statements at the start of a group of rows starting at row <c>j</c> (where the rows start).</summary>
    IEnumerable<string> RowsStart(SimdWidth width);

    /// <summary>Statements that decode one step of row <c>j + r</c> at column <c>i</c>, before its multiply-adds.</summary>
    IEnumerable<string> Decode(SimdWidth width, int r, int rows);

    /// <summary>Part <paramref name="part"/> (of <see cref="Step"/> / width) of the decoded step of row <c>j + r</c>: a float vector.</summary>
    string Part(SimdWidth width, int r, int rows, int part);

    /// <summary>A statement adding weight (row, i)·x[i] to <paramref name="sum"/>: the scalar form.</summary>
    string ScalarTerm(string row, string sum);
}

/// <summary>The end of a fully connected output: scale, bias and the fused activation, then the store.</summary>
internal static class DenseEpilogue
{
    /// <summary><c>{ float v = scale·sum + b[row]; y[row] = act(v); }</c> for output <paramref name="row"/>.</summary>
    public static string Store(ArtifactNode node, string sum, string? scale, bool hasBias, string row) =>
        $"{{ float v = {(scale is null ? "" : scale + " * ")}{sum}{(hasBias ? $" + b[{row}]" : "")}; y[{row}] = {KernelEmitter.Act(node)}; }}";
}

/// <summary>
/// float32 weights: the decoding is a plain load. The kernel owns the layout (the 4-row panels of
/// <see cref="GemvEmitter.Emit"/>): it gives where a step of a row and a scalar weight sit, and the decoder only
/// reads them. The GEMM reads its operands through <see cref="Load"/> and <see cref="Scalar"/>.
/// </summary>
internal sealed class Float32Decoder : IWeightDecoder
{
    const string U = "Unsafe";
    readonly int _k;
    readonly System.Func<SimdWidth, int, int, string> _vectorAt;
    readonly System.Func<string, string> _scalarAt;

    /// <summary>
    /// <paramref name="vectorAt"/> (width, row j + r of the group, part) and <paramref name="scalarAt"/> (row) are
    /// element offsets into <c>rw</c> at the current column <c>i</c>, in the kernel's layout.
    /// </summary>
    public Float32Decoder(int k, System.Func<SimdWidth, int, int, string> vectorAt, System.Func<string, string> scalarAt)
    {
        _k = k;
        _vectorAt = vectorAt;
        _scalarAt = scalarAt;
    }

    public string Element => "float";
    public IEnumerable<string> Why => new string[0];
    public string? RowScale(string row) => null;
    public int RowsPerStep => 4;
    public IReadOnlyList<SimdWidth> Widths(SimdLevel simd) => SimdLadder.Widths(simd).Where(x => _k >= x.Floats).ToList();
    public string Guard(SimdWidth width) => width.Accelerated;
    public int Step(SimdWidth width) => width.Floats;
    public int VectorColumns(SimdWidth width) => _k - _k % width.Floats;
    public IEnumerable<string> Setup(SimdWidth width) => new string[0];
    public IEnumerable<string> RowsStart(SimdWidth width) => new string[0];
    public IEnumerable<string> Decode(SimdWidth width, int r, int rows) => new string[0];
    public string Part(SimdWidth width, int r, int rows, int part) => Load(width, "rw", _vectorAt(width, r, part));
    public string ScalarTerm(string row, string sum) => $"{sum} += {U}.Add(ref rx, i) * {Scalar("rw", _scalarAt(row))};";

    /// <summary>A vector of float32 weights at element offset <paramref name="at"/> (none: at the ref itself) of <paramref name="weights"/>.</summary>
    public static string Load(SimdWidth width, string weights, string? at) =>
        at is null ? $"{width.V}.LoadUnsafe(ref {weights})" : $"{width.V}.LoadUnsafe(ref {weights}, {at})";

    /// <summary>One float32 weight at element offset <paramref name="at"/> (none: the ref itself) of <paramref name="weights"/>.</summary>
    public static string Scalar(string weights, string? at) => at is null ? weights : $"{U}.Add(ref {weights}, {at})";
}

/// <summary>
/// int8 weights, row-major, one scale per row (weight-only int8): each step loads 16 (or 8) int8 weights,
/// sign-extends them to int32 and converts them to float32 in registers (vpmovsxbd, vcvtdq2ps): a quarter of
/// the bytes of float32 weights to read. Without Vector512 or Vector256 (x86), the weights are converted one
/// by one.
/// </summary>
internal sealed class Int8RowDecoder : IWeightDecoder
{
    const string U = "Unsafe";
    const string V128 = "Vector128", V64 = "Vector64";
    readonly int _k;

    public Int8RowDecoder(int k) => _k = k;

    public string Element => "sbyte";
    public IEnumerable<string> Why => new[]
    {
        "// Each step loads 16 (or 8) int8 weights, sign-extends them to int32 and converts them to float32 in registers",
        "// (vpmovsxbd, vcvtdq2ps): a quarter of the bytes of float32 weights to read. Without Vector512 or Vector256 (x86),",
        "// the weights are converted one by one.",
    };
    public string? RowScale(string row) => $"scales[{row}]";
    public int RowsPerStep => 4;

    public IReadOnlyList<SimdWidth> Widths(SimdLevel simd) => SimdLadder.Widths(simd).Where(x => x.Bits > 128 && _k >= x.Floats).ToList();

    /// <summary>The x86 conversions are there whenever these vector sizes are accelerated on x86; elsewhere the scalar loop runs.</summary>
    public string Guard(SimdWidth width) => width.AcceleratedX86;

    public int Step(SimdWidth width) => width.Floats;
    public int VectorColumns(SimdWidth width) => _k - _k % width.Floats;
    public IEnumerable<string> Setup(SimdWidth width) => new string[0];
    public IEnumerable<string> RowsStart(SimdWidth width) => new[] { $"int row = j * {_k};" };
    public IEnumerable<string> Decode(SimdWidth width, int r, int rows) => new string[0];

    public string Part(SimdWidth width, int r, int rows, int part) => Floats(width, "rw", r == 0 ? "row + i" : $"row + {r * _k} + i");

    /// <summary>
    /// The int8 values at <paramref name="at"/> of the sbyte ref <paramref name="weights"/> as a float vector of
    /// <paramref name="width"/> (512 or 256 bits, x86): sign-extended in registers, then converted (exact).
    /// The GEMM's weight widening uses it too.
    /// </summary>
    public static string Floats(SimdWidth width, string weights, string at) => width.Bits == 512
        ? $"{width.V}.ConvertToSingle(Avx512F.ConvertToVector512Int32({V128}.LoadUnsafe(ref {weights}, (nuint){SimdWidth.Parenthesized(at)})))"
        : $"{width.V}.ConvertToSingle(Avx2.ConvertToVector256Int32({V128}.Create({V64}.LoadUnsafe(ref {weights}, (nuint){SimdWidth.Parenthesized(at)}), {V64}<sbyte>.Zero)))";

    public string ScalarTerm(string row, string sum) => $"{sum} += {U}.Add(ref rx, i) * {U}.Add(ref rw, {SimdWidth.Parenthesized(row)} * {_k} + i);";
}

/// <summary>
/// int4 weights, two per byte, one scale per row (weight-only int4): rows hold blocks of 32 weights in 16
/// bytes (element i in the low nibble of byte i, element i + 16 in the high nibble); per block one load, a
/// mask and a shift give two runs of 16 int4 values, sign-extended and converted to float32 in registers.
/// Elements past the last whole block, and machines without AVX-512, one by one.
/// </summary>
internal sealed class Int4BlockDecoder : IWeightDecoder
{
    const string U = "Unsafe";
    const string V128 = "Vector128";
    readonly int _k, _rowBytes;

    public Int4BlockDecoder(int k, int rowBytes) { _k = k; _rowBytes = rowBytes; }

    public string Element => "byte";
    public IEnumerable<string> Why => new[]
    {
        "// Rows hold blocks of 32 weights in 16 bytes (element i in the low nibble of byte i, element i + 16 in the high",
        "// nibble): per block one load, a mask and a shift give two runs of 16 int4 values, sign-extended and converted to",
        "// float32 in registers. Elements past the last whole block, and machines without AVX-512, one by one.",
    };
    public string? RowScale(string row) => $"scales[{row}]";
    public int RowsPerStep => 1;

    public IReadOnlyList<SimdWidth> Widths(SimdLevel simd) => SimdLadder.Widths(simd).Where(x => x.Bits == 512 && _k >= 32).ToList();
    public string Guard(SimdWidth width) => width.AcceleratedX86;
    public int Step(SimdWidth width) => 32;
    public int VectorColumns(SimdWidth width) => _k / 32 * 32;
    public IEnumerable<string> Setup(SimdWidth width) => new[] { $"var low = {V128}.Create((byte)0x0F);", $"var eight = {V128}.Create((sbyte)8);" };
    public IEnumerable<string> RowsStart(SimdWidth width) => new[] { $"ref byte row = ref {U}.Add(ref rw, j * {_rowBytes});" };

    public IEnumerable<string> Decode(SimdWidth width, int r, int rows) => new[]
    {
        $"var packed = {V128}.LoadUnsafe(ref row, (nuint)(i >> 1));",
        $"var first = {V128}.AsSByte(packed & low) - eight;",
        $"var second = {V128}.AsSByte({V128}.ShiftRightLogical(packed, 4)) - eight;",
    };

    public string Part(SimdWidth width, int r, int rows, int part) =>
        $"{width.V}.ConvertToSingle(Avx512F.ConvertToVector512Int32({(part == 0 ? "first" : "second")}))";

    public string ScalarTerm(string row, string sum) =>
        $"{{ byte packed = {U}.Add(ref rw, {SimdWidth.Parenthesized(row)} * {_rowBytes} + (i >> 5) * 16 + (i & 15)); {sum} += (((i & 16) == 0 ? packed & 15 : packed >> 4) - 8) * {U}.Add(ref rx, i); }}";
}

/// <summary>
/// Shared weights (weight sharing, layout <see cref="DenseLayout.Codebook"/>): weight (j, c) is codebook[code], the codes
/// placed as <see cref="CodebookCodes"/> says, each row from a byte. Vector forms, AVX2:
/// 4 bits: the codebook's entries are bfloat16 values (float32 with the low 16 bits zero: the compiler rounds them so),
/// so two 16-byte tables, the third and fourth byte of each entry, hold it. Per block of 32 columns: one 16-byte load
/// into both halves, a shift (0 in the low half, 4 in the high) and a mask make 32 byte indices, vpshufb looks them up
/// in both tables, one unpack a half pairs the bytes into 16-bit values, and each 32-bit lane then holds two weights:
/// shifted left by 16, the one in its low half; masked, the one in its high half. Seven shuffles and shifts for 32
/// weights (four tables and two rounds of unpacks took thirteen).
/// 2 and 3 bits: a step of 8 columns is 2 or 3 bytes, broadcast to 8 lanes, each shifted to its code (vpsrlvd); vpermps
/// picks each lane's weight from an 8-float table by the low 3 bits (a 4-entry codebook repeated to 8).
/// 5 to 8 bits, and Vector128: each weight looked up, the vector built from the values.
/// </summary>
internal sealed class CodebookDecoder : IWeightDecoder
{
    const string U = "Unsafe";
    readonly int _k, _bits, _rowBytes;

    public CodebookDecoder(int k, int bits)
    {
        _k = k;
        _bits = bits;
        _rowBytes = CodebookCodes.RowBytes(k, bits);
    }

    /// <summary>The bytes of one row's codes.</summary>
    public int RowBytes => _rowBytes;

    /// <summary>The AVX2 forms: byte shuffles for 4-bit codes, vpermps for 2 and 3 bits.</summary>
    bool InRegisters(SimdWidth width) => _bits <= 4 && width.Bits == 256;

    public string Element => "byte";

    public IEnumerable<string> Why => _bits == 4
        ? new[]
        {
            "// 4-bit codes in blocks of 32 columns, 16 bytes: column c of a block sits in byte 2·(c % 4) + (c / 8) % 2 + 8·(c / 16),",
            "// in the low nibble for c % 8 < 4, else in the high one: the order the AVX2 form leaves 8 consecutive columns a vector.",
            "// AVX2: the codebook holds bfloat16 values, so vpshufb looks 32 codes up in two 16-byte tables (the upper two bytes of",
            "// each entry), an unpack pairs them, and a shift or a mask puts each weight in a float32 lane: 7 shuffles and shifts",
            "// for 32 weights. Vector128: lookups. No float copy of the weights is made.",
        }
        : _bits < 4
        ? new[]
        {
            $"// {_bits}-bit codes packed from the low bits up: 8 columns are {_bits} bytes. AVX2: they go to 8 lanes, each shifted to its code",
            $"// (vpsrlvd), and vpermps picks each weight from an 8-float table by the low 3 bits{(_bits == 2 ? " (the 4 entries repeated)" : "")}. Vector128: lookups.",
        }
        : new[]
        {
            $"// {_bits}-bit codes packed from the low bits up: a codebook of {1 << _bits} entries is too large for registers, so each weight is",
            "// looked up and the vector built from the values. No float copy of the weights is made.",
        };

    public string? RowScale(string row) => null;

    /// <summary>
    /// 4-bit codes one row at a time: the four tables, the mask and the decoding's temporaries take most of the 16 AVX2
    /// registers, and four rows' accumulators and x vectors on top spill (x comes again from L1, folded into the FMA).
    /// </summary>
    public int RowsPerStep => _bits == 4 ? 1 : 4;

    public IReadOnlyList<SimdWidth> Widths(SimdLevel simd) => SimdLadder.Widths(simd).Where(x => x.Bits < 512 && _k >= Step(x)).ToList();

    /// <summary>The register forms call AVX2 directly; the lookups are plain Vector256/128.</summary>
    public string Guard(SimdWidth width) => InRegisters(width) ? width.AcceleratedX86 : width.Accelerated;

    /// <summary>A block of 32 columns for 4-bit codes, else 8 columns (whose codes fill whole bytes).</summary>
    public int Step(SimdWidth width) => _bits == 4 ? CodebookCodes.Block : 8;
    public int VectorColumns(SimdWidth width) => _k / Step(width) * Step(width);

    public IEnumerable<string> Setup(SimdWidth width)
    {
        yield return "ref float rc = ref MemoryMarshal.GetReference(codebook);";
        if (!InRegisters(width)) yield break;
        if (_bits == 4)
        {
            // The upper two bytes of each of the 16 entries (the lower two are zero), in both 128-bit halves (vpshufb looks up within each half).
            yield return $"ref byte entries = ref {U}.As<float, byte>(ref rc);";
            foreach (var (b, table) in new[] { (2, "tableLow"), (3, "tableHigh") })
            {
                var bytes = Enumerable.Range(0, 16).Select(e => $"{U}.Add(ref entries, {4 * e + b})");
                yield return $"var {table} = Vector256.Create(Vector128.Create({string.Join(", ", bytes)}));";
            }
            yield return "var nibble = Vector256.Create((byte)15);";
            yield return "var halves = Vector256.Create(0u, 0u, 0u, 0u, 4u, 4u, 4u, 4u); // the low nibbles in the low half, the high ones in the high half";
            yield return "var upper = Vector256.Create(0xFFFF0000u);";
            yield break;
        }
        if (_bits == 3) yield return "var table = Vector256.LoadUnsafe(ref rc);";
        else
        {
            yield return "var quarter = Vector128.LoadUnsafe(ref rc);";
            yield return "var table = Vector256.Create(quarter, quarter);";
        }
        yield return $"var right = Vector256.Create({string.Join(", ", Enumerable.Range(0, 8).Select(e => (_bits * e).ToString(System.Globalization.CultureInfo.InvariantCulture) + "u"))});";
    }

    public IEnumerable<string> RowsStart(SimdWidth width) => new[] { $"ref byte row = ref {U}.Add(ref rw, j * {_rowBytes});" };

    public IEnumerable<string> Decode(SimdWidth width, int r, int rows)
    {
        string at = _bits == 4 ? "(i >> 1)" : $"(i >> 3) * {_bits}";
        yield return $"ref byte codes{r} = ref {U}.Add(ref row, {(r == 0 ? at : $"{r * _rowBytes} + {at}")});";
        if (!InRegisters(width)) yield break;
        if (_bits == 4)
        {
            yield return $"var packed{r} = Vector256.Create(Vector128.LoadUnsafe(ref codes{r}));";
            yield return $"var indices{r} = Avx2.ShiftRightLogicalVariable(packed{r}.AsUInt32(), halves).AsByte() & nibble;";
            yield return $"var low{r} = Avx2.Shuffle(tableLow, indices{r});";
            yield return $"var high{r} = Avx2.Shuffle(tableHigh, indices{r});";
            yield return $"var first{r} = Avx2.UnpackLow(low{r}, high{r}).AsUInt32();";
            yield return $"var second{r} = Avx2.UnpackHigh(low{r}, high{r}).AsUInt32();";
            yield break;
        }
        string load = _bits == 2
            ? $"{U}.ReadUnaligned<ushort>(ref codes{r})"
            : $"{U}.ReadUnaligned<ushort>(ref codes{r}) | (uint){U}.Add(ref codes{r}, 2) << 16";
        yield return $"var packed{r} = Vector256.Create((uint)({load}));";
        yield return $"var lanes{r} = Avx2.ShiftRightLogicalVariable(packed{r}, right).AsInt32();";
    }

    public string Part(SimdWidth width, int r, int rows, int part)
    {
        if (InRegisters(width))
            return _bits == 4
                ? (part % 2 == 0 ? $"Avx2.ShiftLeftLogical({(part < 2 ? "first" : "second")}{r}, 16).AsSingle()" : $"({(part < 2 ? "first" : "second")}{r} & upper).AsSingle()")
                : $"Avx2.PermuteVar8x32(table, lanes{r})";
        var lanes = Enumerable.Range(part * width.Floats, width.Floats).Select(e => $"{U}.Add(ref rc, {Code($"codes{r}", e)})");
        return $"{width.V}.Create({string.Join(", ", lanes)})";
    }

    /// <summary>The code of column <paramref name="e"/> of a step whose bytes start at <paramref name="codes"/>: constant bytes and shift.</summary>
    string Code(string codes, int e)
    {
        var (lo, shift) = CodebookCodes.Place(e, Step(SimdWidth.V128), _bits);
        int hi = _bits == 4 ? lo : (e * _bits + _bits - 1) >> 3;
        string Byte(int at) => at == 0 ? codes : $"{U}.Add(ref {codes}, {at})";
        if (_bits == 8) return Byte(lo);
        string value = lo == hi ? Byte(lo) : $"({Byte(lo)} | {Byte(hi)} << 8)";
        if (shift > 0) value += $" >> {shift}";
        return shift + _bits == 8 ? value : $"{value} & {(1 << _bits) - 1}";
    }

    public string ScalarTerm(string row, string sum)
    {
        string codes = $"ref byte c = ref {U}.Add(ref rw, {SimdWidth.Parenthesized(row)} * {_rowBytes});";
        string code;
        string place = "";
        if (_bits == 8) code = $"{U}.Add(ref c, i)";
        else if (_bits == 4 && _k >= CodebookCodes.Block)
        {
            // Columns in whole blocks of 32 sit in the block order; the rest two a byte.
            int full = _k / CodebookCodes.Block * CodebookCodes.Block;
            place = $"bool inBlock = i < {full}; int at = inBlock ? (i >> 5 << 4) + (((i & 3) << 1) | ((i >> 3) & 1) | ((i >> 1) & 8)) : i >> 1; ";
            code = $"{U}.Add(ref c, at) >> (inBlock ? i & 4 : (i & 1) << 2) & 15";
        }
        else
        {
            place = $"int o = i * {_bits}; ";
            code = $"({U}.Add(ref c, o >> 3) | {U}.Add(ref c, (o + {_bits - 1}) >> 3) << 8) >> (o & 7) & {(1 << _bits) - 1}";
        }
        return $"{{ {place}{codes} {sum} += codebook[{code}] * {U}.Add(ref rx, i); }}";
    }
}
