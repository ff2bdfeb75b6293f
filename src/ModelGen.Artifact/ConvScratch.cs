namespace ModelGen.Artifact;

/// <summary>
/// The scratch outputs of the convolution kernels: which ones a node has and how large each is, decided by one
/// function each that the compiler (which allocates them in the arena) and the generator (which checks and indexes
/// them) both call, as <see cref="ConvBands"/> is. A kernel's scratch outputs follow its result y, in the order given here.
/// </summary>
public static class ConvScratch
{
    /// <summary>
    /// A pointwise convolution: 1x1, unit strides, no pads. Its input already is the patch matrix (float32 GEMM:
    /// no patch scratch) or quantizes straight into it (int8: no quantized plane).
    /// </summary>
    public static bool IsPointwise(int[] kernel, int[] strides, int[] pads)
    {
        if (kernel.Length < 2 || strides.Length < 2 || kernel[0] != 1 || kernel[1] != 1 || strides[0] != 1 || strides[1] != 1) return false;
        foreach (int p in pads)
            if (p != 0) return false;
        return true;
    }

    /// <summary>
    /// Conv by implicit GEMM (<see cref="ConvMethod.ImplicitGemm"/>), its scratch output (y1) in floats: one group's input
    /// channels zero-padded (pads top, left, bottom, right), or 0, no scratch, when there are no pads (the input is read
    /// in place).
    /// </summary>
    public static long ImplicitGemmPaddedFloats(int channelsPerGroup, int inH, int inW, int[] pads)
    {
        if (pads[0] == 0 && pads[1] == 0 && pads[2] == 0 && pads[3] == 0) return 0;
        return (long)channelsPerGroup * (inH + pads[0] + pads[2]) * (inW + pads[1] + pads[3]);
    }

    /// <summary>Floats of a 64-byte cache line: an N:M sparse convolution (SparseConvEmitter) copies its input onto rows that start on lines.</summary>
    public const int SparseLineFloats = 16;

    /// <summary><paramref name="floats"/> rounded up to whole 64-byte lines.</summary>
    public static int SparseLine(int floats) => (floats + SparseLineFloats - 1) / SparseLineFloats * SparseLineFloats;

    /// <summary>
    /// Conv sparse N:M (<see cref="ConvMethod.Sparse"/>), its copy of one group's input channels in floats: each channel's
    /// rows zero-padded and rounded up to whole lines (a pointwise convolution's plane, one long row, rounded up), and
    /// a line to spare so the copy can start on one.
    /// </summary>
    public static long SparseNOfMCopyFloats(int channelsPerGroup, int inH, int inW, int kernelH, int kernelW, int strideH, int strideW, int padTop, int padLeft, int padBottom, int padRight)
    {
        bool pointwise = kernelH * kernelW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0;
        long plane = pointwise ? SparseLine(inH * inW) : (long)(inH + padTop + padBottom) * SparseLine(inW + padLeft + padRight);
        return channelsPerGroup * plane + SparseLineFloats;
    }

    /// <summary>Conv sparse N:M, its table in ints: each column's input offset (rounded up to a line: the decoding reads 16 at a time), then one row's entries' offsets.</summary>
    public static int SparseNOfMTableInts(int columns, int rowEntries) => SparseLine(columns) + rowEntries;

    /// <summary>
    /// ConvInt8, first scratch output (y1): bytes of the input quantized into a plane with zero-point borders,
    /// slack for the last 16-byte loads of a kernel row of <paramref name="paddedKernelW"/> taps and, with pads, a flat
    /// copy of the quantized image after it; none for a pointwise convolution.
    /// </summary>
    public static long Int8PlaneBytes(bool pointwise, int channels, int inH, int inW, int[] pads, int paddedKernelW)
    {
        if (pointwise) return 0;
        bool padded = pads[0] != 0 || pads[1] != 0 || pads[2] != 0 || pads[3] != 0;
        return Int8FlatOffset(channels, inH, inW, pads, paddedKernelW) + (padded ? (long)channels * inH * inW : 0);
    }

    /// <summary>ConvInt8: where in y1 the flat copy of the quantized image starts (after the plane and its slack).</summary>
    public static long Int8FlatOffset(int channels, int inH, int inW, int[] pads, int paddedKernelW) =>
        (long)channels * (inH + pads[0] + pads[2]) * (inW + pads[1] + pads[3]) + paddedKernelW + 16;

    /// <summary>ConvInt8, second scratch output (y2): bytes of one group's uint8 patch matrix, its pixels rounded up to 8.</summary>
    public static long Int8PatchBytes(int rowLength, int outH, int outW) => (long)rowLength * (((long)outH * outW + 7) / 8 * 8);

    /// <summary>
    /// DepthwiseInt8's method: undilated, the strips of the output rows (DepthwiseRowsEmitter) with one scratch output;
    /// dilated, a padded plane and a wide output with three.
    /// </summary>
    public static DepthwiseInt8Method DepthwiseInt8MethodFor(int[] dilations) =>
        dilations.Length >= 2 && dilations[0] == 1 && dilations[1] == 1 ? DepthwiseInt8Method.Rows : DepthwiseInt8Method.DilatedPlane;

    /// <summary>How many scratch outputs (after y) a DepthwiseInt8 node of the method has.</summary>
    public static int DepthwiseInt8ScratchOutputs(DepthwiseInt8Method method) => method == DepthwiseInt8Method.Rows ? 1 : 3;

    /// <summary>
    /// DepthwiseInt8 by rows, its scratch output (y1), in floats: the weights as float32 (converted once a call), then,
    /// for a float32 input, one plane quantized (a uint8 input is read in place). Machines with AVX-VNNI may use the
    /// same scratch for <see cref="DepthwiseQuadLayout"/>, which the caller takes the larger of.
    /// </summary>
    public static long DepthwiseInt8RowsFloats(int channels, int taps, int inH, int inW, bool byteInput) =>
        (long)channels * taps + (byteInput ? 0 : (long)inH * inW);
}

/// <summary>How a DepthwiseInt8 kernel computes (see <see cref="ConvScratch.DepthwiseInt8MethodFor"/>).</summary>
public enum DepthwiseInt8Method
{
    /// <summary>Vector strips of the output rows, over the input in place: scratch y1 = weights (and a quantized plane).</summary>
    Rows,
    /// <summary>Dilated: scratch y1 = the raw padded plane, y2 = the wide output, y3 = the quantized plane.</summary>
    DilatedPlane,
}
