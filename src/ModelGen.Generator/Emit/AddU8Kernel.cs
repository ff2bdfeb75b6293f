using System;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Add on the uint8 activations between int8 layers (a residual connection), in integers only, as the evaluator's
/// Compress.Int8Add computes it: y = clamp(⌊(a·Ma + b·Mb + c) / 2^shift⌋ + zy, lo, hi), where
/// c = 2^(shift−1) − za·Ma − zb·Mb takes out the zero points and rounds half up. Every intermediate fits an int32
/// (Ma, Mb ≤ 2^20), so the vector paths widen the bytes to int32 lanes and multiply there: 64, 32 or 16 bytes a step.
/// </summary>
internal sealed class AddU8Kernel : IKernel
{
    const string U = "Unsafe";

    public KernelKind Kernel => KernelKind.AddU8;

    public string InputName(ArtifactNode node, int i) => i == 0 ? "a" : "b";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var a = k.Inputs[0]; var b = k.Inputs[1]; var y = k.Y;
        long n = y.ElementCount;
        var add = k.Node.AddU8 ?? throw new FormatException($"AddU8 '{k.Node.Name}' has no zero points, multipliers, shift and clamp");
        int[] m = { add.MultiplierA, add.MultiplierB }, clamp = { add.Lo, add.Hi };
        int za = add.AZero, zb = add.BZero, zy = add.OutZero, shift = add.Shift;
        if (a.Element != TensorElement.UInt8 || b.Element != TensorElement.UInt8 || y.Element != TensorElement.UInt8 || a.ElementCount != n || b.ElementCount != n)
            throw new FormatException($"AddU8 '{k.Node.Name}': a, b and y must be uint8 tensors of one size");
        long c = (1L << (shift - 1)) - (long)za * m[0] - (long)zb * m[1];
        w.Line($"// Add on uint8 activations (a residual connection between int8 layers): y{CodeWriter.Shape(y.Shape)} = a + b, each quantized");
        w.Line($"// as its own (a: zero point {za}, b: {zb}; y: {zy}, scale {ArtifactText.Float(add.OutScale)}), in integers:");
        w.Line($"// y = clamp(((a·{m[0]} + b·{m[1]} + {c}) >> {shift}) + {zy}, {clamp[0]}, {clamp[1]}) (the activation is the clamp).");
        using var method = k.OpenMethod();
        w.Line($"if (a.Length < {n} || b.Length < {n} || y.Length < {n}) throw new ArgumentException(\"buffer too short\");");
        w.Line("ref byte ra = ref MemoryMarshal.GetReference(a);");
        w.Line("ref byte rb = ref MemoryMarshal.GetReference(b);");
        w.Line("ref byte ry = ref MemoryMarshal.GetReference(y);");
        w.Line("int i = 0;");
        var widths = SimdLadder.Widths(k.Simd).Where(x => n >= x.Bytes).ToList();
        if (widths.Count > 1) w.Line("// Vector128 also finishes what the wider loop left when 16 bytes remain, so it is not an else.");
        SimdLadder.Chain(w, widths, width =>
        {
            string v = width.V;
            int bytes = width.Bytes;
            w.Line($"var ma = {v}.Create({m[0]}); var mb = {v}.Create({m[1]}); var bias = {v}.Create({c});");
            w.Line($"var zero = {v}.Create({zy}); var lo = {v}.Create({clamp[0]}); var hi = {v}.Create({clamp[1]});");
            using var steps = w.Block($"for (; i <= {n - bytes}; i += {bytes})");
            w.Line($"var (a0, a1) = {v}.Widen({v}.LoadUnsafe(ref ra, (nuint)i));");
            w.Line($"var (b0, b1) = {v}.Widen({v}.LoadUnsafe(ref rb, (nuint)i));");
            w.Line($"var (a00, a01) = {v}.Widen(a0); var (a10, a11) = {v}.Widen(a1);");
            w.Line($"var (b00, b01) = {v}.Widen(b0); var (b10, b11) = {v}.Widen(b1);");
            string Sum(string x, string z) => $"{v}.Min({v}.Max({v}.ShiftRightArithmetic({v}.AsInt32({x}) * ma + {v}.AsInt32({z}) * mb + bias, {shift}) + zero, lo), hi)";
            w.Line($"var q00 = {Sum("a00", "b00")};");
            w.Line($"var q01 = {Sum("a01", "b01")};");
            w.Line($"var q10 = {Sum("a10", "b10")};");
            w.Line($"var q11 = {Sum("a11", "b11")};");
            w.Line("// Each lane is within 0…255 after the clamp: narrowing keeps it.");
            w.Line($"{v}.StoreUnsafe({v}.Narrow({v}.Narrow({v}.AsUInt32(q00), {v}.AsUInt32(q01)), {v}.Narrow({v}.AsUInt32(q10), {v}.AsUInt32(q11))), ref ry, (nuint)i);");
        }, narrowestFinishes: true);
        w.Line($"for (; i < {n}; i++) {U}.Add(ref ry, i) = (byte)Math.Clamp(((({U}.Add(ref ra, i) * {m[0]} + {U}.Add(ref rb, i) * {m[1]} + {c}) >> {shift}) + {zy}), {clamp[0]}, {clamp[1]});");
    }
}
