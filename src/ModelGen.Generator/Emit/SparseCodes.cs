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

    /// <summary>What the values are, for the kernel's comment.</summary>
    public static string Describe(int bits) => $"{bits}-bit codes into a codebook of {1 << bits} float32 values (code 0 is 0: padding)";
}
