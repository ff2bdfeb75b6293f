namespace ModelGen.Artifact;

/// <summary>
/// Where a shared layer's codes sit in its rows (DenseLayout.Codebook; docs/artifact-format.md): the compiler packs
/// by it and the codebook kernel reads by it. Each row is <see cref="RowBytes"/> bytes, its codes packed bits each
/// from the low bits up, column c at bit c·bits, except 4-bit codes in whole blocks of 32 columns: column c of a block
/// sits in byte 2·(c % 4) + (c / 8) % 2 + 8·(c / 16) of the block's 16, in the low nibble when c % 8 &lt; 4, else in the
/// high one. AVX2 takes the low nibbles into the low half of a vector and the high ones into the high half, looks them
/// up, pairs the results into 16-bit values and splits each 32-bit lane into its two weights (shift and mask): this
/// order leaves 8 consecutive columns a vector. The columns past the last whole block follow, two a byte as the other
/// widths. A 4-bit codebook holds bfloat16 values (float32 entries whose low 16 bits are zero).
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
            int c = column % Block;
            return (column / Block * (Block / 2) + 2 * (c % 4) + c / 8 % 2 + 8 * (c / 16), c & 4);
        }
        int bit = column * bits;
        return (bit >> 3, bit & 7);
    }
}
