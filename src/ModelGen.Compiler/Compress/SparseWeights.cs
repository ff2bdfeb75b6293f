namespace ModelGen.Compiler.Compress;

/// <summary>Where a sparse layer's kept weights may sit: anywhere (unstructured), or at most N in each group of M consecutive columns.</summary>
public enum SparsePattern { Unstructured, NOfM }

/// <summary>
/// A layer's weights with most values zero, stored by rows: a fully connected layer's output neurons, or a
/// convolution's output channels, whose columns are the flattened input channels × kernel positions in ONNX order
/// (the weight tensor read as [rows, columns]). The one description every sparse kernel, the byte count and the
/// evaluator share; the emitters choose how they lay it out in memory, but count the bytes as <see cref="Bytes"/> says.
/// <para>
/// Entries are (column, value) pairs, each row's in ascending column order, rows one after another
/// (<see cref="RowStarts"/>, Rows + 1 offsets).
/// Unstructured: a column is stored as its distance from the previous entry of the row (the first from −1, so
/// 1 or more) in <see cref="IndexBits"/> bits (4, 5, 6 or 8; 5 and 6 straddle bytes, read as 16-bit words); a gap wider than the bits hold is bridged by padding
/// entries of value 0, as Deep Compression stores its relative indices.
/// N:M: each group of M columns holds exactly N entries (padded with zeros where the group kept fewer; a last
/// group shorter than N columns holds them all), each column stored as its position in the group in
/// <see cref="IndexBits"/> bits.
/// </para>
/// </summary>
public sealed record SparseWeights(SparsePattern Pattern, int Rows, int Columns, int N, int M, int IndexBits, int[] RowStarts, int[] EntryColumns, float[] Values)
{
    /// <summary>Stored entries, padding included.</summary>
    public int Entries => Values.Length;

    /// <summary>Entries whose value is not zero.</summary>
    public int Kept => Values.Count(v => v != 0f);

    /// <summary>
    /// Bytes of the index stream: <see cref="IndexBits"/> per entry, rounded up per row (rows start on a byte), and
    /// for 5- or 6-bit indices a byte of slack after the last row (an index is read as a 16-bit word).
    /// </summary>
    public long IndexBytes
    {
        get
        {
            long bytes = 0;
            for (int r = 0; r < Rows; r++) bytes += ((long)(RowStarts[r + 1] - RowStarts[r]) * IndexBits + 7) / 8;
            return bytes + (8 % IndexBits == 0 ? 0 : 1);
        }
    }

    /// <summary>
    /// Unstructured rows' entry counts fit a byte each: every row holds fewer than 256 entries (else they take 2 bytes
    /// a row). N:M rows all hold the same count and store none.
    /// </summary>
    public bool ByteCounts => Pattern == SparsePattern.Unstructured && Enumerable.Range(0, Rows).All(r => RowStarts[r + 1] - RowStarts[r] <= byte.MaxValue);

    /// <summary>Bytes of the row entry counts: 1 or 2 a row (<see cref="ByteCounts"/>) when unstructured, none for N:M.</summary>
    public long CountBytes => Pattern == SparsePattern.Unstructured ? (ByteCounts ? 1L : 2L) * Rows : 0;

    /// <summary>
    /// Bytes embedded for these weights with values of <paramref name="valueBytes"/> bytes each (4: float32, 1: int8):
    /// values, indices, and for unstructured rows their entry counts (<see cref="CountBytes"/>).
    /// Scales, codebooks and biases are counted by whoever adds them.
    /// </summary>
    public long Bytes(int valueBytes) => (long)Entries * valueBytes + IndexBytes + CountBytes;

    /// <summary>
    /// As <see cref="Bytes(int)"/> with values that are codebook codes of <paramref name="codeBits"/> bits (2 to 8),
    /// packed one after another over every row (<see cref="PackedValueBytes"/>). The codebook is counted by whoever adds it.
    /// </summary>
    public long BytesWithCodes(int codeBits) => PackedValueBytes(Entries, codeBits) + IndexBytes + CountBytes;

    /// <summary>
    /// Bytes of <paramref name="entries"/> values of <paramref name="bits"/> bits packed one after another, and a byte of
    /// slack for widths below 8: the kernels read four codes at once (up to 32 bits from a code's first byte), which may
    /// reach one byte past the last code.
    /// </summary>
    public static long PackedValueBytes(long entries, int bits) => (entries * bits + 7) / 8 + (bits == 8 ? 0 : 1);

    /// <summary>
    /// <see cref="Values"/> (whole numbers 0 to 2^<paramref name="bits"/> − 1: codebook codes) packed <paramref name="bits"/>
    /// each, entry e at bit e·bits of the stream, low bits first, across rows without a break (<see cref="PackedValueBytes"/>).
    /// </summary>
    public byte[] PackedValues(int bits)
    {
        var packed = new byte[PackedValueBytes(Entries, bits)];
        for (long e = 0, bit = 0; e < Entries; e++, bit += bits)
        {
            int code = (int)Values[e];
            if (code < 0 || code >= 1 << bits || code != Values[e]) throw new InvalidOperationException($"entry {e}: {Values[e]} is not a {bits}-bit code");
            packed[bit >> 3] |= (byte)(code << (int)(bit & 7));
            if ((bit & 7) + bits > 8) packed[(bit >> 3) + 1] |= (byte)(code >> (int)(8 - (bit & 7)));
        }
        return packed;
    }

    /// <summary>
    /// Entry <paramref name="e"/>'s stored index: unstructured, its distance from the row's previous entry (the
    /// first from −1); N:M, its position in its group of M columns.
    /// </summary>
    public int IndexCode(int row, int e) => Pattern == SparsePattern.NOfM ? EntryColumns[e] % M
        : EntryColumns[e] - (e == RowStarts[row] ? -1 : EntryColumns[e - 1]);

    /// <summary>
    /// The index stream as the kernels read it (<see cref="IndexBytes"/> bytes): each row's codes from its first
    /// byte, <see cref="IndexBits"/> each, the earlier entry in the lower bits of a byte.
    /// </summary>
    public byte[] PackedIndices()
    {
        var packed = new byte[IndexBytes];
        long bit = 0;
        for (int r = 0; r < Rows; r++)
        {
            for (int e = RowStarts[r]; e < RowStarts[r + 1]; e++, bit += IndexBits)
            {
                int code = IndexCode(r, e);
                packed[bit >> 3] |= (byte)(code << (int)(bit & 7));
                if ((bit & 7) + IndexBits > 8) packed[(bit >> 3) + 1] |= (byte)(code >> (int)(8 - (bit & 7)));
            }
            bit = (bit + 7) & ~7L; // the next row starts on a byte
        }
        return packed;
    }

    /// <summary>The weights as a dense row-major [rows, columns] array (padding entries add nothing).</summary>
    public float[] ToDense()
    {
        var dense = new float[(long)Rows * Columns];
        for (int r = 0; r < Rows; r++)
            for (int e = RowStarts[r]; e < RowStarts[r + 1]; e++) dense[(long)r * Columns + EntryColumns[e]] += Values[e];
        return dense;
    }

    /// <summary>
    /// Unstructured storage of the nonzero values of <paramref name="weights"/> ([rows, columns] row-major), with
    /// relative indices of <paramref name="indexBits"/> bits (4, 5, 6 or 8) and padding entries where a gap is wider.
    /// </summary>
    public static SparseWeights Unstructured(float[] weights, int rows, int columns, int indexBits)
    {
        if (indexBits is not (4 or 5 or 6 or 8)) throw new ArgumentOutOfRangeException(nameof(indexBits), "relative indices are 4, 5, 6 or 8 bits");
        CheckShape(weights, rows, columns);
        int widest = (1 << indexBits) - 1;
        var starts = new int[rows + 1];
        var entryColumns = new List<int>();
        var values = new List<float>();
        for (int r = 0; r < rows; r++)
        {
            int previous = -1;
            for (int c = 0; c < columns; c++)
            {
                float v = weights[(long)r * columns + c];
                if (v == 0f) continue;
                while (c - previous > widest) { previous += widest; entryColumns.Add(previous); values.Add(0f); }
                entryColumns.Add(c);
                values.Add(v);
                previous = c;
            }
            starts[r + 1] = values.Count;
        }
        return new SparseWeights(SparsePattern.Unstructured, rows, columns, 0, 0, indexBits, starts, [.. entryColumns], [.. values]);
    }

    /// <summary>
    /// N:M storage of <paramref name="weights"/> ([rows, columns] row-major), or null when some group of
    /// <paramref name="m"/> columns holds more than <paramref name="n"/> nonzero values. Indices take 2 bits for M = 4,
    /// 4 bits for M = 8 or 16 (a nibble: kernels unpack it with one shift).
    /// </summary>
    public static SparseWeights? NOfM(float[] weights, int rows, int columns, int n, int m)
    {
        if (m is not (4 or 8 or 16) || n < 1 || n >= m) throw new ArgumentOutOfRangeException(nameof(m), "N:M needs M of 4, 8 or 16 and 1 ≤ N < M");
        CheckShape(weights, rows, columns);
        int groups = (columns + m - 1) / m;
        var starts = new int[rows + 1];
        int tail = columns - (groups - 1) * m, perRow = (groups - 1) * n + Math.Min(n, tail);
        var entryColumns = new int[(long)rows * perRow];
        var values = new float[entryColumns.Length];
        int at = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                int first = g * m, end = Math.Min(columns, first + m), slots = Math.Min(n, end - first), used = 0;
                for (int c = first; c < end; c++)
                {
                    float v = weights[(long)r * columns + c];
                    if (v == 0f) continue;
                    if (used == slots) return null;
                    entryColumns[at + used] = c;
                    values[at + used++] = v;
                }
                // Padding: zeros at the group's first columns not already stored, so columns stay distinct and ascending.
                for (int c = first; used < slots; c++)
                    if (Array.IndexOf(entryColumns, c, at, used) < 0) { entryColumns[at + used] = c; values[at + used++] = 0f; }
                Array.Sort(entryColumns, values, at, slots);
                at += slots;
            }
            starts[r + 1] = at;
        }
        return new SparseWeights(SparsePattern.NOfM, rows, columns, n, m, m == 4 ? 2 : 4, starts, entryColumns, values);
    }

    static void CheckShape(float[] weights, int rows, int columns)
    {
        if (rows < 1 || columns < 1 || weights.LongLength != (long)rows * columns)
            throw new ArgumentException($"weights of {weights.LongLength} values are not [{rows}, {columns}]", nameof(weights));
    }
}
