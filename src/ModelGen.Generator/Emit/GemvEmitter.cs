using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A fully connected layer on one row (batch 1): y[j] = Σk x[k]·W[j, k] + b[j] with W [N, K]. Each output
/// is a dot product over a contiguous row of W; R rows at a time share every load of x, each with its
/// own vector accumulator, summed across lanes once at the end. Reading W once is the whole cost, so
/// the rows stream in order.
/// </summary>
internal static class GemvEmitter
{
    const string U = "global::System.Runtime.CompilerServices.Unsafe";

    public static void Emit(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, string simd)
    {
        var x = inputs[0]; var wt = inputs[1];
        int n = wt.Shape[0], k = wt.Shape[1];
        bool hasBias = inputs.Length > 2;
        w.Line($"// Fully connected, one row: y[j] = Σk x[k]·W[j, k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs, W {CodeWriter.Shape(wt.Shape)} row-major{KernelEmitter.ActName(node)}.");
        KernelEmitter.OpenKernel(w, name, sig);
        w.Line($"if (x.Length < {k} || w.Length < {wt.ElementCount} || y.Length < {n}{(hasBias ? $" || b.Length < {n}" : "")}) throw new global::System.ArgumentException(\"buffer too short\");");
        w.Line("ref float rx = ref global::System.Runtime.InteropServices.MemoryMarshal.GetReference(x);");
        w.Line("ref float rw = ref global::System.Runtime.InteropServices.MemoryMarshal.GetReference(w);");
        var levels = new List<(string V, int Width, bool Fused)>();
        if (simd == "auto") { levels.Add(("global::System.Runtime.Intrinsics.Vector512", 16, true)); levels.Add(("global::System.Runtime.Intrinsics.Vector256", 8, true)); }
        if (simd is "auto" or "vector128") levels.Add(("global::System.Runtime.Intrinsics.Vector128", 4, false));
        levels = levels.Where(l => k >= l.Width).ToList();
        for (int l = 0; l < levels.Count; l++)
        {
            var (v, width, fused) = levels[l];
            w.Open($"{(l == 0 ? "if" : "else if")} ({v}.IsHardwareAccelerated)");
            int rows = width == 16 ? 8 : 4;
            int full = n - n % rows;
            if (full > 0)
            {
                w.Open($"for (int j = 0; j < {full}; j += {rows})");
                Block(w, node, v, width, fused, rows, "j", k, hasBias);
                w.Close();
            }
            if (n % rows != 0)
            {
                w.Open($"for (int j = {full}; j < {n}; j++)");
                Block(w, node, v, width, fused, 1, "j", k, hasBias);
                w.Close();
            }
            w.Close();
        }
        if (levels.Count > 0) w.Open("else");
        w.Open($"for (int j = 0; j < {n}; j++)");
        w.Line("float sum = 0f;");
        w.Line($"for (int i = 0; i < {k}; i++) sum += {U}.Add(ref rx, i) * {U}.Add(ref rw, j * {k} + i);");
        w.Line($"float v = sum{(hasBias ? " + b[j]" : "")};");
        w.Line($"y[j] = {KernelEmitter.Act(node)};");
        w.Close();
        if (levels.Count > 0) w.Close();
        w.Close();
    }

    /// <summary><paramref name="rows"/> outputs from row <paramref name="j"/>: vector accumulators over K, a scalar tail, one sum each.</summary>
    static void Block(CodeWriter w, ArtifactNode node, string v, int width, bool fused, int rows, string j, int k, bool hasBias)
    {
        var rs = Enumerable.Range(0, rows).ToArray();
        w.Line(string.Join(" ", rs.Select(r => $"{v}<float> a{r} = {v}<float>.Zero;")));
        w.Line($"int row = {j} * {k};");
        int vectorEnd = k - k % width;
        w.Open($"for (int i = 0; i < {vectorEnd}; i += {width})");
        w.Line($"{v}<float> xv = {v}.LoadUnsafe(ref rx, (nuint)i);");
        foreach (int r in rs)
        {
            string load = $"{v}.LoadUnsafe(ref rw, (nuint)(row + {r * k} + i))";
            w.Line(fused ? $"a{r} = {v}.FusedMultiplyAdd({load}, xv, a{r});" : $"a{r} += {load} * xv;");
        }
        w.Close();
        foreach (int r in rs)
        {
            w.Line($"float s{r} = {v}.Sum(a{r});");
            if (vectorEnd < k)
                w.Line($"for (int i = {vectorEnd}; i < {k}; i++) s{r} += {U}.Add(ref rx, i) * {U}.Add(ref rw, row + {r * k} + i);");
            w.Line($"{{ float v = s{r}{(hasBias ? $" + b[{j} + {r}]" : "")}; y[{j} + {r}] = {KernelEmitter.Act(node)}; }}");
        }
    }

    /// <summary>
    /// Weight-only int8, one row: y[j] = scale[j]·Σk q[j, k]·x[k] + b[j]. Each step loads 16 (or 8) int8
    /// weights, sign-extends them to int32 and converts them to float32 in registers (vpmovsxbd,
    /// vcvtdq2ps), then a fused multiply-add with x: a quarter of the bytes of float32 weights to read.
    /// Without Vector512 or Vector256 (x86), the weights are converted one by one.
    /// </summary>
    public static void EmitInt8(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, string simd)
    {
        var x = inputs[0]; var wt = inputs[1];
        int n = wt.Shape[0], k = wt.Shape[1];
        bool hasBias = inputs.Length > 3;
        w.Line($"// Fully connected, one row, int8 weights: y[j] = scale[j]·Σk q[j, k]·x[k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs, q {CodeWriter.Shape(wt.Shape)} int8 row-major{KernelEmitter.ActName(node)}.");
        KernelEmitter.OpenKernel(w, name, sig);
        string bias = hasBias ? " || b.Length < " + n : "";
        w.Line($"if (x.Length < {k} || w.Length < {wt.ElementCount} || scales.Length < {n}{bias} || y.Length < {n}) throw new global::System.ArgumentException(\"buffer too short\");");
        w.Line("ref float rx = ref global::System.Runtime.InteropServices.MemoryMarshal.GetReference(x);");
        w.Line("ref sbyte rw = ref global::System.Runtime.InteropServices.MemoryMarshal.GetReference(w);");
        const string V512 = "global::System.Runtime.Intrinsics.Vector512", V256 = "global::System.Runtime.Intrinsics.Vector256", V128 = "global::System.Runtime.Intrinsics.Vector128", V64 = "global::System.Runtime.Intrinsics.Vector64";
        var levels = new List<(string V, int Width, string Convert)>();
        if (simd == "auto")
        {
            levels.Add((V512, 16, $"{V512}.ConvertToSingle(global::System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector512Int32({V128}.LoadUnsafe(ref rw, (nuint)(at))))"));
            levels.Add((V256, 8, $"{V256}.ConvertToSingle(global::System.Runtime.Intrinsics.X86.Avx2.ConvertToVector256Int32({V128}.Create({V64}.LoadUnsafe(ref rw, (nuint)(at)), {V64}<sbyte>.Zero)))"));
        }
        levels = levels.Where(l => k >= l.Width).ToList();
        for (int l = 0; l < levels.Count; l++)
        {
            var (v, width, convert) = levels[l];
            // The x86 conversions are there whenever these vector sizes are accelerated on x86; elsewhere the scalar loop runs.
            string isa = width == 16 ? "global::System.Runtime.Intrinsics.X86.Avx512F.IsSupported" : "global::System.Runtime.Intrinsics.X86.Avx2.IsSupported";
            w.Open($"{(l == 0 ? "if" : "else if")} ({v}.IsHardwareAccelerated && {isa})");
            int rows = 4, full = n - n % rows, vectorEnd = k - k % width;
            foreach (var (from, to, count) in new[] { (0, full, rows), (full, n, 1) })
            {
                if (to <= from) continue;
                w.Open($"for (int j = {from}; j < {to}; j += {count})");
                var rs = Enumerable.Range(0, count).ToArray();
                w.Line(string.Join(" ", rs.Select(r => $"{v}<float> a{r} = {v}<float>.Zero;")));
                w.Line($"int row = j * {k};");
                w.Open($"for (int i = 0; i < {vectorEnd}; i += {width})");
                w.Line($"{v}<float> xv = {v}.LoadUnsafe(ref rx, (nuint)i);");
                foreach (int r in rs)
                    w.Line($"a{r} = {v}.FusedMultiplyAdd({convert.Replace("(at)", $"(row + {r * k} + i)")}, xv, a{r});");
                w.Close();
                foreach (int r in rs)
                {
                    w.Line($"float s{r} = {v}.Sum(a{r});");
                    if (vectorEnd < k) w.Line($"for (int i = {vectorEnd}; i < {k}; i++) s{r} += {U}.Add(ref rx, i) * {U}.Add(ref rw, row + {r * k} + i);");
                    w.Line($"{{ float v = scales[j + {r}] * s{r}{(hasBias ? $" + b[j + {r}]" : "")}; y[j + {r}] = {KernelEmitter.Act(node)}; }}");
                }
                w.Close();
            }
            w.Close();
        }
        if (levels.Count > 0) w.Open("else");
        w.Open($"for (int j = 0; j < {n}; j++)");
        w.Line("float sum = 0f;");
        w.Line($"for (int i = 0; i < {k}; i++) sum += {U}.Add(ref rx, i) * {U}.Add(ref rw, j * {k} + i);");
        w.Line($"float v = scales[j] * sum{(hasBias ? " + b[j]" : "")};");
        w.Line($"y[j] = {KernelEmitter.Act(node)};");
        w.Close();
        if (levels.Count > 0) w.Close();
        w.Close();
    }

    /// <summary>
    /// Weight-only int4, one row: y[j] = scale[j]·Σk (nibble[j, k] − 8)·x[k] + b[j]. Rows hold blocks of 32
    /// weights in 16 bytes (element i in the low nibble of byte i, element i + 16 in the high nibble): per
    /// block one load, a mask and a shift give two runs of 16 int4 values, sign-extended and converted to
    /// float32 in registers. Elements past the last whole block, and machines without AVX-512, one by one.
    /// </summary>
    public static void EmitInt4(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, string simd)
    {
        var wt = inputs[1];
        int n = wt.Shape[0], rowBytes = wt.Shape[1], k = int.Parse(node.Attributes["k"], System.Globalization.CultureInfo.InvariantCulture);
        bool hasBias = inputs.Length > 3;
        int blocks = k / 32;
        const string V512 = "global::System.Runtime.Intrinsics.Vector512", V128 = "global::System.Runtime.Intrinsics.Vector128";
        w.Line($"// Fully connected, one row, int4 weights: y[j] = scale[j]·Σk (q[j, k] − 8)·x[k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs; q packed two per byte, {rowBytes} bytes a row{KernelEmitter.ActName(node)}.");
        KernelEmitter.OpenKernel(w, name, sig);
        w.Line($"if (x.Length < {k} || w.Length < {wt.ElementCount} || scales.Length < {n}{(hasBias ? $" || b.Length < {n}" : "")} || y.Length < {n}) throw new global::System.ArgumentException(\"buffer too short\");");
        w.Line("ref float rx = ref global::System.Runtime.InteropServices.MemoryMarshal.GetReference(x);");
        w.Line("ref byte rw = ref global::System.Runtime.InteropServices.MemoryMarshal.GetReference(w);");
        string Scalar(string row, string acc) =>
            $"{{ byte packed = {U}.Add(ref rw, {row} * {rowBytes} + (i >> 5) * 16 + (i & 15)); {acc} += (((i & 16) == 0 ? packed & 15 : packed >> 4) - 8) * {U}.Add(ref rx, i); }}";
        bool vector = simd == "auto" && blocks > 0;
        if (vector)
        {
            w.Open($"if ({V512}.IsHardwareAccelerated && global::System.Runtime.Intrinsics.X86.Avx512F.IsSupported)");
            w.Line($"var low = {V128}.Create((byte)0x0F);");
            w.Line($"var eight = {V128}.Create((sbyte)8);");
            w.Open($"for (int j = 0; j < {n}; j++)");
            w.Line($"{V512}<float> acc = {V512}<float>.Zero;");
            w.Line($"ref byte row = ref {U}.Add(ref rw, j * {rowBytes});");
            w.Open($"for (int block = 0; block < {blocks}; block++)");
            w.Line($"var packed = {V128}.LoadUnsafe(ref row, (nuint)(block * 16));");
            w.Line($"var first = {V128}.AsSByte(packed & low) - eight;");
            w.Line($"var second = {V128}.AsSByte({V128}.ShiftRightLogical(packed, 4)) - eight;");
            w.Line($"acc = {V512}.FusedMultiplyAdd({V512}.ConvertToSingle(global::System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector512Int32(first)), {V512}.LoadUnsafe(ref rx, (nuint)(block * 32)), acc);");
            w.Line($"acc = {V512}.FusedMultiplyAdd({V512}.ConvertToSingle(global::System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector512Int32(second)), {V512}.LoadUnsafe(ref rx, (nuint)(block * 32 + 16)), acc);");
            w.Close();
            w.Line($"float sum = {V512}.Sum(acc);");
            if (blocks * 32 < k) w.Line($"for (int i = {blocks * 32}; i < {k}; i++) {Scalar("j", "sum")}");
            w.Line($"float v = scales[j] * sum{(hasBias ? " + b[j]" : "")};");
            w.Line($"y[j] = {KernelEmitter.Act(node)};");
            w.Close();
            w.Close();
            w.Open("else");
        }
        w.Open($"for (int j = 0; j < {n}; j++)");
        w.Line("float sum = 0f;");
        w.Line($"for (int i = 0; i < {k}; i++) {Scalar("j", "sum")}");
        w.Line($"float v = scales[j] * sum{(hasBias ? " + b[j]" : "")};");
        w.Line($"y[j] = {KernelEmitter.Act(node)};");
        w.Close();
        if (vector) w.Close();
        w.Close();
    }
}
