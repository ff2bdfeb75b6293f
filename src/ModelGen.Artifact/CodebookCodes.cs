namespace ModelGen.Artifact;

/// <summary>
/// Where a shared layer's codes sit in its rows (DenseLayout.Codebook; docs/artifact-format.md): the compiler packs
/// by it and the codebook kernel reads by it. Each row is <see cref="RowBytes"/> bytes, its codes packed bits each
/// from the low bits up, column c at bit c·bits, except 4-bit codes in whole blocks of 32 columns: a block's 16 bytes
/// hold in byte t's low nibble column (t / 4)·8 + t % 4 and in its high nibble the column 4 after it, the order in which
/// AVX2's byte shuffles and unpacks (vpshufb, vpunpcklbw, vpunpcklwd) leave 8 consecutive float32 weights per vector.
/// The columns past the last whole block follow, two a byte as the other widths.
/// </summary>
public static class CodebookCodes
{
    /// <summary>Columns of a 4-bit block.</summary>
    public const int Block = 32;

    /// <summary>The bytes of a row of <paramref name="k"/> codes of <paramref name="bits"/> each.</summary>
    public static int RowBytes(int k, int bits) => (k * bits + 7) / 8;

    /// <summary>The byte in its row and the shift of column <paramref name="column"/>'s code.</summary>
    public static (int Byte, int Shift) Place(int column, int k, int bits)
    {
        if (bits == 4 && column < k / Block * Block)
        {
            int inBlock = column % Block;
            return (column / Block * (Block / 2) + inBlock / 8 * 4 + inBlock % 4, inBlock & 4);
        }
        int bit = column * bits;
        return (bit >> 3, bit & 7);
    }
}
