using System;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// MaxPool on the uint8 activations between two int8 layers: the same quantization in and out, and max
/// commutes with quantizing, so this is exactly the float32 pooling's result quantized. Padding never wins
/// (a window always holds a real value, and every byte is at least the 0 it starts from). 2x2 windows with
/// stride 2 take 16 input bytes of two rows at once and keep the larger of each even and odd pair.
/// </summary>
internal sealed class MaxPoolU8Kernel : IKernel
{
    const string U = "Unsafe", V128 = "Vector128";

    public KernelKind Kernel => KernelKind.MaxPoolU8;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0]; var y = k.Y;
        int[] kernel = k.Window.Kernel, s = k.Window.Strides, d = k.Window.Dilations, p = k.Window.Pads;
        if (x.Shape.Length != 4 || y.Shape.Length != 4 || x.Element != TensorElement.UInt8 || y.Element != TensorElement.UInt8)
            throw new FormatException($"MaxPoolU8 '{k.Node.Name}': x and y must be uint8 [N, C, H, W]");
        int planes = x.Shape[0] * x.Shape[1], h = x.Shape[2], wd = x.Shape[3], oh = y.Shape[2], ow = y.Shape[3];
        w.Line($"// MaxPool on uint8 activations (the int8 layers around it share one quantization): y{CodeWriter.Shape(y.Shape)} = max over {kernel[0]}x{kernel[1]} windows of x{CodeWriter.Shape(x.Shape)},");
        w.Line($"// stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)} (padding never wins).");
        using var method = k.OpenMethod();
        w.Line($"if (x.Length < {x.ElementCount} || y.Length < {y.ElementCount}) throw new ArgumentException(\"buffer too short\");");
        w.Line("ref byte rx = ref MemoryMarshal.GetReference(x);");
        w.Line("ref byte ry = ref MemoryMarshal.GetReference(y);");
        using var planeLoop = w.Block($"for (int plane = 0; plane < {planes}; plane++)");
        using var rowLoop = w.Block($"for (int oy = 0; oy < {oh}; oy++)");
        w.Line("int ox = 0;");
        bool pairs = kernel[0] == 2 && kernel[1] == 2 && s[0] == 2 && s[1] == 2 && d.All(v => v == 1) && p.All(v => v == 0) && 2 * oh <= h;
        if (pairs && k.Simd != SimdLevel.None && wd >= 16)
        {
            w.Line("// 8 outputs from 16 bytes of each of the two rows: the larger of the rows, then of each even and odd byte.");
            // The byte lanes as constants: the first cast picks Create(byte, …), the rest convert as constants.
            string even = "(byte)" + string.Join(", ", Enumerable.Range(0, 16).Select(i => i < 8 ? 2 * i : 255));
            string odd = "(byte)" + string.Join(", ", Enumerable.Range(0, 16).Select(i => i < 8 ? 2 * i + 1 : 255));
            using (w.Block($"if ({V128}.IsHardwareAccelerated)"))
            {
                w.Line($"ref byte r0 = ref {U}.Add(ref rx, (plane * {h} + 2 * oy) * {wd}); ref byte r1 = ref {U}.Add(ref r0, {wd});");
                int last = ow >= 8 && 2 * (ow - 8) + 16 <= wd ? ow - 8 : -1;
                w.Line("// Whole steps of 8 outputs, then (when the row allows) one last step ending at the row's end, which");
                w.Line("// recomputes a few outputs with the same values rather than leaving them to the scalar loop.");
                using (w.Block($"for (; ox <= {ow - 8} && 2 * ox <= {wd - 16}; ox += 8)"))
                    EmitStep(w, "ox", even, odd, oh, ow);
                if (last >= 0 && last % 8 != 0)
                {
                    using (w.Block($"if (ox < {ow})"))
                    {
                        EmitStep(w, CodeWriter.N(last), even, odd, oh, ow);
                        w.Line($"ox = {ow};");
                    }
                }
            }
        }
        using (w.Block($"for (; ox < {ow}; ox++)"))
        {
            w.Line("int best = 0;");
            KernelEmitter.WindowTaps(w, kernel, s, d, p, h, wd, "oy", "ox", () =>
            {
                w.Line($"int v = {U}.Add(ref rx, (plane * {h} + ih) * {wd} + iw);");
                w.Line("if (v > best) best = v;");
            });
            w.Line($"{U}.Add(ref ry, (plane * {oh} + oy) * {ow} + ox) = (byte)best;");
        }
    }

    /// <summary>8 outputs from 16 bytes of each of the two rows, starting at output <paramref name="at"/>.</summary>
    static void EmitStep(CodeWriter w, string at, string even, string odd, int oh, int ow)
    {
        w.Line($"var m = {V128}.Max({V128}.LoadUnsafe(ref r0, (nuint)(2 * {at})), {V128}.LoadUnsafe(ref r1, (nuint)(2 * {at})));");
        w.Line($"var v = {V128}.Max(");
        w.Line($"    {V128}.Shuffle(m, {V128}.Create({even})),");
        w.Line($"    {V128}.Shuffle(m, {V128}.Create({odd})));");
        w.Line($"{U}.WriteUnaligned(ref {U}.Add(ref ry, (plane * {oh} + oy) * {ow} + {at}), {V128}.ToScalar({V128}.AsUInt64(v)));");
    }
}
