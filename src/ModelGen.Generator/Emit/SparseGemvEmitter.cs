using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A fully connected layer on one row (batch 1) whose weights are stored sparse (Compress.SparseWeights, layout
/// <see cref="DenseLayout.Sparse"/>): only the kept values are read, each multiplied by x at its column.
/// Inputs: x, w (the values, float32, int8 or packed codebook codes), idx (the packed index stream, each row from a
/// byte), counts (unstructured: each row's entries, uint8 or uint16), scales (int8: one per output) or codebook
/// (codes: <see cref="SparseCodes"/>), b.
/// <para>
/// Unstructured: per row the relative indices are walked, four entries a step into four independent
/// accumulators (the column additions are a short chain, the products are not). Scalar at every SIMD level: the
/// columns are arbitrary (an AVX2 gather path is not tried yet).
/// N:M: row j holds the same number of entries, at fixed places; with M = 2N (2:4, 4:8) on AVX2 a step decodes
/// 8 positions into a permutation of the 16 columns of x the step covers, so one FMA takes 8 kept values; the
/// columns past the last whole step, and every other case (codebook codes too), take the scalar form (also unrolled by four).
/// </para>
/// </summary>
internal static class SparseGemvEmitter
{
    const string U = "Unsafe";

    /// <summary>The kernel's input names, in order: x, w, idx, counts (unstructured), scales (int8) or codebook (codes), b.</summary>
    public static string InputName(SparseFormat format, int i)
    {
        var names = new List<string> { "x", "w", "idx" };
        if (format.Unstructured) names.Add("counts");
        if (format.Int8) names.Add("scales");
        if (format.Shared) names.Add("codebook");
        names.Add("b");
        return names[i];
    }

    public static void Emit(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var dense = KernelEmitter.Dense(node);
        var format = dense.Sparse!;
        int n = dense.N, k = dense.K, fixedInputs = 3 + (format.Unstructured ? 1 : 0) + (format.Int8 || format.Shared ? 1 : 0);
        bool hasBias = inputs.Length > fixedInputs;
        bool byteCounts = format.Unstructured && inputs[3].Element == TensorElement.UInt8;
        long entries = inputs[1].ElementCount, indexBytes = inputs[2].ElementCount;
        string values = format.Shared ? SparseCodes.Describe(format.CodeBits) + $" ({CodeWriter.N(entries)} bytes)" : format.Int8 ? "int8 values, a float32 scale per output" : "float32 values";
        string indices = format.Unstructured
            ? $"unstructured: each entry's column as its distance from the row's previous one in {format.IndexBits} bits (zeros pad gaps wider than {(1 << format.IndexBits) - 1})"
            : $"{format.Text}: {format.N} entries in each group of {format.M} columns, their positions in {format.IndexBits} bits";
        string stored = format.Shared ? "stored entries" : $"{CodeWriter.N(entries)} stored entries";
        w.Line($"// Fully connected, one row, sparse weights: y[j] = {(format.Int8 ? "scale[j]·" : "")}Σ {(format.Shared ? "codebook[code(e)]" : "w[e]")}·x[column(e)] over the {stored} of row j{(hasBias ? " + b[j]" : "")}, for {n} outputs of {k} inputs{KernelEmitter.ActName(node)}.");
        w.Line($"// Format {format.Text} ({indices}), {values}; indices packed from the low bits up, each row from a byte ({CodeWriter.N(indexBytes)} bytes).");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        w.Line($"if (x.Length < {k} || w.Length < {entries} || idx.Length < {indexBytes}{(format.Unstructured ? $" || counts.Length < {n}" : "")}{(format.Int8 ? $" || scales.Length < {n}" : "")}{(format.Shared ? $" || codebook.Length < {1 << format.CodeBits}" : "")}{(hasBias ? $" || b.Length < {n}" : "")} || y.Length < {n}) throw new ArgumentException(\"buffer too short\");");
        w.Line("ref float rx = ref MemoryMarshal.GetReference(x);");
        w.Line($"ref {(format.Int8 ? "sbyte" : format.Shared ? "byte" : "float")} rw = ref MemoryMarshal.GetReference(w);");
        w.Line("ref byte ri = ref MemoryMarshal.GetReference(idx);");
        if (format.Shared)
        {
            w.Line("ref float rc = ref MemoryMarshal.GetReference(codebook);");
            // Entries one at a time read their code alone: the tails of unstructured rows, N:M rows whose entries are not a multiple of four.
            bool single = format.Unstructured || !SparseCodes.HasStepWord(format.CodeBits) || NOfMPerRow(format, k) % 4 != 0;
            if (single) w.Line(SparseCodes.CodeFunction(format.CodeBits));
        }
        string? scale = format.Int8 ? "scales[j]" : null;
        if (format.Unstructured) Unstructured(w, node, format, n, hasBias, scale, byteCounts);
        else NOfM(w, node, format, n, k, hasBias, scale, simd);
    }

    /// <summary>w[e] as a float operand (int8 values convert exactly; codes look their value up in the codebook).</summary>
    static string Value(SparseFormat format, string e) => format.Shared ? SparseCodes.Value("rc", "rw", e) : format.Int8 ? $"(float){U}.Add(ref rw, {e})" : $"{U}.Add(ref rw, {e})";

    static string X(string column) => $"{U}.Add(ref rx, {column})";

    /// <summary>
    /// The four multiply-adds of a step of entries <paramref name="e"/> to e + 3 into s0…s3, entry t at x[column(t)];
    /// codebook codes for the four come from one read (<see cref="SparseCodes.StepWord"/>).
    /// </summary>
    static void StepTerms(CodeWriter w, SparseFormat format, string e, System.Func<int, string> x)
    {
        bool word = format.Shared && SparseCodes.HasStepWord(format.CodeBits);
        if (word) w.Line(SparseCodes.StepWord(format.CodeBits, "rw", e));
        for (int t = 0; t < 4; t++)
            w.Line($"s{t} += {(word ? SparseCodes.StepValue(format.CodeBits, "rc", t) : Value(format, Expr.Plus(e, t)))} * {x(t)};");
    }

    static void Unstructured(CodeWriter w, ArtifactNode node, SparseFormat format, int n, bool hasBias, string? scale, bool byteCounts)
    {
        if (8 % format.IndexBits != 0)
        {
            StraddlingIndices(w, node, format, n, hasBias, scale, byteCounts);
            return;
        }
        bool nibbles = format.IndexBits == 4;
        w.Line("int e = 0, p = 0; // the row's first entry and first index byte");
        using (w.Block($"for (int j = 0; j < {n}; j++)"))
        {
            w.Line($"int end = e + {(byteCounts ? "counts[j]" : "(ushort)counts[j]")}, column = -1;");
            w.Line("float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;");
            w.Line(nibbles ? "// Four entries a step: two index bytes, the earlier entry in the low nibble." : "// Four entries a step: four index bytes, the earlier entry in the low byte.");
            using (w.Block($"for (; e + 4 <= end; e += 4, p += {(nibbles ? 2 : 4)})"))
            {
                w.Line(nibbles ? $"uint d = {U}.ReadUnaligned<ushort>(ref {U}.Add(ref ri, p));" : $"uint d = {U}.ReadUnaligned<uint>(ref {U}.Add(ref ri, p));");
                int bits = format.IndexBits, mask = (1 << bits) - 1;
                w.Line($"int c0 = column + (int)(d & {mask}), c1 = c0 + (int)((d >> {bits}) & {mask}), c2 = c1 + (int)((d >> {2 * bits}) & {mask});");
                w.Line($"column = c2 + (int)(d >> {3 * bits});");
                StepTerms(w, format, "e", t => X(t == 3 ? "column" : "c" + t));
            }
            if (nibbles)
            {
                w.Line("// The last entries (fewer than four), one nibble each.");
                using (w.Block("for (int t = 0; e < end; e++, t++)"))
                {
                    w.Line($"column += ({U}.Add(ref ri, p + (t >> 1)) >> ((t & 1) * 4)) & 15;");
                    w.Line($"s0 += {Value(format, "e")} * {X("column")};");
                    w.Line("if (e + 1 == end) p += (t + 2) >> 1;");
                }
            }
            else
            {
                using (w.Block("for (; e < end; e++, p++)"))
                {
                    w.Line($"column += {U}.Add(ref ri, p);");
                    w.Line($"s0 += {Value(format, "e")} * {X("column")};");
                }
            }
            w.Line(DenseEpilogue.Store(node, "((s0 + s1) + (s2 + s3))", scale, hasBias, "j"));
        }
    }

    /// <summary>
    /// Unstructured with 5- or 6-bit relative indices: each read as a 16-bit word from its first byte (the stream has a
    /// byte of slack), four entries a step into four accumulators as the 4- and 8-bit forms do.
    /// </summary>
    static void StraddlingIndices(CodeWriter w, ArtifactNode node, SparseFormat format, int n, bool hasBias, string? scale, bool byteCounts)
    {
        int bits = format.IndexBits;
        w.Line($"static int Distance(ref byte idx, int bit) => ({U}.ReadUnaligned<ushort>(ref {U}.Add(ref idx, bit >> 3)) >> (bit & 7)) & {(1 << bits) - 1};");
        w.Line("int e = 0, bit = 0; // the row's first entry and the bit of its first index");
        using (w.Block($"for (int j = 0; j < {n}; j++)"))
        {
            w.Line($"int end = e + {(byteCounts ? "counts[j]" : "(ushort)counts[j]")}, column = -1;");
            w.Line("float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;");
            using (w.Block($"for (; e + 4 <= end; e += 4, bit += {4 * bits})"))
            {
                w.Line($"// The four indices from one 32-bit read ({4 * bits} bits after a shift of at most 7; the stream's slack byte covers it).");
                w.Line($"uint d = {U}.ReadUnaligned<uint>(ref {U}.Add(ref ri, bit >> 3)) >> (bit & 7);");
                int mask = (1 << bits) - 1;
                w.Line($"int c0 = column + (int)(d & {mask}), c1 = c0 + (int)((d >> {bits}) & {mask}), c2 = c1 + (int)((d >> {2 * bits}) & {mask});");
                w.Line($"column = c2 + (int)((d >> {3 * bits}) & {mask});");
                StepTerms(w, format, "e", t => X(t == 3 ? "column" : "c" + t));
            }
            using (w.Block($"for (; e < end; e++, bit += {bits})"))
            {
                w.Line("column += Distance(ref ri, bit);");
                w.Line($"s0 += {Value(format, "e")} * {X("column")};");
            }
            w.Line("bit = (bit + 7) & ~7; // the next row starts on a byte");
            w.Line(DenseEpilogue.Store(node, "((s0 + s1) + (s2 + s3))", scale, hasBias, "j"));
        }
    }

    /// <summary>Entries of an N:M row of <paramref name="k"/> columns (the last group may be short).</summary>
    static int NOfMPerRow(SparseFormat format, int k)
    {
        int groups = (k + format.M - 1) / format.M, tail = k - (groups - 1) * format.M;
        return (groups - 1) * format.N + System.Math.Min(format.N, tail);
    }

    static void NOfM(CodeWriter w, ArtifactNode node, SparseFormat format, int n, int k, bool hasBias, string? scale, SimdLevel simd)
    {
        int perRow = NOfMPerRow(format, k), rowBytes = (perRow * format.IndexBits + 7) / 8;
        // The vector form: 8 entries (a Vector256) cover 16 columns when M = 2N; steps whose 16 columns are all in x.
        bool vector = format.M == 2 * format.N && !format.Shared && k >= 16 && SimdLadder.Widths(simd, 256).Any(x => x.Bits == 256);
        int steps = vector ? k / 16 : 0;
        w.Line($"// Row j: entries j·{perRow} on, index bytes j·{rowBytes} on; entry t of a row is in group t / {format.N}, at column (t / {format.N})·{format.M} + its position.");
        if (vector)
        {
            var v256 = SimdWidth.V256;
            using (w.Block($"if ({v256.AcceleratedX86})"))
            {
                w.Line($"// Lane l of a step: position bits at {format.IndexBits}·l, its group's first column (l / {format.N})·{format.M} in the step's 16.");
                w.Line($"var shifts = Vector256.Create({string.Join(", ", Enumerable.Range(0, 8).Select(l => (l * format.IndexBits) + "u"))});");
                w.Line($"var firsts = Vector256.Create({string.Join(", ", Enumerable.Range(0, 8).Select(l => (l / format.N * format.M).ToString(System.Globalization.CultureInfo.InvariantCulture)))});");
                using (w.Block($"for (int j = 0; j < {n}; j++)"))
                {
                    w.Line($"int e = j * {perRow}, p = j * {rowBytes};");
                    w.Line("var acc = Vector256<float>.Zero;");
                    using (w.Block($"for (int s = 0; s < {steps}; s++)"))
                    {
                        string word = format.IndexBits == 2 ? $"{U}.ReadUnaligned<ushort>(ref {U}.Add(ref ri, p + s * 2))" : $"{U}.ReadUnaligned<uint>(ref {U}.Add(ref ri, p + s * 4))";
                        w.Line($"var columns = (Avx2.ShiftRightLogicalVariable(Vector256.Create((uint){word}), shifts).AsInt32() & Vector256.Create({(1 << format.IndexBits) - 1})) + firsts;");
                        w.Line("// x at those columns: each lane from the first 8 columns or the next 8 (bit 3 of its column, moved to the sign bit, picks).");
                        w.Line($"var lo = Vector256.LoadUnsafe(ref rx, (nuint)(s * 16));");
                        w.Line($"var hi = Vector256.LoadUnsafe(ref rx, (nuint)(s * 16 + 8));");
                        w.Line("var xv = Avx.BlendVariable(Avx2.PermuteVar8x32(lo, columns), Avx2.PermuteVar8x32(hi, columns), Avx2.ShiftLeftLogical(columns, 28).AsSingle());");
                        w.Line(format.Int8
                            ? $"var wv = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.CreateScalarUnsafe({U}.ReadUnaligned<long>(ref {U}.As<sbyte, byte>(ref {U}.Add(ref rw, e + s * 8)))).AsSByte()));"
                            : "var wv = Vector256.LoadUnsafe(ref rw, (nuint)(e + s * 8));");
                        w.Line("acc = Vector256.FusedMultiplyAdd(wv, xv, acc);");
                    }
                    w.Line("float s0 = Vector256.Sum(acc);");
                    if (steps * 8 < perRow) ScalarEntries(w, format, steps * 8, perRow, single: true);
                    w.Line(DenseEpilogue.Store(node, "s0", scale, hasBias, "j"));
                }
                w.Line("return;");
            }
        }
        using (w.Block($"for (int j = 0; j < {n}; j++)"))
        {
            w.Line($"int e = j * {perRow}, p = j * {rowBytes};");
            w.Line("float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;");
            ScalarEntries(w, format, 0, perRow, single: false);
            w.Line(DenseEpilogue.Store(node, "((s0 + s1) + (s2 + s3))", scale, hasBias, "j"));
        }
    }

    /// <summary>
    /// Entries <paramref name="from"/> to <paramref name="to"/> of the row at e (entry) and p (index byte), added to
    /// s0 (<paramref name="single"/>) or four at a time into s0…s3, the last ones into s0. Entry t's column comes from
    /// the local function Column (its group's first column plus its position).
    /// </summary>
    static void ScalarEntries(CodeWriter w, SparseFormat format, int from, int to, bool single)
    {
        int bits = format.IndexBits, perByte = 8 / bits;
        w.Line($"// Entry t of the row: group t / {format.N}, position in bits {bits}·t of the row's index bytes.");
        w.Line($"static int Column(ref byte row, int t) => {Shift("t", format.N)} * {format.M} + (({U}.Add(ref row, {Shift("t", perByte)}) >> ((t & {perByte - 1}) * {bits})) & {(1 << bits) - 1});");
        w.Line($"ref byte row = ref {U}.Add(ref ri, p);");
        string Term(string t, string sum) => $"{sum} += {Value(format, $"e + {t}")} * {X($"Column(ref row, {t})")};";
        int unrolled = single ? from : from + (to - from) / 4 * 4;
        if (unrolled > from)
        {
            using (w.Block($"for (int t = {from}; t < {unrolled}; t += 4)"))
                StepTerms(w, format, "e + t", u => X($"Column(ref row, {(u == 0 ? "t" : $"t + {u}")})"));
        }
        if (to > unrolled) w.Line($"for (int t = {unrolled}; t < {to}; t++) {Term("t", "s0")}");
    }

    /// <summary><paramref name="t"/> / <paramref name="divisor"/> (a power of two) as a shift.</summary>
    static string Shift(string t, int divisor) => divisor switch { 1 => t, 2 => $"({t} >> 1)", 4 => $"({t} >> 2)", 8 => $"({t} >> 3)", _ => $"({t} / {divisor})" };
}
