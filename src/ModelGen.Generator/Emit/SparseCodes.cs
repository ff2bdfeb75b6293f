namespace ModelGen.Generator.Emit;

/// <summary>
/// Sparse layers whose values are codebook codes (weight sharing): entry e's code is the <c>bits</c> bits at bit
/// e·bits of a byte stream, low bits first, across rows without a break (Compress.SparseWeights.PackedValues). The
/// kernels read the value as codebook[code]: the codebook, 2^bits float32 values, stays in L1.
/// </summary>
internal static class SparseCodes
{
    const string U = "Unsafe";

    /// <summary>
    /// A local function <c>Code(ref byte codes, int e)</c>: one byte read for widths that divide 8, else a 16-bit read
    /// (the stream carries a byte of slack for it).
    /// </summary>
    public static string CodeFunction(int bits)
    {
        int mask = (1 << bits) - 1;
        string body = bits switch
        {
            8 => $"{U}.Add(ref codes, e)",
            4 => $"({U}.Add(ref codes, e >> 1) >> ((e & 1) << 2)) & 15",
            2 => $"({U}.Add(ref codes, e >> 2) >> ((e & 3) << 1)) & 3",
            _ => $"({U}.ReadUnaligned<ushort>(ref {U}.Add(ref codes, (e * {bits}) >> 3)) >> ((e * {bits}) & 7)) & {mask}",
        };
        return $"static int Code(ref byte codes, int e) => {body};";
    }

    /// <summary>The value of entry <paramref name="e"/>: the codebook (ref <paramref name="codebook"/>) at its code in the stream (ref <paramref name="codes"/>).</summary>
    public static string Value(string codebook, string codes, string e) => $"{U}.Add(ref {codebook}, Code(ref {codes}, {e}))";

    /// <summary>
    /// Whether four consecutive entries' codes come from one read (<see cref="StepWord"/>): every width but 7, whose four
    /// codes and shift need 35 bits.
    /// </summary>
    public static bool HasStepWord(int bits) => bits != 7;

    /// <summary>
    /// A statement setting <c>uint cw</c> to the codes of entries <paramref name="e"/> to e + 3, the first in the low
    /// bits: one read (16 bits for 2-bit codes, 24 for 3 and 4, 32 for 5, 6 and 8) shifted to the first code. It never
    /// reads past the byte after the last code, which the stream carries as slack (SparseWeights.PackedValueBytes).
    /// </summary>
    public static string StepWord(int bits, string codes, string e)
    {
        string first = bits switch { 8 => e, 4 => $"({e} >> 1)", 2 => $"({e} >> 2)", _ => $"(({e}) * {bits} >> 3)" };
        string shift = bits switch { 8 => "", 4 => $" >> (({e} & 1) << 2)", 2 => $" >> (({e} & 3) << 1)", _ => $" >> (({e}) * {bits} & 7)" };
        string at = $"{U}.Add(ref {codes}, {first})";
        string read = bits switch
        {
            2 => $"{U}.ReadUnaligned<ushort>(ref {at})",
            3 or 4 => $"({U}.ReadUnaligned<ushort>(ref {at}) | (uint){U}.Add(ref {codes}, {first} + 2) << 16)",
            _ => $"{U}.ReadUnaligned<uint>(ref {at})",
        };
        return $"uint cw = {read}{shift};";
    }

    /// <summary>Entry e + <paramref name="t"/>'s value, its code taken from <c>cw</c> (<see cref="StepWord"/>).</summary>
    public static string StepValue(int bits, string codebook, int t) =>
        $"{U}.Add(ref {codebook}, (int)({(t == 0 ? "cw" : $"(cw >> {t * bits})")}{(bits == 8 && t == 3 ? "" : $" & {(1 << bits) - 1}")}))";

    /// <summary>What the values are, for the kernel's comment.</summary>
    public static string Describe(int bits) => $"{bits}-bit codes into a codebook of {1 << bits} float32 values (code 0 is 0: padding)";
}
