using System;

namespace ModelGen.Artifact;

/// <summary>
/// How a float32 convolution computed as a GEMM over its patches (im2col) splits its output rows into bands, shared
/// by the compiler, which sizes the patch scratch, and the generator, which loops over the bands. A convolution
/// with few inputs per output (K ≤ 128: a stem) but a large image would gather a patch matrix far larger than L1
/// (MobileNetV2's stem: 27 × 4096 floats, 442 KB), written once and read back from L2 by every row block. In bands
/// of output rows, each band's patches stay in L1 between the gather and the GEMM, and the scratch shrinks to one band.
/// A convolution with many inputs per output (K > 128) over a large image is banded too, within L2: its whole patch
/// matrix (super-resolution's 64 → 64 3x3 over 224 × 224: 576 × 50,176 floats, 115 MB) would stream from memory,
/// and its rows, a whole image apart, would fall into the same few cache sets when the GEMM reads a tile of them.
/// </summary>
public static class ConvBands
{
    /// <summary>Bytes of patches a band may span: with the weights beside them, within a 48 KiB L1 data cache.</summary>
    public const int L1Budget = 32 * 1024;

    /// <summary>Bytes of patches a band of a convolution with K > 128 may span: within a 512 KiB L2 cache.</summary>
    public const int L2Budget = 256 * 1024;

    /// <summary>Fewest columns (output pixels) a band's GEMM should have: four 512-bit vectors.</summary>
    const int MinColumns = 64;

    /// <summary>
    /// Output rows per band for K patch rows and an OH × OW output: the most rows that divide OH and fit the budget
    /// (L1 for K ≤ 128, L2 above: the GEMM then chunks K within the band), or OH (one band: no banding) when the
    /// patches fit already or a band would have fewer than 64 columns. With K > 128, one row when even one is over the
    /// L2 budget.
    /// </summary>
    public static int Rows(int k, int oh, int ow)
    {
        if (k <= 0 || oh <= 1 || ow <= 0) return Math.Max(oh, 1);
        if (k > 128)
        {
            long rowBytes = (long)k * ow * 4;
            if (rowBytes * oh <= L2Budget) return oh;
            for (int rows = (int)Math.Min(oh - 1, Math.Max(1, L2Budget / rowBytes)); rows >= 1; rows--)
                if (oh % rows == 0) return rows * ow >= MinColumns ? rows : oh;
            return oh;
        }
        if ((long)k * oh * ow * 4 <= L1Budget) return oh;
        for (int rows = Math.Min(oh - 1, L1Budget / (k * ow * 4)); rows >= 1; rows--)
            if (oh % rows == 0) return rows * ow >= MinColumns ? rows : oh;
        return oh;
    }
}
