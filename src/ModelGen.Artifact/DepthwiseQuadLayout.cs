using System;

namespace ModelGen.Artifact;

/// <summary>
/// The scratch layout of the int8 depthwise kernel's VNNI path (DepthwiseInt8Kernel), shared by the compiler,
/// which sizes the scratch, and the generator, which lays it out. Per channel the uint8 plane is copied into a
/// padded plane (the zero point in the padding, pitch P) and expanded into "quads": the int32 at quad i holds
/// the 4 bytes from padded element i (stride 1) or 2i (stride 2) on. One vpdpbusd then adds 4 taps of a kernel
/// row for 8 outputs. An output's wide index is j = oy·P + ox; its kernel row kh, taps 4g…4g+3 are quad
/// j + kh·P + 4g (stride 1) or j + kh·P/2 + 2g (stride 2, P even), over the padded plane's elements
/// s·j + kh·P + 4g + b. Quad bytes past a kernel row's last tap meet a zero weight.
/// </summary>
public sealed class DepthwiseQuadLayout
{
    /// <summary>Outputs per block (one 256-bit vector of int32 sums).</summary>
    public const int Block = 8;

    public int Stride { get; private set; }
    public int KernelH { get; private set; }
    public int KernelW { get; private set; }
    /// <summary>The padded plane's pitch: W + pads, rounded up to even for stride 2.</summary>
    public int Pitch { get; private set; }
    /// <summary>Quads per kernel row: ⌈kW / 4⌉.</summary>
    public int Groups => (KernelW + 3) / 4;
    /// <summary>Bytes of the padded plane, which the quads read (its tail beyond the padded rows holds the zero point too).</summary>
    public int PlaneBytes { get; private set; }
    /// <summary>Quads built per channel, a multiple of 8.</summary>
    public int Quads { get; private set; }
    /// <summary>Output rows of OW ≥ 8 are computed in place (blocks at <see cref="Columns"/>, the last one overlapping); otherwise through the wide buffer.</summary>
    public bool Direct { get; private set; }
    /// <summary>Through the wide buffer: per output row (blocks at <see cref="Columns"/>) or, when fewer, over the flat wide range [0, <see cref="WideLength"/>).</summary>
    public bool PerRow { get; private set; }
    /// <summary>Each row's block starts (Direct or PerRow).</summary>
    public int[] Columns { get; private set; } = [];
    /// <summary>Wide elements the blocks write into the wide buffer (4 bytes each), 0 when Direct.</summary>
    public int WideLength { get; private set; }
    /// <summary>The quad index step between kernel rows and between groups of 4 taps.</summary>
    public int RowStep => Stride == 1 ? Pitch : Pitch / 2;
    public int GroupStep => Stride == 1 ? 4 : 2;

    /// <summary>Bytes of scratch in all: two padded planes, two quad planes (one channel built while the one before is used), the wide buffer.</summary>
    public long ScratchBytes => 2L * PlaneBytes + 8L * Quads + 4L * WideLength;

    /// <summary>The layout, or null when the shape does not suit it (dilation, stride above 2, a plane too large).</summary>
    public static DepthwiseQuadLayout? For(int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, int padTop, int padLeft, int padBottom, int padRight, int dilationH, int dilationW)
    {
        if (dilationH != 1 || dilationW != 1 || sh != sw || sh is not (1 or 2) || kh < 1 || kw < 1 || oh < 1 || ow < 1) return null;
        int s = sh;
        long pitch = (long)w + padLeft + padRight;
        if (s == 2 && pitch % 2 == 1) pitch++;
        long rows = (long)h + padTop + padBottom;
        // Every output's taps must lie in the padded plane (the node's shapes agree with its pads and strides).
        if ((long)s * (oh - 1) + kh > rows || (long)s * (ow - 1) + kw > pitch || rows * pitch > 1 << 24) return null;
        var layout = new DepthwiseQuadLayout { Stride = s, KernelH = kh, KernelW = kw, Pitch = (int)pitch };
        var columns = ow >= Block ? Starts(ow) : [0];
        long lastStart;
        if (ow >= Block)
        {
            layout.Direct = true;
            lastStart = (long)(oh - 1) * pitch + columns[columns.Length - 1];
        }
        else
        {
            long flat = ((oh - 1) * pitch + ow + Block - 1) / Block * Block;
            layout.PerRow = oh < flat / Block;
            layout.WideLength = (int)(layout.PerRow ? (oh - 1) * pitch + Block : flat);
            lastStart = layout.WideLength - Block;
        }
        layout.Columns = columns;
        long lastQuad = lastStart + Block - 1 + (long)(kh - 1) * layout.RowStep + (long)(layout.Groups - 1) * layout.GroupStep;
        layout.Quads = (int)((lastQuad + 1 + Block - 1) / Block * Block);
        // The quad builder reads 16 bytes from element i (stride 1) or 16 from 2i and 2i + 8 (stride 2), i = 0, 8, …
        long read = s == 1 ? layout.Quads - Block + 16 : 2L * (layout.Quads - Block) + 24;
        layout.PlaneBytes = (int)((Math.Max(rows * pitch, read) + 31) / 32 * 32);
        return layout;
    }

    /// <summary>Block starts covering a row of n ≥ 8: every 8 from 0, and a last one ending at n when 8 does not divide it.</summary>
    static int[] Starts(int n)
    {
        int whole = n / Block;
        var starts = new int[whole + (n % Block == 0 ? 0 : 1)];
        for (int i = 0; i < whole; i++) starts[i] = i * Block;
        if (n % Block != 0) starts[whole] = n - Block;
        return starts;
    }
}
