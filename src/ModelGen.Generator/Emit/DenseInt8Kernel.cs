using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A fully connected layer in int8 arithmetic (Compression int8), one row: the input quantized to uint8
/// (round half to even, saturating), an int32 dot product with the int8 weights of each output plus an
/// int32 bias (the float bias in accumulator units, less the zero point's share), then y = (acc + bias)·multiplier. Paths: AVX-VNNI
/// (32 products an instruction), AVX2 (bytes widened to 16 bits, then pairwise multiply-adds into 32 bits:
/// nothing saturates), scalar. Integer sums are exact, so every path, and the evaluator, give the same bits.
/// </summary>
internal sealed class DenseInt8Kernel : IKernel
{
    const string U = "Unsafe";
    const string V256 = "Vector256", V128 = "Vector128";

    public KernelKind Kernel => KernelKind.DenseInt8;

    public string InputName(ArtifactNode node, int i) => new[] { "x", "w", "bias", "multipliers" }[i];

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var wt = k.Inputs[1];
        int n = wt.Shape[0], kk = wt.Shape[1];
        string scale = KernelContext.F(k.Int8Layer.Scale), inverse = KernelContext.F(1f / k.Int8Layer.Scale);
        int zero = k.Int8Layer.Zero;
        bool byteInput = k.Inputs[0].Element == TensorElement.UInt8;
        var requant = Requant.Of(k);
        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)} in int8: {(byteInput ? "x uint8 as the layer before wrote it" : "x quantized to uint8")} (scale {scale}, zero point {zero}), acc[j] = Σk xq[k]·q[j, k] + bias[j], bias[j] = round(b[j] / multiplier[j]) − {zero}·Σk q[j, k]; {n} outputs of {kk} inputs;");
        w.Line(requant is null ? $"// y[j] = acc[j]·multiplier[j]{k.ActName()}." : $"// {requant.Describe()}.");
        using var method = k.OpenMethod();
        w.Line($"if (x.Length < {kk} || w.Length < {wt.ElementCount} || bias.Length < {n} || multipliers.Length < {n} || y.Length < {n}{(byteInput ? "" : $" || y1.Length * 4 < {kk}")}) throw new ArgumentException(\"buffer too short\");");
        if (byteInput) w.Line("ref byte rx = ref MemoryMarshal.GetReference(x);");
        else
        {
            w.Line($"Span<byte> xq = MemoryMarshal.AsBytes(y1).Slice(0, {kk});");
            w.Line($"QuantizeU8(x.Slice(0, {kk}), xq, {inverse}, {zero});");
            k.Helpers.Add("QuantizeU8");
            w.Line("ref byte rx = ref MemoryMarshal.GetReference(xq);");
        }
        w.Line("ref sbyte rw = ref MemoryMarshal.GetReference(w);");
        // Four outputs at a time, two accumulators each: eight independent chains hide the multiply-add latency.
        int full = n - n % 4;
        foreach (var (from, to, rows) in new[] { (0, full, 4), (full, n, 1) })
        {
            if (to <= from) continue;
            var rs = Enumerable.Range(0, rows).ToArray();
            using (w.Block($"for (int j = {from}; j < {to}; j += {rows})"))
            {
                w.Line(string.Join(" ", rs.Select(r => $"ref sbyte row{r} = ref {U}.Add(ref rw, {Expr.Times(Expr.Plus("j", r), kk)});")));
                w.Line(string.Join(" ", rs.Select(r => $"int acc{r} = 0;")) + " int i = 0;");
                if (k.Simd == SimdLevel.Auto && kk >= 32)
                {
                    using (w.Block($"if (AvxVnni.IsSupported)"))
                    {
                        w.Line(string.Join(" ", rs.Select(r => $"var a{r} = {V256}<int>.Zero; var b{r} = a{r};")));
                        using (w.Block($"for (; i <= {kk - 64}; i += 64)"))
                        {
                            w.Line($"var lo = {V256}.LoadUnsafe(ref rx, (nuint)i); var hi = {V256}.LoadUnsafe(ref rx, (nuint)(i + 32));");
                            foreach (int r in rs)
                                w.Line($"a{r} = AvxVnni.MultiplyWideningAndAdd(a{r}, lo, {V256}.LoadUnsafe(ref row{r}, (nuint)i)); b{r} = AvxVnni.MultiplyWideningAndAdd(b{r}, hi, {V256}.LoadUnsafe(ref row{r}, (nuint)(i + 32)));");
                        }
                        using (w.Block($"for (; i <= {kk - 32}; i += 32)"))
                        {
                            w.Line($"var lo = {V256}.LoadUnsafe(ref rx, (nuint)i);");
                            foreach (int r in rs) w.Line($"a{r} = AvxVnni.MultiplyWideningAndAdd(a{r}, lo, {V256}.LoadUnsafe(ref row{r}, (nuint)i));");
                        }
                        // 16 to 31 inputs left (784 = 12·64 + 16 in LeNet-300-100): one 16-byte step, not 16 scalar ones per row.
                        int after = kk / 64 * 64 + (kk % 64 >= 32 ? 32 : 0);
                        bool tail = kk - after >= 16;
                        if (tail)
                        {
                            w.Line($"var xt = {V128}.LoadUnsafe(ref rx, (nuint)i);");
                            foreach (int r in rs)
                                w.Line($"var t{r} = AvxVnni.MultiplyWideningAndAdd({V128}<int>.Zero, xt, {V128}.LoadUnsafe(ref row{r}, (nuint)i));");
                            w.Line("i += 16;");
                        }
                        if (rows == 4)
                        {
                            // The four rows' sums at once: three horizontal adds and one add of the halves, not four reductions.
                            w.Line($"var s01 = Avx2.HorizontalAdd(a0 + b0, a1 + b1); var s23 = Avx2.HorizontalAdd(a2 + b2, a3 + b3);");
                            w.Line($"var sums = Avx2.HorizontalAdd(s01, s23);");
                            w.Line($"var four = {V256}.GetLower(sums) + {V256}.GetUpper(sums){(tail ? $" + Ssse3.HorizontalAdd(Ssse3.HorizontalAdd(t0, t1), Ssse3.HorizontalAdd(t2, t3))" : "")};");
                            w.Line(string.Join(" ", rs.Select(r => $"acc{r} = {V128}.GetElement(four, {r});")));
                        }
                        else
                            w.Line(string.Join(" ", rs.Select(r => $"acc{r} = {V256}.Sum(a{r} + b{r}){(tail ? $" + {V128}.Sum(t{r})" : "")};")));
                    }
                    using (w.Block($"else if (Avx2.IsSupported)"))
                    {
                        w.Line(string.Join(" ", rs.Select(r => $"var a{r} = {V256}<int>.Zero;")));
                        using (w.Block($"for (; i <= {kk - 16}; i += 16)"))
                        {
                            w.Line($"var xv = Avx2.ConvertToVector256Int16({V128}.LoadUnsafe(ref rx, (nuint)i));");
                            foreach (int r in rs) w.Line($"a{r} += Avx2.MultiplyAddAdjacent(xv, Avx2.ConvertToVector256Int16({V128}.LoadUnsafe(ref row{r}, (nuint)i)));");
                        }
                        w.Line(string.Join(" ", rs.Select(r => $"acc{r} = {V256}.Sum(a{r});")));
                    }
                    // ARM64 dot product (udot): unsigned bytes only, so each weight plus 128 (a flip of its top bit) times x,
                    // and 128·Σx taken back once for every row: Σ x·(q + 128) − 128·Σ x = Σ x·q, the same integers.
                    using (w.Block($"else if (Dp.IsSupported)"))
                    {
                        w.Line(string.Join(" ", rs.Select(r => $"var a{r} = {V128}<uint>.Zero;")) + $" var xs = {V128}<uint>.Zero;");
                        using (w.Block($"for (; i <= {kk - 16}; i += 16)"))
                        {
                            w.Line($"var xv = {V128}.LoadUnsafe(ref rx, (nuint)i);");
                            w.Line($"xs = Dp.DotProduct(xs, xv, {V128}.Create((byte)1));");
                            foreach (int r in rs)
                                w.Line($"a{r} = Dp.DotProduct(a{r}, xv, {V128}.AsByte({V128}.LoadUnsafe(ref row{r}, (nuint)i)) ^ {V128}.Create((byte)0x80));");
                        }
                        w.Line($"int taken = 128 * (int){V128}.Sum(xs);");
                        w.Line(string.Join(" ", rs.Select(r => $"acc{r} = (int){V128}.Sum(a{r}) - taken;")));
                    }
                }
                using (w.Block($"for (; i < {kk}; i++)"))
                {
                    w.Line($"int xi = {U}.Add(ref rx, i);");
                    w.Line(string.Join(" ", rs.Select(r => $"acc{r} += xi * {U}.Add(ref row{r}, i);")));
                }
                foreach (int r in rs)
                    w.Line(Int8Epilogue.Store(k, requant, $"y[{Expr.Plus("j", r)}]", $"acc{r} + {ConvInt8Kernel.Bias(k, $"bias[{Expr.Plus("j", r)}]")}", ConvInt8Kernel.Multiplier(k, $"multipliers[{Expr.Plus("j", r)}]")));
            }
        }
    }
}
