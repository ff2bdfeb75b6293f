using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>One vector width of the emitted code: its type, its lanes, the run-time test that selects it.</summary>
internal sealed class SimdWidth
{
    public static readonly SimdWidth V512 = new SimdWidth(512), V256 = new SimdWidth(256), V128 = new SimdWidth(128);

    SimdWidth(int bits) => Bits = bits;

    public int Bits { get; }

    /// <summary>The vector type, e.g. <c>Vector256</c>.</summary>
    public string V => "Vector" + Bits;

    /// <summary>Lanes of float (or int32).</summary>
    public int Floats => Bits / 32;

    /// <summary>Lanes of byte.</summary>
    public int Bytes => Bits / 8;

    /// <summary>
    /// Fused multiply-add at 512 and 256 bits; Vector128 multiplies then adds: where it is the best width (x64
    /// without AVX, NativeAOT's default target) FMA may be missing and the fused form would fall back to a slow
    /// exact emulation.
    /// </summary>
    public bool Fused => Bits > 128;

    /// <summary>True where the processor (and, under NativeAOT, the target) accelerates this width: the JIT folds it.</summary>
    public string Accelerated => V + ".IsHardwareAccelerated";

    /// <summary>
    /// <see cref="Accelerated"/> and the x86 instruction set a path calls directly (AVX-512F at 512 bits, AVX2 at
    /// 256): Vector512/256 are accelerated on other processors too, where such a path must not be taken.
    /// </summary>
    /// <summary>An index expression made safe to multiply: <c>j</c> stays, <c>j + 1</c> becomes <c>(j + 1)</c>.</summary>
    public static string Parenthesized(string index) => index.IndexOf(' ') < 0 ? index : "(" + index + ")";

    public string AcceleratedX86 => Bits == 128 ? Accelerated : $"{Accelerated} && {(Bits == 512 ? "Avx512F" : "Avx2")}.IsSupported";
}

/// <summary>
/// The Vector512 → Vector256 → Vector128 → scalar ladder of the emitted kernels, written once: which widths a
/// <see cref="SimdLevel"/> allows, and the <c>if / else if</c> chain (or the cascade of loops, each taking what
/// the wider one left) that selects them at run time. The JIT and NativeAOT fold the tests, so only the
/// taken path is compiled.
/// </summary>
internal static class SimdLadder
{
    /// <summary>The widths <paramref name="level"/> allows, widest first, none wider than <paramref name="widest"/> bits.</summary>
    public static List<SimdWidth> Widths(SimdLevel level, int widest = 512) => level switch
    {
        SimdLevel.Auto => new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128 }.Where(x => x.Bits <= widest).ToList(),
        SimdLevel.Vector128 => new List<SimdWidth> { SimdWidth.V128 },
        _ => new List<SimdWidth>(),
    };

    /// <summary>
    /// <c>if (width 0) { body } else if (width 1) { body } … else { scalar }</c>: exactly one path runs. Without
    /// <paramref name="scalar"/> there is no else (the code after the chain finishes the work). With
    /// <paramref name="narrowestFinishes"/> the narrowest width is an <c>if</c> of its own, which also takes what the
    /// wider path left.
    /// </summary>
    public static void Chain(CodeWriter w, IReadOnlyList<SimdWidth> widths, Action<SimdWidth> body, Action? scalar = null,
        Func<SimdWidth, string>? guard = null, bool narrowestFinishes = false)
    {
        guard ??= x => x.Accelerated;
        for (int i = 0; i < widths.Count; i++)
        {
            bool own = i == 0 || narrowestFinishes && i == widths.Count - 1;
            using (w.Block($"{(own ? "if" : "else if")} ({guard(widths[i])})"))
            {
                body(widths[i]);
            }
        }
        if (scalar is null) return;
        using (w.BlockIf(widths.Count > 0, "else"))
        {
            scalar();
        }
    }

    /// <summary>
    /// One <c>if (width) statement</c> line per width, widest first: each a loop that continues where the wider
    /// one stopped (the scalar loop after them takes the rest).
    /// </summary>
    public static void CascadeLines(CodeWriter w, IEnumerable<SimdWidth> widths, Func<SimdWidth, string> statement, Func<SimdWidth, string>? guard = null)
    {
        guard ??= x => x.Accelerated;
        foreach (var width in widths) w.Line($"if ({guard(width)}) {statement(width)}");
    }

    /// <summary>One <c>if (width) { body }</c> block per width, widest first, each continuing where the wider one stopped.</summary>
    public static void Cascade(CodeWriter w, IEnumerable<SimdWidth> widths, Action<SimdWidth> body, Func<SimdWidth, string>? guard = null)
    {
        guard ??= x => x.Accelerated;
        foreach (var width in widths)
        {
            using (w.Block($"if ({guard(width)})"))
            {
                body(width);
            }
        }
    }
}
