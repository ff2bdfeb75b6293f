using System;

namespace ModelGen.Artifact;

/// <summary>
/// How a float32 convolution computed as a GEMM over its patches (im2col) splits its output rows into bands, shared
/// by the compiler, which sizes the patch scratch, and the generator, which loops over the bands. A convolution
/// with few inputs per output (K ≤ 128: a stem) but a large image would gather a patch matrix far larger than L1
/// (MobileNetV2's stem: 27 × 4096 floats, 442 KB), written once and read back from L2 by every row block. In bands
/// of output rows, each band's patches stay in L1 between the gather and the GEMM, and the scratch shrinks to one band.
/// </summary>
public static class ConvBands
{
    /// <summary>Bytes of patches a band may span: with the weights beside them, within a 48 KiB L1 data cache.</summary>
    public const int L1Budget = 32 * 1024;

    /// <summary>Fewest columns (output pixels) a band's GEMM should have: four 512-bit vectors.</summary>
    const int MinColumns = 64;

    /// <summary>
    /// Output rows per band for K patch rows and an OH × OW output: the most rows that divide OH and fit the budget,
    /// or OH (one band: no banding) when the patches fit already, K is large (the GEMM then chunks K instead), or a
    /// band would have fewer than 64 columns.
    /// </summary>
    public static int Rows(int k, int oh, int ow)
    {
        if (k <= 0 || oh <= 1 || ow <= 0 || k > 128 || (long)k * oh * ow * 4 <= L1Budget) return Math.Max(oh, 1);
        for (int rows = Math.Min(oh - 1, L1Budget / (k * ow * 4)); rows >= 1; rows--)
            if (oh % rows == 0) return rows * ow >= MinColumns ? rows : oh;
        return oh;
    }
}
