using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Emits one kernel method per artifact node, with every shape, stride and pad a literal so the JIT
/// (and NativeAOT) fold the index arithmetic. The comment above each names the ONNX node it computes.
/// With Simd naming one level, KernelSharing then writes the int8 kernels of one structure once.
/// </summary>
internal static class KernelEmitter
{
    /// <summary>Every kernel kind's emitter, one class each (the float32 core ones in FloatKernels.cs).</summary>
    static readonly Dictionary<KernelKind, IKernel> Registered = new IKernel[]
    {
        new ConvKernel(), new MaxPoolKernel(), new DenseKernel(), new MatMulKernel(), new BinaryKernel(), new UnaryKernel(), new CopyKernel(),
        new RemapKernel(), new ReduceKernel(), new SoftmaxKernel(), new ChannelAffineKernel(), new NormalizeKernel(), new LrnKernel(),
        new AveragePoolKernel(), new GemmKernel(), new GatherRowsKernel(), new BatchNormKernel(), new CheckShapeKernel(), new ClipRuntimeKernel(),
        new SliceRuntimeKernel(), new PadRuntimeKernel(), new ConvTransposeKernel(), new ResizeLinearKernel(),
        new RecurrentKernel(KernelKind.LSTM), new RecurrentKernel(KernelKind.GRU), new ResizeRuntimeKernel(), new Pool3DKernel(), new ReduceRuntimeKernel(), new DenseInt8Kernel(), new ConvInt8Kernel(), new DepthwiseInt8Kernel(), new MaxPoolU8Kernel(), new GlobalAveragePoolU8Kernel(), new AddU8Kernel(),
    }.ToDictionary(k => k.Kernel);

    /// <summary>Whether a kernel kind has an emitter (every one should: a test checks).</summary>
    internal static bool Emits(KernelKind kind) => Registered.ContainsKey(kind);

    public static void Emit(CodeWriter w, ModelArtifact m, ArtifactNode node, int index, ISet<string> helpers)
    {
        if (!Registered.TryGetValue(node.Kernel, out var kernel)) throw new FormatException($"unknown kernel '{node.Kernel}'");
        var inputs = node.Inputs.Select(i => m.Tensors[i]).ToArray();
        var outputs = node.Outputs.Select(i => m.Tensors[i]).ToArray();
        string sig = string.Join(", ", inputs.Select((t, i) => $"ReadOnlySpan<{t.CSharpType}> " + kernel.InputName(node, i))
            .Concat(outputs.Select((t, i) => $"Span<{(t.Element == TensorElement.Int64 ? "long" : t.Element == TensorElement.UInt8 ? "byte" : "float")}> " + (i == 0 ? "y" : "y" + i.ToString(CultureInfo.InvariantCulture)))));
        string name = KernelNames.Of(m)[index];
        w.Line($"// Node {CodeWriter.N(index)}: ONNX {CodeWriter.Comment(node.OnnxOp)} '{CodeWriter.Comment(node.Name)}'.");
        kernel.Emit(new KernelContext(w, m, node, name, sig, inputs, outputs, helpers));
        if (node.Unary?.Op == "Erf" || node.Activation?.Steps.Any(step => step.Op == "Erf") == true) helpers.Add("Erf");
        if (m.Simd != SimdLevel.None && (node.Unary?.Op == "Log" || node.Activation?.Steps.Any(step => step.Op == "Log") == true)) helpers.Add("VectorLog");
    }

    /// <summary>Unary: the element-wise function over every element.</summary>
    internal static void Unary(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor y, SimdLevel simd)
    {
        var unary = node.Unary ?? throw new FormatException($"kernel {node.Kernel} of node '{node.Name}' has no function");
        var (op, alpha, beta) = (unary.Op, unary.Alpha, unary.Beta);
        long count = y.ElementCount;
        w.Line($"// {op}: y = {Describe(op, alpha, beta)} over {CodeWriter.N(count)} elements.");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        var widths = SimdLadder.Widths(simd).Where(x => count >= x.Floats).ToList();
        bool vector = widths.Count > 0 && GemmEmitter.VectorSteps([unary], "Vector128", "v") is not null;
        if (vector)
        {
            CheckedRefs(w, [("x", count), ("y", count)], ("rx", "x"), ("ry", "y"));
            w.Line("int i = 0;");
            SimdLadder.Chain(w, widths, x =>
            {
                using (w.Block($"for (; i <= {count - x.Floats}; i += {x.Floats})"))
                {
                    w.Line($"var v = {x.V}.LoadUnsafe(ref rx, (nuint)i);");
                    w.Line($"{x.V}.StoreUnsafe({GemmEmitter.VectorSteps([unary], x.V, "v")}, ref ry, (nuint)i);");
                }
            });
        }
        using (w.Block(vector ? $"for (; i < {CodeWriter.N(count)}; i++)" : $"for (int i = 0; i < {CodeWriter.N(count)}; i++)"))
        {
            w.Line("float v = x[i];");
            w.Line($"y[i] = {Activations.Expression(op, alpha, beta, "v")};");
        }
    }

    /// <summary>Copy: y = x between two caller buffers that cannot alias.</summary>
    internal static void Copy(CodeWriter w, string name, string sig, ArtifactTensor y)
    {
        w.Line($"// y = x: {CodeWriter.N(y.ElementCount)} elements copied between two caller buffers.");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        w.Line("x.CopyTo(y);");
    }

    /// <summary>Writes the shared helpers the kernels asked for, in ordinal order.</summary>
    public static void EmitHelpers(CodeWriter w, ISet<string> helpers, SimdLevel simd)
    {
        foreach (var helper in helpers.OrderBy(h => h, StringComparer.Ordinal))
        {
            w.Line();
            switch (helper)
            {
                case "Dot": EmitDot(w, simd); break;
                case "Gemv": EmitGemv(w, simd); break;
                case "Axpy": EmitAxpy(w, simd); break;
                case "QuantizeU8": ConvInt8Kernel.EmitQuantizeHelper(w, simd); break;
                case "QuantizeInterleave4": ConvInt8Kernel.EmitInterleaveHelper(w, simd); break;
                case "Requantize": Requant.EmitHelpers(w, simd); break;
                case "UntypedConstants": ConvInt8Kernel.EmitUntypedHelpers(w); break;
                case "RequantizeNarrow": Requant.EmitNarrowHelpers(w, simd); break;
                case "Erf":
                    w.Line("// erf in float32: Maclaurin series near zero, the Numerical Recipes Chebyshev fit of erfc elsewhere (error < 1.2e-7).");
                    w.Source(Activations.ErfSource);
                    break;
                case "RuntimeResize": w.Source(ResizeRuntimeKernel.HelperSource); break;
                case "RuntimeShapes": w.Source(PadRuntimeKernel.HelperSource); break;
                case "RuntimeReduce": w.Source(ReduceRuntimeKernel.HelperSource); break;
                case "ShapeChecks": w.Source(CheckShapeKernel.HelperSource); break;
                case "VectorLog": VectorMath.EmitLog(w, simd); break;
                default: throw new FormatException($"unknown helper '{helper}'");
            }
        }
    }

    /// <summary>
    /// Opens a kernel method. AggressiveOptimization: compiled optimized on first call. Under tiered
    /// compilation the kernels' loops otherwise ran as tier-0/OSR code long after warm-up in some models
    /// (a depthwise-separable CNN took 123 µs instead of 32 µs per run); NativeAOT ignores the flag.
    /// </summary>
    internal static CodeWriter.Scope OpenKernel(CodeWriter w, string name, string sig)
    {
        w.Line("[MethodImpl(MethodImplOptions.AggressiveOptimization)]");
        return w.Block($"public static void {name}({sig})");
    }

    /// <summary>
    /// Opens a shared helper with a loop (Dot, QuantizeU8, Interleave4U8…), AggressiveOptimization as the kernels
    /// are: under tiered compilation and dynamic PGO these took the test CNN's int8 Run from 32 to 37–57 µs
    /// (hot loop; float32 was unaffected).
    /// </summary>
    internal static CodeWriter.Scope OpenHelper(CodeWriter w, string declaration)
    {
        w.Line("[MethodImpl(MethodImplOptions.AggressiveOptimization)]");
        return w.Block(declaration);
    }

    /// <summary>
    /// The weight input a kernel reads in 64-byte-aligned loads, if any: the model passes it padded
    /// (<see cref="GemvEmitter.AlignPad"/> floats each side) and with its phase as a last argument.
    /// </summary>
    internal static int AlignedWeightInput(ArtifactNode node) =>
        node.Dense?.Layout == DenseLayout.Panels4 ? 1 : -1;

    /// <summary>
    /// The even (or odd) lanes of two float vectors (lo's, then hi's): the inputs of a stride-2 window. One vpermt2ps
    /// on AVX-512 and a shuffle and a permute on AVX2; Narrow elsewhere (on AVX-512 the JIT makes it two
    /// vpmovqd and an insert, five shuffle-port micro-ops, which were the bottleneck of stride-2 depthwise
    /// convolutions).
    /// </summary>
    internal static string EvenLanes(string v, int width, string lo, string hi, bool odd = false)
    {
        var (arms, narrow) = EvenLaneArms(v, width, lo, hi, odd);
        string fallback = string.Join(" ", narrow).Replace("( ", "(");
        return arms.Count == 0 ? fallback : "(" + string.Concat(arms.Select(a => $"{a.Condition} ? {a.Value} : ")) + fallback + ")";
    }

    /// <summary>
    /// <see cref="EvenLanes"/> as a statement <c>{head} = …;</c> over lines of their own: one per instruction set it
    /// tests, the fallback broken where it is long.
    /// </summary>
    internal static void WriteEvenLanes(CodeWriter w, string head, string v, int width, string lo, string hi, bool odd = false)
    {
        var (arms, narrow) = EvenLaneArms(v, width, lo, hi, odd);
        w.Line(head + " =");
        w.Indent();
        foreach (var (condition, value) in arms) w.Line($"{condition} ? {value} :");
        for (int i = 0; i < narrow.Length; i++) w.Line((i > 0 ? "    " : "") + narrow[i] + (i == narrow.Length - 1 ? ";" : ""));
        w.Outdent();
    }

    /// <summary>The instruction sets EvenLanes tests with the permute each gives, and the Narrow fallback (its pieces a line each).</summary>
    static (List<(string Condition, string Value)> Arms, string[] Narrow) EvenLaneArms(string v, int width, string lo, string hi, bool odd)
    {
        string[] narrow = odd
            ? [$"{v}.AsSingle({v}.Narrow(", $"{v}.ShiftRightLogical({v}.AsUInt64({lo}), 32),", $"{v}.ShiftRightLogical({v}.AsUInt64({hi}), 32)))"]
            : [$"{v}.AsSingle({v}.Narrow({v}.AsUInt64({lo}), {v}.AsUInt64({hi})))"];
        int first = odd ? 1 : 0;
        string Lanes(int n) => string.Join(", ", Enumerable.Range(0, n).Select(i => 2 * i + first));
        var arms = new List<(string, string)>();
        if (width == 16) arms.Add(("Avx512F.IsSupported", $"Avx512F.PermuteVar16x32x2({lo}, {v}.Create({Lanes(16)}), {hi})"));
        if (width == 8)
        {
            // One two-source permute where AVX-512VL has it; on AVX2 a shuffle within lanes and a cross-lane fix-up.
            arms.Add(("Avx512F.VL.IsSupported", $"Avx512F.VL.PermuteVar8x32x2({lo}, {v}.Create({Lanes(8)}), {hi})"));
            arms.Add(("Avx2.IsSupported", $"{v}.AsSingle(Avx2.Permute4x64({v}.AsDouble(Avx.Shuffle({lo}, {hi}, {(odd ? "0xDD" : "0x88")})), 0xD8))"));
        }
        return (arms, narrow);
    }

    /// <summary>The node's window (the reader parsed it; the compiler set it).</summary>
    internal static KernelWindow Window(ArtifactNode node) =>
        node.Window ?? throw new FormatException($"kernel {node.Kernel} of node '{node.Name}' has no window (kernel, strides, dilations, pads)");

    /// <summary>A convolution's group, method and weight form (the reader parsed them; the compiler set them).</summary>
    internal static ConvAttributes ConvOf(ArtifactNode node) =>
        node.Conv ?? throw new FormatException($"kernel {node.Kernel} of node '{node.Name}' has no group");

    /// <summary>A Dense node's attributes (the reader parsed them; the compiler set them).</summary>
    internal static DenseAttributes Dense(ArtifactNode node) =>
        node.Dense ?? throw new FormatException($"kernel {node.Kernel} of node '{node.Name}' has no Dense attributes (transA, layout)");

    /// <summary>
    /// The fused activation applied to the local <c>v</c>, or <c>v</c> itself. A chain nests: each step's expression is
    /// written over the previous one's (an expression reads its variable more than once, so the steps after the
    /// first repeat their input's text; the JIT computes it once).
    /// </summary>
    internal static string Act(ArtifactNode node, string v = "v")
    {
        if (node.Activation is not { } chain) return v;
        string e = v;
        foreach (var step in chain.Steps) e = Activations.Expression(step.Op, step.Alpha, step.Beta, e);
        return e;
    }

    internal static string ActName(ArtifactNode node)
    {
        if (node.Activation is not { } chain) return "";
        return string.Concat(chain.Steps.Select(step => $", then {step.Op} (fused): {Describe(step.Op, step.Alpha, step.Beta)}"));
    }

    /// <summary>A plain formula for the comment above a kernel.</summary>
    internal static string Describe(string op, float alpha, float beta) => op switch
    {
        "Relu" => "max(x, 0)",
        "LeakyRelu" => $"x < 0 ? {Activations.Literal(alpha)}·x : x",
        "Clip" when float.IsPositiveInfinity(beta) => $"max(x, {Activations.Literal(alpha)})",
        "Clip" when float.IsNegativeInfinity(alpha) => $"min(x, {Activations.Literal(beta)})",
        "Clip" => $"clamp(x, {Activations.Literal(alpha)}, {Activations.Literal(beta)})",
        "Scale" => $"{Activations.Literal(alpha)}·x",
        "Elu" => $"x < 0 ? {Activations.Literal(alpha)}·(eˣ − 1) : x",
        "Selu" => $"{Activations.Literal(beta)}·(x ≤ 0 ? {Activations.Literal(alpha)}·(eˣ − 1) : x)",
        "HardSigmoid" => $"clamp({Activations.Literal(alpha)}·x + {Activations.Literal(beta)}, 0, 1)",
        "HardSwish" => "x·clamp(x/6 + 1/2, 0, 1)",
        "Sigmoid" => "1 / (1 + e⁻ˣ)",
        "Softplus" => "ln(1 + eˣ)",
        "Softsign" => "x / (1 + |x|)",
        _ => op.ToLowerInvariant() + "(x)",
    };

    internal static bool HasActivation(ArtifactNode node) => node.Activation is not null;

    /// <summary>
    /// Conv as a GEMM per image and group: y[M, OH·OW] = w[M, K]·patches[K, OH·OW] + b, K = C/group·kH·kW.
    /// The patches (im2col) are gathered into scratch first, unless the convolution is 1x1 with unit
    /// stride and no pads, when the input already is that matrix.
    /// </summary>
    internal static void ConvGemm(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor[] outputs, SimdLevel simd)
    {
        var x = inputs[0]; var wt = inputs[1]; var y = outputs[0];
        // int8 weights: inputs x, w (int8), scales, b; the last output is scratch for the widened weights.
        bool int8 = wt.Element == TensorElement.Int8;
        int[] k = Window(node).Kernel, s = Window(node).Strides, d = Window(node).Dilations, p = Window(node).Pads;
        bool hasBias = inputs.Length > (int8 ? 3 : 2), patches = !ConvScratch.IsPointwise(k, s, p);
        if (outputs.Length != 1 + (patches ? 1 : 0) + (int8 ? 1 : 0))
            throw new FormatException($"Conv '{node.Name}': {(patches ? "the patch scratch" : "no patch scratch")}{(int8 ? " and the widened weights" : "")} expected after y");
        int group = ConvOf(node).Group;
        int n = x.Shape[0], c = x.Shape[1], m = wt.Shape[0];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = y.Shape.Length == 4 ? y.Shape[2] : 1, ow = y.Shape[y.Shape.Length - 1];
        int cpg = c / group, mpg = m / group, kk = cpg * k[0] * k[1], cols = oh * ow;
        // Output rows per band (ConvBands, as the compiler sized the patches): oh unless a large stem is split.
        int band = patches ? ConvBands.Rows(kk, oh, ow) : oh, bandCols = band * ow;
        w.Line($"// Conv: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w{CodeWriter.Shape(wt.Shape)}{(hasBias ? " + b" : "")}; window {k[0]}x{k[1]}, stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, group {group}{ActName(node)}.");
        w.Line($"// As a GEMM per image{(group > 1 ? " and group" : "")}: y[{mpg}, {cols}] = w[{mpg}, {kk}]·patches[{kk}, {cols}]{(hasBias ? " + b" : "")}{(patches ? "; the patches (im2col) gathered into scratch y1 first" : "; x itself is the patch matrix (1x1, stride 1, no pads)")}.");
        if (band < oh)
            w.Line($"// In bands of {band} output rows ({bandCols} columns): a band's patches ({(long)kk * bandCols * 4} bytes) are still in L1 when its GEMM reads them.");
        using var method = OpenKernel(w, name, sig);
        string widened = "y" + (outputs.Length - 1).ToString(CultureInfo.InvariantCulture);
        var lengths = new List<(string, long)> { ("x", x.ElementCount), ("w", wt.ElementCount), ("y", y.ElementCount) };
        if (hasBias) lengths.Add(("b", m));
        if (patches) lengths.Add(("y1", (long)kk * bandCols));
        if (int8) lengths.AddRange([("scales", m), (widened, wt.ElementCount)]);
        CheckedRefs(w, [.. lengths]);
        w.Line("ref float rx = ref MemoryMarshal.GetReference(x);");
        if (int8)
        {
            w.Line("// The embedded int8 weights times their channel's scale, into scratch: the GEMM then reads float32.");
            const string V512 = "Vector512";
            w.Line($"ref float ra = ref MemoryMarshal.GetReference({widened});");
            w.Line("ref sbyte rq = ref MemoryMarshal.GetReference(w);");
            using (w.Block($"for (int row = 0; row < {m}; row++)"))
            {
                w.Line("float scale = scales[row];");
                w.Line("int i = 0;");
                if (simd == SimdLevel.Auto && kk >= 16)
                {
                    using (w.Block($"if ({SimdWidth.V512.AcceleratedX86})"))
                    {
                        w.Line($"var s = {V512}.Create(scale);");
                        using (w.Block($"for (; i <= {kk - 16}; i += 16)"))
                            w.Line($"{V512}.StoreUnsafe({Int8RowDecoder.Floats(SimdWidth.V512, "rq", $"row * {kk} + i")} * s, ref ra, (nuint)(row * {kk} + i));");
                    }
                }
                w.Line($"for (; i < {kk}; i++)");
                w.Line($"    Unsafe.Add(ref ra, row * {kk} + i) = Unsafe.Add(ref rq, row * {kk} + i) * scale;");
            }
        }
        else w.Line("ref float ra = ref MemoryMarshal.GetReference(w);");
        w.Line("ref float rc = ref MemoryMarshal.GetReference(y);");
        if (hasBias) w.Line("ref float rbias = ref MemoryMarshal.GetReference(b);");
        w.Line(patches ? "ref float rb = ref MemoryMarshal.GetReference(y1);" : "ref float rb = ref rx;");
        if (patches) EmitPatches(w, k, s, d, p, cpg, h, wd, oh, ow, band, simd);
        using (w.For("image", n, out string image))
        using (w.For("grp", group, out string grp))
        {
            // The first input element of this image and group.
            string xBase = w.IntLocal("xBase", Expr.Times(Expr.Plus(Expr.Times(image, c), Expr.Times(grp, cpg)), h * wd));
            string oy0 = band < oh ? "oy0" : "0";
            using (w.BlockIf(band < oh, $"for (int oy0 = 0; oy0 < {oh}; oy0 += {band})"))
            {
                var g = new GemmSpec
                {
                    GatherB = patches ? (cw, from, to) => cw.Line($"Patches(ref rx, ref rb, {xBase}, {from}, {to}, {oy0});") : null,
                    GatherRows = k[0] * k[1],
                    M = mpg, N = bandCols, K = kk,
                    ABase = Expr.Times(grp, mpg * kk), Lda = kk,
                    BBase = patches ? "0" : xBase, Ldb = bandCols,
                    CBase = Expr.Plus(Expr.Times(Expr.Plus(Expr.Times(image, m), Expr.Times(grp, mpg)), cols), Expr.Times(oy0, ow)), Ldc = cols,
                    BiasKind = hasBias ? BiasKind.PerRow : BiasKind.None, BiasBase = Expr.Times(grp, mpg),
                };
                GemmEmitter.Emit(w, g, node, simd);
            }
        }
    }

    /// <summary>
    /// im2col into y1: row (c, i, j) of the patch matrix holds x[c, oy·sH + i·dH − pT, ox·sW + j·dW − pL]
    /// for every output pixel (oy, ox), 0 in the padding. The j loop is unrolled so each run of columns
    /// inside the image is a copy of a constant length, which the JIT turns into a few vector moves.
    /// </summary>
    static void EmitPatches(CodeWriter w, int[] k, int[] s, int[] d, int[] p, int cpg, int h, int wd, int oh, int ow, int band, SimdLevel simd)
    {
        const string U = "Unsafe";
        int cols = band * ow, rowsPerChannel = k[0] * k[1];
        w.Line($"// Patches: row (c, i, j) holds x[c, {Affine(("oy", s[0]), ("i", d[0]), ("", -p[0]))}, {Affine(("ox", s[1]), ("j", d[1]), ("", -p[1]))}] for every output pixel{(band < oh ? $" of the band's {band} rows oy0.." : "")}, 0 in the padding.");
        w.Line($"// Rows fromRow..toRow (whole channels, {rowsPerChannel} rows each) are stored from row 0 of rb: the GEMM calls it for each K chunk just");
        w.Line("// before it sums the chunk where its chunks hold every column, else once for all the rows.");
        // AggressiveOptimization too: without it, under tiered compilation, LeNet-5 ran at half speed in modelgen bench.
        using var helper = OpenHelper(w, "static void Patches(ref float rx, ref float rb, int xBase, int fromRow, int toRow, int oy0)");
        using var channels = w.Block($"for (int c = fromRow / {rowsPerChannel}; c < toRow / {rowsPerChannel}; c++)");
        using var kernelRows = w.Block($"for (int i = 0; i < {k[0]}; i++)");
        w.Line($"int patchRow = (c * {k[0]} + i) * {k[1] * cols} - fromRow * {cols};");
        w.Line($"int plane = xBase + c * {h * wd};");
        if (k[1] > MaxUnrolledKernelColumns)
        {
            EmitPatchColumnsLoop(w, k, s, d, p, h, wd, oh, ow, band, cols);
            return;
        }
        for (int j = 0; j < k[1]; j++)
        {
            int shift = j * d[1] - p[1];
            // Output columns whose input column lies inside the image: [first, last).
            int first = shift >= 0 ? 0 : Math.Min(ow, (-shift + s[1] - 1) / s[1]); // a pad wider than the output: all of it
            int last = shift > wd - 1 ? 0 : Math.Min(ow, (wd - 1 - shift) / s[1] + 1);
            if (last < first) last = first;
            w.Line($"// j = {j}: output columns {first}..{last - 1} read input columns {Affine(("ox", s[1]), ("", shift))}.");
            using (w.Block($"for (int oy = 0; oy < {band}; oy++)"))
            {
                w.Line($"ref float dst = ref {U}.Add(ref rb, {Expr.Sum("patchRow", CodeWriter.N(j * cols), Expr.Times("oy", ow))});");
                w.Line($"int ih = {Expr.Minus(Expr.Plus(Expr.Times(Expr.Plus("oy0", "oy"), s[0]), Expr.Times("i", d[0])), p[0])};");
                if (p[0] > 0 || p[2] > 0 || (oh - 1) * s[0] + (k[0] - 1) * d[0] - p[0] >= h)
                    w.Line($"if ((uint)ih >= {h}u) {{ {U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref dst), 0, {ow * 4}); continue; }}");
                if (first > 0) w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref dst), 0, {first * 4});");
                if (last > first)
                {
                    w.Line($"ref float src = ref {U}.Add(ref rx, {Expr.Sum("plane", Expr.Times("ih", wd), CodeWriter.N(first * s[1] + shift))});");
                    if (s[1] == 1) w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {At(U, "dst", first)}), ref {U}.As<float, byte>(ref src), {(last - first) * 4});");
                    else
                    {
                        w.Line("int ox = 0;");
                        if (s[1] == 2 && simd != SimdLevel.None) EmitEvenGather(w, last - first, first, simd);
                        w.Line($"for (; ox < {last - first}; ox++) {U}.Add(ref dst, {Expr.Plus(CodeWriter.N(first), "ox")}) = {U}.Add(ref src, {Expr.Times("ox", s[1])});");
                    }
                }
                if (last < ow) w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref dst, {last})), 0, {(ow - last) * 4});");
            }
        }
    }

    /// <summary>The element <paramref name="offset"/> past the ref <paramref name="r"/>: the ref itself at 0.</summary>
    internal static string At(string unsafeClass, string r, long offset) => At(unsafeClass, r, CodeWriter.N(offset));

    /// <summary>The element <paramref name="index"/> · <paramref name="stride"/> past the ref <paramref name="r"/>: the ref itself at 0.</summary>
    internal static string At(string unsafeClass, string r, string index, long stride = 1)
    {
        string offset = Expr.Times(index, stride);
        return offset == "0" ? r : $"{unsafeClass}.Add(ref {r}, {offset})";
    }

    /// <summary>A comment's affine index, "2·oy + i − 1": a factor of 1 and a term of 0 left out (a name of "" is the constant).</summary>
    internal static string Affine(params (string Name, int Factor)[] terms)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var (name, factor) in terms)
        {
            if (factor == 0) continue;
            string magnitude = name.Length == 0 ? CodeWriter.N(Math.Abs((long)factor)) : Math.Abs((long)factor) == 1 ? name : $"{CodeWriter.N(Math.Abs((long)factor))}·{name}";
            if (sb.Length == 0) sb.Append(factor < 0 ? "−" + magnitude : magnitude);
            else sb.Append(factor < 0 ? " − " : " + ").Append(magnitude);
        }
        return sb.Length == 0 ? "0" : sb.ToString();
    }

    /// <summary>
    /// Kernel columns unrolled in the patch gather at most: each is a block of code, and a kernel thousands
    /// of columns wide (a few bytes of ONNX) would otherwise be megabytes of C#.
    /// </summary>
    const int MaxUnrolledKernelColumns = 16;

    /// <summary>The patch rows of one kernel row (c, i) with the column loop j at run time: a kernel wider than <see cref="MaxUnrolledKernelColumns"/>.</summary>
    static void EmitPatchColumnsLoop(CodeWriter w, int[] k, int[] s, int[] d, int[] p, int h, int wd, int oh, int ow, int band, int cols)
    {
        const string U = "Unsafe";
        w.Line($"// {k[1]} kernel columns, too many to unroll: for each j, output columns first..last-1 read input columns ox·{s[1]} + j·{d[1]} − {p[1]}.");
        using (w.Block($"for (int j = 0; j < {k[1]}; j++)"))
        {
            w.Line($"int shift = j * {d[1]} - {p[1]};");
            w.Line($"int first = shift >= 0 ? 0 : Math.Min({ow}, (-shift + {s[1] - 1}) / {s[1]});");
            w.Line($"int last = shift > {wd - 1} ? 0 : Math.Min({ow}, ({wd - 1} - shift) / {s[1]} + 1);");
            w.Line("if (last < first) last = first;");
            using (w.Block($"for (int oy = 0; oy < {band}; oy++)"))
            {
                w.Line($"ref float dst = ref {U}.Add(ref rb, patchRow + j * {cols} + oy * {ow});");
                w.Line($"int ih = (oy0 + oy) * {s[0]} + i * {d[0]} - {p[0]};");
                if (p[0] > 0 || p[2] > 0 || (oh - 1) * s[0] + (k[0] - 1) * d[0] - p[0] >= h)
                    w.Line($"if ((uint)ih >= {h}u) {{ {U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref dst), 0, {ow * 4}); continue; }}");
                w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref dst), 0, (uint)(first * 4));");
                using (w.Block("if (last > first)"))
                {
                    w.Line($"ref float src = ref {U}.Add(ref rx, plane + ih * {wd} + first * {s[1]} + shift);");
                    w.Line($"for (int ox = first; ox < last; ox++) {U}.Add(ref dst, ox) = {U}.Add(ref src, (ox - first) * {s[1]});");
                }
                w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref dst, last)), 0, (uint)(({ow} - last) * 4));");
            }
        }
    }

    /// <summary>
    /// dst[first + ox] = src[2·ox] for ox &lt; count, a vector at a time (the even lanes of two loads), as far as every
    /// load stays within src[0 .. 2·(count − 1)]; then one vector overlapping the last (the same values again), and
    /// the scalar loop after it takes the rest. Stride-2 patches (a MobileNetV2 stem) were a scalar copy.
    /// </summary>
    static void EmitEvenGather(CodeWriter w, int count, int first, SimdLevel simd)
    {
        const string U = "Unsafe";
        SimdLadder.Chain(w, SimdLadder.Widths(simd).Where(x => count > x.Floats).ToList(), sw =>
        {
            string v = sw.V;
            int width = sw.Floats;
            string Even(string at) => EvenLanes(v, width, $"{v}.LoadUnsafe(ref src, (nuint)(2 * {at}))", $"{v}.LoadUnsafe(ref src, (nuint)(2 * {at} + {width}))");
            w.Line($"for (; ox + {width} < {count}; ox += {width}) {v}.StoreUnsafe({Even("ox")}, ref {U}.Add(ref dst, {first}), (nuint)ox);");
            w.Line($"ox = {count - 1 - width}; {v}.StoreUnsafe({Even("ox")}, ref {U}.Add(ref dst, {first}), (nuint)ox); ox += {width};");
        });
    }

    internal static void Conv(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, ref bool usesAxpy, SimdLevel simd)
    {
        if (Window(node).Strides[1] == 1 && simd != SimdLevel.None)
        {
            ConvOutputStationary(w, node, name, sig, inputs, y, simd);
            return;
        }
        var x = inputs[0]; var wt = inputs[1];
        bool hasBias = inputs.Length > 2;
        int[] k = Window(node).Kernel, s = Window(node).Strides, d = Window(node).Dilations, p = Window(node).Pads;
        int group = ConvOf(node).Group;
        int n = x.Shape[0], c = x.Shape[1], m = wt.Shape[0];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = y.Shape.Length == 4 ? y.Shape[2] : 1, ow = y.Shape[y.Shape.Length - 1];
        int cpg = c / group, mpg = m / group;
        bool relu = node.Activation is not null;
        w.Line($"// Conv: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w{CodeWriter.Shape(wt.Shape)}{(hasBias ? " + b" : "")}; window {k[0]}x{k[1]}, stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, group {group}{ActName(node)}.");
        w.Line("// Direct convolution: each weight scales a run of input pixels into a run of output pixels (y += w·x),");
        w.Line("// so the innermost loop walks contiguous memory" + (s[1] == 1 ? " and vectorizes." : "."));
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        using (w.Block($"for (int n = 0; n < {n}; n++)"))
        using (w.Block($"for (int m = 0; m < {m}; m++)"))
        {
            w.Line($"Span<float> plane = y.Slice((n * {m} + m) * {oh * ow}, {oh * ow});");
            w.Line(hasBias ? "plane.Fill(b[m]);" : "plane.Clear();");
            using (w.Block($"for (int c = 0; c < {cpg}; c++)"))
            {
                w.Line(group == 1 ? $"int xBase = (n * {c} + c) * {h * wd};" : $"int xBase = (n * {c} + m / {mpg} * {cpg} + c) * {h * wd};");
                using (w.Block($"for (int kh = 0; kh < {k[0]}; kh++)"))
                using (w.Block($"for (int kw = 0; kw < {k[1]}; kw++)"))
                {
                    w.Line($"float weight = w[((m * {cpg} + c) * {k[0]} + kh) * {k[1]} + kw];");
                    w.Line($"int shift = kw * {d[1]} - {p[1]};");
                    w.Line("// Output columns whose input column lies inside the image (the rest read padding: zero).");
                    w.Line(p[1] == 0 ? "const int first = 0;" : $"int first = shift >= 0 ? 0 : (-shift + {s[1] - 1}) / {s[1]};");
                    w.Line($"int last = shift > {wd - 1} ? 0 : Math.Min({ow}, ({wd - 1} - shift) / {s[1]} + 1);");
                    w.Line("if (last <= first) continue;");
                    using (w.Block($"for (int oh = 0; oh < {oh}; oh++)"))
                    {
                        w.Line($"int ih = oh * {s[0]} + kh * {d[0]} - {p[0]};");
                        if (p[0] != 0 || p[2] != 0) w.Line($"if ((uint)ih >= {h}u) continue;");
                        if (s[1] == 1)
                        {
                            usesAxpy = true;
                            w.Line($"Axpy(plane.Slice(oh * {ow} + first, last - first), x.Slice(xBase + ih * {wd} + first + shift, last - first), weight);");
                        }
                        else
                        {
                            w.Line($"int row = xBase + ih * {wd} + shift;");
                            w.Line($"for (int col = first; col < last; col++) plane[oh * {ow} + col] += weight * x[row + col * {s[1]}];");
                        }
                    }
                }
            }
            if (relu)
            {
                using (w.Block("for (int i = 0; i < plane.Length; i++)"))
                {
                    w.Line("float v = plane[i];");
                    w.Line($"plane[i] = {Act(node)};");
                }
            }
        }
    }

    /// <summary>
    /// Conv with unit horizontal stride: each output row is computed a vector of columns at a time, the
    /// accumulator staying in a register across every (channel, kh, kw) tap: one broadcast weight times
    /// one unaligned load of input per tap. Columns whose taps would read padding are done one by one.
    /// </summary>
    static void ConvOutputStationary(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var x = inputs[0]; var wt = inputs[1];
        bool hasBias = inputs.Length > 2;
        int[] k = Window(node).Kernel, s = Window(node).Strides, d = Window(node).Dilations, p = Window(node).Pads;
        int group = ConvOf(node).Group;
        int n = x.Shape[0], c = x.Shape[1], m = wt.Shape[0];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = y.Shape.Length == 4 ? y.Shape[2] : 1, ow = y.Shape[y.Shape.Length - 1];
        int cpg = c / group, mpg = m / group, taps = cpg * k[0] * k[1];
        // Output channels computed together share each load of input (register blocking).
        int block = mpg % 4 == 0 ? 4 : mpg % 2 == 0 ? 2 : 1;
        // Columns [first, last) have every tap inside the input: ow − pl ≥ 0 and ow + (kW−1)·dW − pl ≤ W − 1.
        int first = Math.Min(p[1], ow), last = Math.Max(first, Math.Min(ow, wd - 1 + p[1] - (k[1] - 1) * d[1] + 1));
        bool act = node.Activation is not null;
        var blockIndexes = Enumerable.Range(0, block).ToArray();
        string Each(Func<int, string> f) => string.Join(" ", blockIndexes.Select(f));
        w.Line($"// Conv: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w{CodeWriter.Shape(wt.Shape)}{(hasBias ? " + b" : "")}; window {k[0]}x{k[1]}, stride {s[0]}x1, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, group {group}{ActName(node)}.");
        w.Line($"// Output-stationary, {block} output channels at a time: columns {first}..{last - 1} of each row a vector at a time over {taps} taps, accumulators in registers; edge columns one by one.");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        w.Line("ref float rx = ref MemoryMarshal.GetReference(x);");
        using (w.Block($"for (int n = 0; n < {n}; n++)"))
        using (w.Block($"for (int m = 0; m < {m}; m += {block})"))
        {
            var levels = SimdLadder.Widths(simd).Where(l => last - first >= l.Floats).ToList();
            if (levels.Count > 0)
            {
                w.Line(Each(i => $"ReadOnlySpan<float> w{i} = w.Slice((m + {i}) * {taps}, {taps});"));
                w.Line(Each(i => $"float bias{i} = {(hasBias ? $"b[m + {i}]" : "0f")};"));
            }
            w.Line(group == 1 ? $"int xBase = n * {c * h * wd};" : $"int xBase = (n * {c} + m / {mpg} * {cpg}) * {h * wd};");
            w.Line($"int yBase = (n * {m} + m) * {oh * ow};");
            using (w.Block($"for (int oh = 0; oh < {oh}; oh++)"))
            {
                w.Line($"int col = {first};");
                SimdLadder.Cascade(w, levels, sw =>
                {
                    string v = sw.V;
                    int width = sw.Floats;
                    using (w.Block($"for (; col <= {last - width}; col += {width})"))
                    {
                        w.Line(Each(i => $"{v}<float> a{i} = {v}.Create(bias{i});"));
                        w.Line("int t = 0;");
                        using (w.Block($"for (int c = 0; c < {cpg}; c++)"))
                        using (w.Block($"for (int kh = 0; kh < {k[0]}; kh++, t += {k[1]})"))
                        {
                            w.Line($"int ih = oh * {s[0]} + kh * {d[0]} - {p[0]};");
                            if (p[0] != 0 || p[2] != 0) w.Line($"if ((uint)ih >= {h}u) continue;");
                            w.Line($"int row = xBase + c * {h * wd} + ih * {wd} + col - {p[1]};");
                            using (w.Block($"for (int kw = 0; kw < {k[1]}; kw++)"))
                            {
                                w.Line($"{v}<float> xv = {v}.LoadUnsafe(ref rx, (nuint)(row + kw * {d[1]}));");
                                w.Line("// Multiply then add: faster here than FusedMultiplyAdd, whose latency chains each accumulator.");
                                w.Line(Each(i => $"a{i} += {v}.Create(w{i}[t + kw]) * xv;"));
                            }
                        }
                        foreach (int i in blockIndexes)
                        {
                            string at = $"yBase + {i * oh * ow} + oh * {ow} + col";
                            if (act) w.Line($"for (int e = 0; e < {width}; e++) {{ float v = {v}.GetElement(a{i}, e); y[{at} + e] = {Act(node)}; }}");
                            else w.Line($"{v}.CopyTo(a{i}, y.Slice({at}, {width}));");
                        }
                    }
                });
                w.Line("// Columns left: the edges (taps in the padding) and what no vector covered.");
                using (w.Block($"for (int ow = 0; ow < {ow}; ow++)"))
                {
                    w.Line($"if (ow >= {first} && ow < col) continue;");
                    using (w.Block($"for (int i = 0; i < {block}; i++)"))
                    {
                        w.Line($"ReadOnlySpan<float> wm = w.Slice((m + i) * {taps}, {taps});");
                        w.Line($"float sum = {(hasBias ? "b[m + i]" : "0f")};");
                        w.Line("int t = 0;");
                        using (w.Block($"for (int c = 0; c < {cpg}; c++)"))
                        using (w.Block($"for (int kh = 0; kh < {k[0]}; kh++, t += {k[1]})"))
                        {
                            w.Line($"int ih = oh * {s[0]} + kh * {d[0]} - {p[0]};");
                            w.Line($"if ((uint)ih >= {h}u) continue;");
                            using (w.Block($"for (int kw = 0; kw < {k[1]}; kw++)"))
                            {
                                w.Line($"int iw = ow + kw * {d[1]} - {p[1]};");
                                w.Line($"if ((uint)iw < {wd}u) sum += wm[t + kw] * x[xBase + c * {h * wd} + ih * {wd} + iw];");
                            }
                        }
                        w.Line("float v = sum;");
                        w.Line($"y[yBase + i * {oh * ow} + oh * {ow} + ow] = {Act(node)};");
                    }
                }
            }
        }
    }

    /// <summary>
    /// The common 2x2, stride 2 MaxPool, every window inside: per output row, the two input rows' maximum
    /// a vector at a time, then the maximum of each adjacent pair (even and odd lanes split by narrowing
    /// the pairs seen as 64-bit lanes).
    /// </summary>
    static void MaxPool2x2(CodeWriter w, ArtifactTensor x, ArtifactTensor y, int nc, int h, int wd, int oh, int ow, SimdLevel simd)
    {
        const string U = "Unsafe";
        CheckedRefs(w, [("x", x.ElementCount), ("y", y.ElementCount)], ("rx", "x"), ("ry", "y"));
        using var planeLoop = w.Block($"for (int plane = 0; plane < {nc}; plane++)");
        using var rowLoop = w.Block($"for (int oh = 0; oh < {oh}; oh++)");
        w.Line($"ref float top = ref {U}.Add(ref rx, (plane * {h} + oh * 2) * {wd});");
        w.Line($"ref float bottom = ref {U}.Add(ref top, {wd});");
        w.Line($"ref float row = ref {U}.Add(ref ry, (plane * {oh} + oh) * {ow});");
        w.Line("int ow = 0;");
        if (ow >= 4 && simd != SimdLevel.None)
        {
            w.Line("// Per step the larger of the two rows, then of each even and odd lane: the lanes split by one vpermt2ps on AVX-512,");
            w.Line("// a shuffle and a cross-lane permute on AVX2, Narrow of the pairs seen as 64-bit lanes elsewhere.");
        }
        SimdLadder.Cascade(w, SimdLadder.Widths(simd).Where(x => ow >= x.Floats), sw =>
        {
            string v = sw.V;
            int width = sw.Floats;
            using (w.Block($"for (; ow <= {ow - width}; ow += {width})"))
            {
                w.Line($"var lo = {v}.Max({v}.LoadUnsafe(ref top, (nuint)(2 * ow)), {v}.LoadUnsafe(ref bottom, (nuint)(2 * ow)));");
                w.Line($"var hi = {v}.Max({v}.LoadUnsafe(ref top, (nuint)(2 * ow + {width})), {v}.LoadUnsafe(ref bottom, (nuint)(2 * ow + {width})));");
                WriteEvenLanes(w, "var even", v, width, "lo", "hi");
                WriteEvenLanes(w, "var odd", v, width, "lo", "hi", odd: true);
                w.Line($"{v}.StoreUnsafe({v}.Max(even, odd), ref row, (nuint)ow);");
            }
        });
        using (w.Block($"for (; ow < {ow}; ow++)"))
        {
            w.Line($"float a = MathF.Max({U}.Add(ref top, 2 * ow), {U}.Add(ref top, 2 * ow + 1));");
            w.Line($"float b = MathF.Max({U}.Add(ref bottom, 2 * ow), {U}.Add(ref bottom, 2 * ow + 1));");
            w.Line($"{U}.Add(ref row, ow) = MathF.Max(a, b);");
        }
    }

    /// <summary>
    /// The start of a kernel that indexes without bounds checks: one check that every span is as long as
    /// the shapes say (so the unchecked reads below stay inside), then a ref to each span's first element.
    /// </summary>
    internal static void CheckedRefs(CodeWriter w, (string Span, long Length)[] lengths, params (string Ref, string Span)[] refs)
    {
        string condition = $"if ({string.Join(" || ", lengths.Select(l => $"{l.Span}.Length < {l.Length}"))})", thrown = "throw new ArgumentException(\"buffer too short\");";
        if (condition.Length + thrown.Length < 100) w.Line(condition + " " + thrown);
        else
        {
            w.Line(condition);
            w.Line("    " + thrown);
        }
        foreach (var (r, span) in refs) w.Line($"ref var {r} = ref MemoryMarshal.GetReference({span});");
    }

    internal static void MaxPool(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor x, ArtifactTensor y, SimdLevel simd)
    {
        int[] k = Window(node).Kernel, s = Window(node).Strides, d = Window(node).Dilations, p = Window(node).Pads;
        int nc = x.Shape[0] * x.Shape[1];
        int h = x.Shape.Length == 4 ? x.Shape[2] : 1, wd = x.Shape[x.Shape.Length - 1];
        int oh = y.Shape.Length == 4 ? y.Shape[2] : 1, ow = y.Shape[y.Shape.Length - 1];
        w.Line($"// MaxPool: y{CodeWriter.Shape(y.Shape)} = max over {k[0]}x{k[1]} windows of x{CodeWriter.Shape(x.Shape)}, stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)} (padding never wins).");
        using var method = OpenKernel(w, name, sig);
        bool inside = p.All(v => v == 0) && (oh - 1) * s[0] + (k[0] - 1) * d[0] < h && (ow - 1) * s[1] + (k[1] - 1) * d[1] < wd;
        if (inside && k[0] == 2 && k[1] == 2 && s[0] == 2 && s[1] == 2 && d[0] == 1 && d[1] == 1 && simd != SimdLevel.None)
        {
            MaxPool2x2(w, x, y, nc, h, wd, oh, ow, simd);
            return;
        }
        if (inside && k[0] * k[1] <= 25)
        {
            // Every window lies inside the input: the taps unrolled, no bounds to test.
            const string U = "Unsafe";
            CheckedRefs(w, [("x", x.ElementCount), ("y", y.ElementCount)], ("rx", "x"), ("ry", "y"));
            using (w.Block($"for (int plane = 0; plane < {nc}; plane++)"))
            using (w.Block($"for (int oh = 0; oh < {oh}; oh++)"))
            {
                w.Line($"ref float window = ref {U}.Add(ref rx, {Expr.Times(Expr.Plus(Expr.Times("plane", h), Expr.Times("oh", s[0])), wd)});");
                w.Line($"ref float row = ref {U}.Add(ref ry, {Expr.Times(Expr.Plus(Expr.Times("plane", oh), "oh"), ow)});");
                using (w.Block($"for (int ow = 0; ow < {ow}; ow++)"))
                {
                    w.Line($"ref float at = ref {U}.Add(ref window, {Expr.Times("ow", s[1])});");
                    var taps = new List<long>();
                    for (int i = 0; i < k[0]; i++)
                        for (int j = 0; j < k[1]; j++)
                            taps.Add((long)i * d[0] * wd + (long)j * d[1]);
                    w.Line($"float max = {At(U, "at", taps[0])};");
                    foreach (var t in taps.Skip(1))
                        w.Line($"max = MathF.Max(max, {At(U, "at", t)});");
                    w.Line($"{U}.Add(ref row, ow) = max;");
                }
            }
            return;
        }
        using (w.Block($"for (int plane = 0; plane < {nc}; plane++)"))
        using (w.Block($"for (int oh = 0; oh < {oh}; oh++)"))
        using (w.Block($"for (int ow = 0; ow < {ow}; ow++)"))
        {
            w.Line("float max = float.NegativeInfinity;");
            WindowTaps(w, k, s, d, p, h, wd, "oh", "ow", () =>
            {
                w.Line($"float v = x[(plane * {h} + ih) * {wd} + iw];");
                w.Line("if (v > max || float.IsNaN(v)) max = v;");
            });
            w.Line($"y[(plane * {oh} + oh) * {ow} + ow] = max;");
        }
    }

    /// <summary>
    /// The taps of the 2-D window at output (<paramref name="oh"/>, <paramref name="ow"/>): loops kh and kw, with ih and iw the
    /// input row and column, taps in the padding skipped; <paramref name="body"/> reads one tap.
    /// </summary>
    internal static void WindowTaps(CodeWriter w, int[] k, int[] s, int[] d, int[] p, int h, int wd, string oh, string ow, Action body)
    {
        using (w.Block($"for (int kh = 0; kh < {k[0]}; kh++)"))
        {
            w.Line($"int ih = {Expr.Minus(Expr.Plus(Expr.Times(oh, s[0]), Expr.Times("kh", d[0])), p[0])};");
            w.Line($"if ((uint)ih >= {h}u) continue;");
            using (w.Block($"for (int kw = 0; kw < {k[1]}; kw++)"))
            {
                w.Line($"int iw = {Expr.Minus(Expr.Plus(Expr.Times(ow, s[1]), Expr.Times("kw", d[1])), p[1])};");
                w.Line($"if ((uint)iw >= {wd}u) continue;");
                body();
            }
        }
    }

    internal static void Dense(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var x = inputs[0]; var wt = inputs[1];
        var dense = Dense(node);
        bool transA = dense.TransA;
        if (dense.Layout == DenseLayout.Panels4)
        {
            GemvEmitter.Emit(w, node, name, sig, inputs, y, simd);
            return;
        }
        if (dense.Layout == DenseLayout.Nk32)
        {
            GemvEmitter.EmitFloat32Rows(w, node, name, sig, inputs, y, simd);
            return;
        }
        if (dense.Layout == DenseLayout.Nk8)
        {
            GemvEmitter.EmitInt8(w, node, name, sig, inputs, y, simd);
            return;
        }
        if (dense.Layout == DenseLayout.Nk4)
        {
            GemvEmitter.EmitInt4(w, node, name, sig, inputs, y, simd);
            return;
        }
        if (dense.Layout == DenseLayout.Codebook)
        {
            GemvEmitter.EmitCodebook(w, node, name, sig, inputs, y, simd);
            return;
        }
        if (dense.Layout == DenseLayout.Sparse)
        {
            SparseGemvEmitter.Emit(w, node, name, sig, inputs, y, simd);
            return;
        }
        // W is [K, N padded]: N (y's last axis) may be rounded up with zero columns, and the bias with it.
        int k = wt.Shape[0], ldw = wt.Shape[1], n = y.Shape[y.Shape.Length - 1];
        int rows = (int)(y.ElementCount / n);
        bool hasBias = inputs.Length > 2, fullBias = hasBias && inputs[2].ElementCount != n && inputs[2].ElementCount != ldw;
        w.Line($"// Fully connected: y{CodeWriter.Shape(y.Shape)}[r, j] = Σk x[r, k]·W[k, j]{(hasBias ? " + b" : "")}, W {CodeWriter.Shape(wt.Shape)} re-packed [K, N] at build time{(ldw != n ? $" (N padded to {ldw} with zeros)" : "")}{ActName(node)}.");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        if (!transA)
        {
            w.Line($"if (x.Length < {x.ElementCount} || w.Length < {wt.ElementCount} || y.Length < {y.ElementCount}{(hasBias ? $" || b.Length < {inputs[2].ElementCount}" : "")}) throw new ArgumentException(\"buffer too short\");");
            w.Line("ref float ra = ref MemoryMarshal.GetReference(x);");
            w.Line("ref float rb = ref MemoryMarshal.GetReference(w);");
            w.Line("ref float rc = ref MemoryMarshal.GetReference(y);");
            if (hasBias) w.Line("ref float rbias = ref MemoryMarshal.GetReference(b);");
            GemmEmitter.Emit(w, new GemmSpec
            {
                M = rows, N = n, K = k, Lda = k, Ldb = ldw, Ldc = n, PaddedColumns = ldw,
                BiasKind = !hasBias ? BiasKind.None : fullBias ? BiasKind.Full : BiasKind.PerColumn,
            }, node, simd);
        }
        else
        {
            string bias = !hasBias ? "" : fullBias ? $" + b[r * {n} + j]" : " + b[j]";
            using (w.Block($"for (int r = 0; r < {rows}; r++)"))
            using (w.Block($"for (int j = 0; j < {n}; j++)"))
            {
                w.Line("float sum = 0f;");
                w.Line($"for (int p = 0; p < {k}; p++) sum += x[p * {rows} + r] * w[p * {ldw} + j];");
                w.Line($"float v = sum{bias};");
                w.Line($"y[r * {n} + j] = {Act(node)};");
            }
        }
    }

    internal static void MatMul(CodeWriter w, string name, string sig, ArtifactTensor a, ArtifactTensor b, ArtifactTensor y)
    {
        int[] a2 = a.Shape.Length == 1 ? new[] { 1, a.Shape[0] } : a.Shape;
        int[] b2 = b.Shape.Length == 1 ? new[] { b.Shape[0], 1 } : b.Shape;
        int mm = a2[a2.Length - 2], k = a2[a2.Length - 1], n = b2[b2.Length - 1];
        int[] aBatch = a2.Take(a2.Length - 2).ToArray(), bBatch = b2.Take(b2.Length - 2).ToArray();
        int rank = Math.Max(aBatch.Length, bBatch.Length);
        var batch = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - aBatch.Length ? 1 : aBatch[i - (rank - aBatch.Length)];
            int db = i < rank - bBatch.Length ? 1 : bBatch[i - (rank - bBatch.Length)];
            batch[i] = Math.Max(da, db);
        }
        long batchCount = 1;
        foreach (int v in batch) batchCount *= v;
        w.Line($"// MatMul: y{CodeWriter.Shape(y.Shape)} = a{CodeWriter.Shape(a.Shape)} · b{CodeWriter.Shape(b.Shape)} (numpy semantics, batch axes broadcast).");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        using (w.Block($"for (int batch = 0; batch < {batchCount}; batch++)"))
        {
            w.Line($"int aBase = {BatchOffset(aBatch, batch)} * {(long)mm * k};");
            w.Line($"int bBase = {BatchOffset(bBatch, batch)} * {(long)k * n};");
            using (w.Block($"for (int i = 0; i < {mm}; i++)"))
            using (w.Block($"for (int j = 0; j < {n}; j++)"))
            {
                w.Line("float sum = 0f;");
                w.Line($"for (int p = 0; p < {k}; p++) sum += a[aBase + i * {k} + p] * b[bBase + p * {n} + j];");
                w.Line($"y[(batch * {mm} + i) * {n} + j] = sum;");
            }
        }
    }

    /// <summary>The expression for the flat index into an operand's batch axes, given the flat output batch index "batch".</summary>
    internal static string BatchOffset(int[] operand, int[] outShape, string flat = "batch")
    {
        var terms = new List<string>();
        long stride = 1, divisor = 1;
        for (int i = outShape.Length - 1; i >= 0; i--)
        {
            int j = i - (outShape.Length - operand.Length);
            int dim = j >= 0 ? operand[j] : 1;
            if (dim != 1)
                terms.Add($"({flat} / {divisor} % {outShape[i]}) * {stride}");
            if (dim != 1) stride *= dim;
            divisor *= outShape[i];
        }
        return terms.Count == 0 ? "0" : "(" + string.Join(" + ", terms) + ")";
    }

    /// <summary>Index into an operand broadcast to the output shape, from the output's flat index i.</summary>
    internal static string Index(int[] shape, int[] outShape, string flat = "i")
    {
        long count = 1;
        foreach (int v in shape) count *= v;
        long outCount = 1;
        foreach (int v in outShape) outCount *= v;
        if (count == outCount) return flat;
        if (count == 1) return "0";
        return BatchOffset(shape, outShape, flat);
    }

    /// <summary>The dot product of two equal-length spans, widest SIMD first (the JIT keeps one branch).</summary>
    public static void EmitDot(CodeWriter w, SimdLevel simd)
    {
        w.Line("// Σ a[i]·b[i] over equal-length spans: vector paths as the SIMD level allows (two accumulators hide");
        w.Line("// the add latency), then a scalar tail. Loads are unchecked: the loop bounds keep them inside a and b.");
        using var helper = OpenHelper(w, "static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)");
        w.Line("int i = 0;");
        w.Line("float sum = 0f;");
        w.Line("ref float ra = ref MemoryMarshal.GetReference(a);");
        w.Line("ref float rb = ref MemoryMarshal.GetReference(b);");
        VectorLoop(w, simd, "a.Length", (v, width) => new[]
        {
            $"{v}<float> acc0 = {v}<float>.Zero, acc1 = {v}<float>.Zero;",
            $"for (; i <= a.Length - {2 * width}; i += {2 * width})",
            "{",
            $"    acc0 += {Load(v, "ra", "i")} * {Load(v, "rb", "i")};",
            $"    acc1 += {Load(v, "ra", $"i + {width}")} * {Load(v, "rb", $"i + {width}")};",
            "}",
            $"for (; i <= a.Length - {width}; i += {width}) acc0 += {Load(v, "ra", "i")} * {Load(v, "rb", "i")};",
            $"sum = {Short(v)}.Sum(acc0 + acc1);",
        });
        w.Line("for (; i < a.Length; i++) sum += a[i] * b[i];");
        w.Line("return sum;");
    }

    /// <summary>y[j] = Σi x[i]·w[j·k + i]: four rows of w share each load of x (register blocking).</summary>
    public static void EmitGemv(CodeWriter w, SimdLevel simd)
    {
        w.Line("// y[j] = Σ x[i]·w[j·k + i] with k = x.Length: four rows of w at a time share each load of x; leftover rows use Dot.");
        using var helper = OpenHelper(w, "static void Gemv(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y)");
        w.Line("int k = x.Length, n = y.Length;");
        w.Line("if (w.Length < n * k) throw new ArgumentException(\"weights too short\");");
        w.Line("ref float rx = ref MemoryMarshal.GetReference(x);");
        w.Line("ref float rw = ref MemoryMarshal.GetReference(w);");
        w.Line("int j = 0;");
        using (w.Block("for (; j <= n - 4; j += 4)"))
        {
            w.Line("int i = 0, o0 = j * k, o1 = o0 + k, o2 = o1 + k, o3 = o2 + k;");
            w.Line("float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;");
            VectorLoop(w, simd, "k", (v, width) => new[]
            {
                $"{v}<float> a0 = {v}<float>.Zero, a1 = a0, a2 = a0, a3 = a0;",
                $"for (; i <= k - {width}; i += {width})",
                "{",
                $"    {v}<float> xv = {Load(v, "rx", "i")};",
                // Multiply then add, not FusedMultiplyAdd: where the processor lacks FMA (NativeAOT's default
                // x64 target) the fused form falls back to a slow exact emulation.
                $"    a0 += {Load(v, "rw", "o0 + i")} * xv;",
                $"    a1 += {Load(v, "rw", "o1 + i")} * xv;",
                $"    a2 += {Load(v, "rw", "o2 + i")} * xv;",
                $"    a3 += {Load(v, "rw", "o3 + i")} * xv;",
                "}",
                $"s0 = {v}.Sum(a0); s1 = {v}.Sum(a1); s2 = {v}.Sum(a2); s3 = {v}.Sum(a3);",
            });
            using (w.Block("for (; i < k; i++)"))
            {
                w.Line("float xi = x[i];");
                w.Line("s0 += xi * w[o0 + i]; s1 += xi * w[o1 + i]; s2 += xi * w[o2 + i]; s3 += xi * w[o3 + i];");
            }
            w.Line("y[j] = s0; y[j + 1] = s1; y[j + 2] = s2; y[j + 3] = s3;");
        }
        w.Line("for (; j < n; j++) y[j] = Dot(x, w.Slice(j * k, k));");
    }

    /// <summary>y += alpha·x over equal-length spans.</summary>
    public static void EmitAxpy(CodeWriter w, SimdLevel simd)
    {
        w.Line("// y[i] += alpha·x[i] over equal-length spans; vector paths as the SIMD level allows, then a scalar tail.");
        using var helper = OpenHelper(w, "static void Axpy(Span<float> y, ReadOnlySpan<float> x, float alpha)");
        w.Line("if (x.Length != y.Length) throw new ArgumentException(\"length mismatch\");");
        w.Line("int i = 0;");
        w.Line("ref float ry = ref MemoryMarshal.GetReference(y);");
        w.Line("ref float rx = ref MemoryMarshal.GetReference(x);");
        VectorLoop(w, simd, "y.Length", (v, width) => new[]
        {
            $"{v}<float> va = {Short(v)}.Create(alpha);",
            $"for (; i <= y.Length - {width}; i += {width})",
            $"    {Short(v)}.StoreUnsafe({Load(v, "ry", "i")} + va * {Load(v, "rx", "i")}, ref ry, (nuint)i);",
        });
        w.Line("for (; i < y.Length; i++) y[i] += alpha * x[i];");
    }

    static string Short(string v) => v;

    internal static string Load(string v, string r, string i) => $"{v}.LoadUnsafe(ref {r}, (nuint)({i}))";

    /// <summary>The ladder Vector256 → Vector128 → scalar, cut to what the SIMD level allows.</summary>
    internal static void VectorLoop(CodeWriter w, SimdLevel simd, string length, Func<string, int, string[]> body)
    {
        SimdLadder.Chain(w, SimdLadder.Widths(simd), x =>
        {
            foreach (var line in body(x.V, x.Floats)) w.Line(line);
        }, guard: x => $"{x.Accelerated} && {length} >= {x.Floats}");
    }
}
