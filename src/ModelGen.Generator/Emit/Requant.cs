using System.Globalization;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// The fixed-point requantization of an int8 layer that writes uint8 for the next (attribute "requant" =
/// shift, scale, lo, hi[, narrow]; "out_zero"): q = clamp(zero + ⌊(sum·M + 2^(shift−1)) / 2^shift⌋, lo, hi) with
/// M = (long)round(multiplier·scale) per channel, as Compress.Requantization computes it. "narrow": the build
/// checked that sum·M + 2^(shift−1) + zero·2^shift fits int32 for every sum the layer can reach, so the vector
/// helpers compute it in 32-bit lanes (RequantizeNarrow8, RequantizeNarrow16).
/// </summary>
internal sealed class Requant
{
    public int Shift { get; private set; }
    public string Scale { get; private set; } = "";
    public int Lo { get; private set; }
    public int Hi { get; private set; }
    public int Zero { get; private set; }
    public bool Narrow { get; private set; }

    /// <summary>The node's requantization, or null when it writes float32.</summary>
    public static Requant? Of(KernelContext k)
    {
        if (k.Node.Int8Layer?.Requant is not { } typed) return null;
        var r = new Requant
        {
            Shift = typed.Shift,
            Scale = KernelContext.F(typed.Scale),
            Lo = typed.Lo,
            Hi = typed.Hi,
            Zero = typed.OutZero,
            Narrow = typed.Narrow,
        };
        if (k.Y.Element != ModelGen.Artifact.TensorElement.UInt8) throw new System.FormatException($"'{k.Node.Name}': a requantizing node writes a uint8 tensor");
        if (r.Narrow) k.Helpers.Add("RequantizeNarrow");
        return r;
    }

    /// <summary>The integer multiplier of a channel from its float32 multiplier expression.</summary>
    public string IntegerMultiplier(string multiplier) => $"(long)MathF.Round({multiplier} * {Scale})";

    /// <summary>The uint8 output of one int32 sum (bias included) and its channel's integer multiplier.</summary>
    public string Scalar(string sum, string multiplier) =>
        $"(byte)Math.Clamp({Expr.Plus($"((long)({sum}) * {multiplier} + {1L << (Shift - 1)}L >> {Shift})", Zero)}, {Lo}, {Hi})";

    /// <summary>
    /// The vector helpers keep the high 32 bits of each product: a shift under 32 (large multipliers) becomes 32 with
    /// the sums shifted left by the difference first, the same quotient (the build checked that the sums so shifted
    /// stay int32: Compress.Requantization.For).
    /// </summary>
    int PreShift => System.Math.Max(0, 32 - Shift);

    string Shifted(string sum) => PreShift == 0 ? sum : $"({sum} << {PreShift})";

    /// <summary>The right shift after the high 32 bits of each product are taken.</summary>
    int Extra => Shift + PreShift - 32;

    /// <summary>
    /// What the vector helpers add to the high halves before the extra shift (pre) and after it (post). With an extra
    /// shift e ≥ 1, ⌊(acc·M + 2^(31+e)) / 2^(32+e)⌋ = ⌊(⌊acc·M / 2^32⌋ + 2^(e−1)) / 2^e⌋ (the rounding half is a whole
    /// number of 2^32), and the zero point joins it as zero·2^e while the sum stays an int32 (|⌊acc·M / 2^32⌋| &lt; 2^30).
    /// With e = 0 the rounding half goes into the 64-bit products and the zero point after.
    /// </summary>
    (int Pre, int Post) Offsets
    {
        get
        {
            if (Extra == 0) return (0, Zero);
            long folded = (1L << (Extra - 1)) + ((long)Zero << Extra);
            return folded < 1L << 30 ? ((int)folded, 0) : (1 << (Extra - 1), Zero);
        }
    }

    /// <summary>8 int32 sums (bias included) requantized with the per-channel int32 multiplier vector <paramref name="m"/> (AVX2).</summary>
    public string Vector(string sum, string m) => Narrow
        ? $"RequantizeNarrow8({sum}, {m}, {Shift}, {V256}.Create({NarrowOffset}), {V256}.Create({Lo}), {V256}.Create({Hi}))"
        : $"Requantize8({Shifted(sum)}, {m}, {Extra}, {V256}.Create({Offsets.Pre}), {V256}.Create({Offsets.Post}), {V256}.Create({Lo}), {V256}.Create({Hi}))";

    /// <summary>
    /// 8 int32 sums requantized for PackBytes16, whose saturating packs clamp to 0…255: a narrow requant leaves out the
    /// clamps those do (the Max for lo = 0, the Min for hi = 255); the wide form is <see cref="Vector"/>.
    /// </summary>
    public string VectorForPack(string sum, string m)
    {
        if (!Narrow) return Vector(sum, m);
        // A sum that is an expression (say a + bias) goes in parentheses: it is multiplied here, not passed to a helper.
        string operand = sum.All(c => char.IsLetterOrDigit(c) || c == '_') ? sum : $"({sum})";
        string q = $"Avx2.ShiftRightArithmetic({operand} * {m} + {V256}.Create({NarrowOffset}), {Shift})";
        if (Lo > 0) q = $"{V256}.Max({q}, {V256}.Create({Lo}))";
        if (Hi < 255) q = $"{V256}.Min({q}, {V256}.Create({Hi}))";
        return q;
    }

    /// <summary>16 int32 sums (bias included) requantized into 16 bytes with the int32 multiplier vector <paramref name="m"/> (AVX-512).</summary>
    public string Vector16(string sum, string m) => Narrow
        ? $"RequantizeNarrow16({sum}, {m}, {Shift}, {V512}.Create({NarrowOffset}), {V512}.Create({Lo}), {V512}.Create({Hi}), {(Hi == 255 ? "true" : "false")})"
        : $"Requantize16({Shifted(sum)}, {m}, {Extra}, {V512}.Create({Offsets.Pre}), {V512}.Create({Offsets.Post}), {V512}.Create({Lo}), {V512}.Create({Hi}), {(Hi == 255 ? "true" : "false")})";

    const string V512 = "Vector512";

    /// <summary>The narrow helpers' addend: the rounding half and the zero point, 2^(shift−1) + zero·2^shift.</summary>
    int NarrowOffset => (int)((1L << (Shift - 1)) + ((long)Zero << Shift));

    /// <summary>RequantizeNarrow8 and RequantizeNarrow16, for the layers whose requant is narrow (vector helpers: SIMD auto).</summary>
    public static void EmitNarrowHelpers(CodeWriter w, SimdLevel simd)
    {
        if (simd != SimdLevel.Auto) return;
        w.Line("// The requantization of a layer whose every sum·m + 2^(shift−1) + zero·2^shift fits int32 (the build checked it");
        w.Line("// against the largest sum each channel can reach): one 32-bit multiply (vpmulld), the same integers as Requantize8.");
        w.Line(Inline);
        using (w.Block($"private static {V256}<int> RequantizeNarrow8({V256}<int> sum, {V256}<int> m, byte shift, {V256}<int> offset, {V256}<int> lo, {V256}<int> hi)"))
        {
            w.Line($"return {V256}.Min({V256}.Max(Avx2.ShiftRightArithmetic(sum * m + offset, shift), lo), hi);");
        }
        w.Line();
        w.Line("// RequantizeNarrow8 for 16 sums, narrowed to their 16 bytes (vpmovusdb when the upper bound is 255: the narrowing is the clamp).");
        w.Line(Inline);
        using (w.Block($"private static {V128}<byte> RequantizeNarrow16({V512}<int> sum, {V512}<int> m, byte shift, {V512}<int> offset, {V512}<int> lo, {V512}<int> hi, bool saturate)"))
        {
            w.Line($"var q = {V512}.Max(Avx512F.ShiftRightArithmetic(sum * m + offset, shift), lo);");
            w.Line($"return saturate ? Avx512F.ConvertToVector128ByteWithSaturation({V512}.AsUInt32(q)) : Avx512F.ConvertToVector128Byte({V512}.Min(q, hi));");
        }
    }

    const string V256 = "Vector256", V128 = "Vector128";
    const string U = "Unsafe";
    const string Inline = "[MethodImpl(MethodImplOptions.AggressiveInlining)]";

    /// <summary>
    /// The helpers: Requantize8, Requantize16, PackBytes8 and PackBytes16 (AVX2 and AVX-512, so emitted with SIMD
    /// auto), Interleave4U8 and WidenU8 (the uint8 inputs of the convolutions, every level).
    /// </summary>
    public static void EmitHelpers(CodeWriter w, SimdLevel simd)
    {
        if (simd == SimdLevel.Auto)
        {
            w.Line("// Fixed-point requantization of 8 int32 sums (bias included) to uint8 values in int32 lanes (shift = 32 + extra):");
            w.Line("// clamp(zero + ((sum·m + 2^(shift−1)) >> shift), lo, hi) as Requantization.Apply computes it. pmuldq multiplies the");
            w.Line("// even lanes into 64 bits, and the odd ones moved down; the high halves of the products are ⌊sum·m / 2^32⌋. With");
            w.Line("// extra ≥ 1 the rounding half and the zero point are added to those (pre, as zero·2^extra, and post), the same integers.");
            w.Line(Inline);
            using (w.Block($"private static {V256}<int> Requantize8({V256}<int> sum, {V256}<int> m, byte extra, {V256}<int> pre, {V256}<int> post, {V256}<int> lo, {V256}<int> hi)"))
            {
                w.Line($"var even = Avx2.Multiply(sum, m);");
                w.Line($"var odd = Avx2.Multiply({V256}.AsInt32(Avx2.ShiftRightLogical({V256}.AsInt64(sum), 32)), m);");
                w.Line($"if (extra == 0) {{ even += {V256}.Create(0x80000000L); odd += {V256}.Create(0x80000000L); }}");
                w.Line($"var high = Avx2.Blend({V256}.AsInt32(Avx2.ShiftRightLogical(even, 32)), {V256}.AsInt32(odd), 0b10101010);");
                w.Line($"var q = (extra == 0 ? high : Avx2.ShiftRightArithmetic(high + pre, extra)) + post;");
                w.Line($"return {V256}.Min({V256}.Max(q, lo), hi);");
            }
            w.Line();
            w.Line("// The low bytes of 8 int32 lanes (each 0…255), in order, as one 64-bit value: one pshufb per 128-bit half.");
            w.Line(Inline);
            using (w.Block($"private static ulong PackBytes8({V256}<int> q)"))
            {
                w.Line($"if (Avx512F.VL.IsSupported) return {V128}.ToScalar({V128}.AsUInt64(Avx512F.VL.ConvertToVector128Byte(q))); // one vpmovdb");
                string pick = string.Join(", ", Enumerable.Range(0, 32).Select(i => i % 16 < 4 ? $"(byte){i % 16 * 4}" : "(byte)0x80"));
                w.Line($"var b = Avx2.Shuffle({V256}.AsByte(q), {V256}.Create({pick}));");
                w.Line($"return {V128}.ToScalar({V128}.AsUInt32({V256}.GetLower(b))) | (ulong){V128}.ToScalar({V128}.AsUInt32({V256}.GetUpper(b))) << 32;");
            }
            w.Line();
        }
        if (simd == SimdLevel.Auto)
        {
            w.Line("// Requantize8 for 16 sums at once (vpmuldq on zmm), narrowed to their 16 bytes by one vpmovdb, or by one vpmovusdb");
            w.Line("// when the upper bound is 255 (saturate: the narrowing is the clamp).");
            w.Line(Inline);
            using (w.Block($"private static {V128}<byte> Requantize16({V512}<int> sum, {V512}<int> m, byte extra, {V512}<int> pre, {V512}<int> post, {V512}<int> lo, {V512}<int> hi, bool saturate)"))
            {
                w.Line($"var even = Avx512F.Multiply(sum, m);");
                w.Line($"var odd = Avx512F.Multiply({V512}.AsInt32(Avx512F.ShiftRightLogical({V512}.AsInt64(sum), 32)), m);");
                w.Line($"if (extra == 0) {{ even += {V512}.Create(0x80000000L); odd += {V512}.Create(0x80000000L); }}");
                w.Line($"var high = {V512}.ConditionalSelect({V512}.AsInt32({V512}.Create(0xFFFFFFFF00000000UL)), {V512}.AsInt32(odd), {V512}.AsInt32(Avx512F.ShiftRightLogical(even, 32)));");
                w.Line($"var q = {V512}.Max((extra == 0 ? high : Avx512F.ShiftRightArithmetic(high + pre, extra)) + post, lo);");
                w.Line($"return saturate ? Avx512F.ConvertToVector128ByteWithSaturation({V512}.AsUInt32(q)) : Avx512F.ConvertToVector128Byte({V512}.Min(q, hi));");
            }
            w.Line();
            w.Line("// 16 int32 lanes clamped to 0…255 as bytes, in order: two saturating packs within 128-bit lanes (int32 to int16, then to");
            w.Line("// uint8: the clamp) and one vpermd to put the 4-byte groups in order, all in 256-bit vectors.");
            w.Line(Inline);
            using (w.Block($"private static {V128}<byte> PackBytes16({V256}<int> q0, {V256}<int> q1)"))
            {
                w.Line($"var words = Avx2.PackSignedSaturate(q0, q1); // q0[0..3] q1[0..3] | q0[4..7] q1[4..7]");
                w.Line($"var bytes = {V256}.AsInt32(Avx2.PackUnsignedSaturate(words, words)); // each lane's 8 bytes, twice");
                w.Line($"return {V128}.AsByte({V256}.GetLower(Avx2.PermuteVar8x32(bytes, {V256}.Create(0, 4, 1, 5, 0, 4, 1, 5))));");
            }
            w.Line();
        }
        w.Line("// dst[4p + b] = cb[p] for b = 0..3, p < count: four channels' uint8 values interleaved, so each int32 of dst");
        w.Line("// holds one pixel's four channels (a VNNI lane of a 1x1 int8 convolution reading uint8 activations).");
        using (KernelEmitter.OpenHelper(w, "private static void Interleave4U8(ref byte c0, ref byte c1, ref byte c2, ref byte c3, ref byte dst, int count)"))
        {
            w.Line("int p = 0;");
            if (simd != SimdLevel.None)
            {
                using (w.Block($"if ({V128}.IsHardwareAccelerated)"))
                using (w.Block("for (; p <= count - 16; p += 16)"))
                {
                    w.Line($"var (a0, a1) = {V128}.Widen({V128}.LoadUnsafe(ref c0, (nuint)p)); var (b0, b1) = {V128}.Widen({V128}.LoadUnsafe(ref c1, (nuint)p));");
                    w.Line($"var (e0, e1) = {V128}.Widen({V128}.LoadUnsafe(ref c2, (nuint)p)); var (d0, d1) = {V128}.Widen({V128}.LoadUnsafe(ref c3, (nuint)p));");
                    w.Line("// Bytes 0 and 1 of each pixel as 16-bit lanes, then bytes 2 and 3, then the two halves into 32 bits.");
                    w.Line($"var (l0, l1) = {V128}.Widen(a0 | (b0 << 8)); var (l2, l3) = {V128}.Widen(a1 | (b1 << 8));");
                    w.Line($"var (h0, h1) = {V128}.Widen(e0 | (d0 << 8)); var (h2, h3) = {V128}.Widen(e1 | (d1 << 8));");
                    w.Line($"ref uint out32 = ref {U}.As<byte, uint>(ref {U}.Add(ref dst, 4 * p));");
                    w.Line($"{V128}.StoreUnsafe(l0 | (h0 << 16), ref out32); {V128}.StoreUnsafe(l1 | (h1 << 16), ref out32, 4); {V128}.StoreUnsafe(l2 | (h2 << 16), ref out32, 8); {V128}.StoreUnsafe(l3 | (h3 << 16), ref out32, 12);");
                }
            }
            w.Line($"for (; p < count; p++) {U}.WriteUnaligned(ref {U}.Add(ref dst, 4 * p), {U}.Add(ref c0, p) | {U}.Add(ref c1, p) << 8 | {U}.Add(ref c2, p) << 16 | {U}.Add(ref c3, p) << 24);");
        }
        w.Line();
        w.Line("// dst[i] = src[i] for i < count: uint8 values as float32 (the depthwise int8 kernel's quantized plane).");
        using var helper = KernelEmitter.OpenHelper(w, "private static void WidenU8(ref byte src, ref float dst, int count)");
        w.Line("int i = 0;");
        if (simd != SimdLevel.None)
        {
            w.Line($"if ({V128}.IsHardwareAccelerated) for (; i <= count - 4; i += 4) {V128}.StoreUnsafe({V128}.ConvertToSingle({V128}.WidenLower({V128}.WidenLower({V128}.AsByte({V128}.CreateScalar({U}.ReadUnaligned<uint>(ref {U}.Add(ref src, i))))))), ref dst, (nuint)i);");
        }
        w.Line($"for (; i < count; i++) {U}.Add(ref dst, i) = {U}.Add(ref src, i);");
    }

    public string Describe() =>
        $"y[j] = clamp({Zero} + ⌊(acc[j]·M[j] + 2^{Shift - 1}) / 2^{Shift}⌋, {Lo}, {Hi}) in uint8 for the next int8 layer, M[j] = round(multiplier[j]·{Scale}) (fixed point{(Narrow ? ", in 32-bit lanes: every sum·M fits int32" : "")}; the activation is the clamp)";
}

/// <summary>
/// The end of an int8 layer's output, the requantizing counterpart of <see cref="DenseEpilogue"/>: the int32 sum
/// (bias included) times its channel's multiplier through the fused activation into float32, or, when the layer
/// writes uint8 for the next, requantized in fixed point (<see cref="Requant.Scalar"/>).
/// </summary>
internal static class Int8Epilogue
{
    /// <summary>
    /// The statement storing one output into <paramref name="target"/>; <paramref name="integerMultiplier"/> is the
    /// channel's fixed-point multiplier when the kernel computed it beforehand (else it is computed here).
    /// </summary>
    public static string Store(KernelContext k, Requant? requant, string target, string sum, string multiplier, string? integerMultiplier = null) =>
        requant is null
            ? $"{{ float v = ({sum}) * {multiplier}; {target} = {k.Act()}; }}"
            : $"{target} = {requant.Scalar(sum, integerMultiplier ?? requant.IntegerMultiplier(multiplier))};";
}
