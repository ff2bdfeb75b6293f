using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Elementary functions on float32 vectors, emitted once per class as overloads for each width the SIMD level allows,
/// written with the portable Vector128/256/512 operations of .NET 8 (Vector256.Log and Exp arrived in .NET 9). The
/// scalar paths keep MathF; the vector results are within a few ulp of it (float32 models are proven against ONNX
/// Runtime within tolerance, not bit for bit).
/// </summary>
internal static class VectorMath
{
    /// <summary>
    /// <c>VectorLog</c>: ln x as Cephes' logf computes it: x = m·2^e with m in [√½, √2), ln x = ln m + e·ln 2, ln m by a
    /// degree-9 polynomial in f = m − 1 and ln 2 in two parts; subnormals scaled by 2^23 first. 0 gives −∞, a negative
    /// value or NaN gives NaN, +∞ gives +∞, as MathF.Log.
    /// </summary>
    public static void EmitLog(CodeWriter w, SimdLevel simd)
    {
        w.Line("// ln x in float32 vectors, as Cephes' logf: x = m·2^e, m in [√½, √2), ln m by a polynomial in m − 1 (relative error");
        w.Line("// about 1e-7, as MathF.Log's); subnormals scaled by 2^23 first; 0 → −∞, negative or NaN → NaN, +∞ → +∞.");
        foreach (var width in SimdLadder.Widths(simd))
        {
            string v = width.V;
            string F(float f) => $"{v}.Create({Activations.Literal(f)})";
            string I(int i) => $"{v}.Create({i})";
            // Inlined: compiled with the kernel that calls it (a helper left to tiering ran unoptimized long after warm-up).
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using var method = w.Block($"static {v}<float> VectorLog({v}<float> x)");
            w.Line($"var tiny = {v}.LessThan(x, {F(1.17549435e-38f)});");
            w.Line($"var bits = {v}.ConditionalSelect(tiny, x * {F(8388608f)}, x).AsInt32();");
            w.Line($"var e = ({v}.ShiftRightLogical(bits, 23) & {I(0xFF)}) - {I(126)} - (tiny.AsInt32() & {I(23)});");
            w.Line($"var m = ((bits & {I(0x007FFFFF)}) | {I(0x3F000000)}).AsSingle();");
            w.Line("// m in [0.5, 1): below √½ it is doubled (e one less), so f = m − 1 lies in [√½ − 1, √2 − 1).");
            w.Line($"var low = {v}.LessThan(m, {F(0.707106781186547524f)});");
            w.Line("e += low.AsInt32();");
            w.Line($"var f = m - {F(1f)} + (m & low);");
            w.Line("var z = f * f;");
            w.Line($"var p = {F(7.0376836292E-2f)} * f - {F(1.1514610310E-1f)};");
            foreach (float c in new[] { 1.1676998740E-1f, -1.2420140846E-1f, 1.4249322787E-1f, -1.6668057665E-1f, 2.0000714765E-1f, -2.4999993993E-1f, 3.3333331174E-1f })
                w.Line(c >= 0 ? $"p = p * f + {F(c)};" : $"p = p * f - {F(-c)};");
            w.Line($"var fe = {v}.ConvertToSingle(e);");
            w.Line($"var r = f + (p * f * z + fe * {F(-2.12194440e-4f)} - z * {F(0.5f)}) + fe * {F(0.693359375f)};");
            w.Line($"r = {v}.ConditionalSelect({v}.Equals(x, {v}<float>.Zero), {F(float.NegativeInfinity)}, r);");
            w.Line($"r = {v}.ConditionalSelect({v}.LessThan(x, {v}<float>.Zero) | ~{v}.Equals(x, x), {F(float.NaN)}, r);");
            w.Line($"return {v}.ConditionalSelect({v}.Equals(x, {F(float.PositiveInfinity)}), {F(float.PositiveInfinity)}, r);");
        }
    }
}
