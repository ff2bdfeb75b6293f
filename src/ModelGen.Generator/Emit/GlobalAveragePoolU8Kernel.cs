using System;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// GlobalAveragePool on the uint8 activations between two int8 layers: the same quantization in and out
/// (the layer after calibrated its input on the pooling's input), so the mean of the real values is the
/// real value of the mean byte; that mean is rounded half up in integers, as the evaluator's
/// Int8Quantization.AverageBytes does. Sums of 16 bytes at a time (Vector128 widened twice).
/// </summary>
internal sealed class GlobalAveragePoolU8Kernel : IKernel
{
    const string U = "Unsafe", V128 = "Vector128";

    public KernelKind Kernel => KernelKind.GlobalAveragePoolU8;

    public string InputName(ArtifactNode node, int i) => "x";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var x = k.Inputs[0]; var y = k.Y;
        if (x.Shape.Length < 3 || x.Element != TensorElement.UInt8 || y.Element != TensorElement.UInt8 || y.ElementCount != (long)x.Shape[0] * x.Shape[1])
            throw new FormatException($"GlobalAveragePoolU8 '{k.Node.Name}': x must be uint8 [N, C, spatial…] and y uint8 [N, C, 1…]");
        long planes = y.ElementCount, n = x.ElementCount / planes;
        if (n * 255 > int.MaxValue) throw new FormatException($"GlobalAveragePoolU8 '{k.Node.Name}': planes of {n} bytes are too large to sum in int32");
        w.Line($"// GlobalAveragePool on uint8 activations (the int8 layers around it share one quantization): y{CodeWriter.Shape(y.Shape)} = the mean");
        w.Line($"// of each plane of {n} bytes of x{CodeWriter.Shape(x.Shape)}, rounded half up: (sum + {n / 2}) / {n}.");
        using var method = k.OpenMethod();
        w.Line($"if (x.Length < {x.ElementCount} || y.Length < {y.ElementCount}) throw new ArgumentException(\"buffer too short\");");
        w.Line("ref byte rx = ref MemoryMarshal.GetReference(x);");
        using var planeLoop = w.For("plane", planes, out string plane);
        w.Line($"ref byte p = ref {KernelEmitter.At(U, "rx", plane, n)};");
        w.Line("int sum = 0, i = 0;");
        if (k.Simd != SimdLevel.None && n >= 16)
        {
            w.Line("// Per step 16 bytes widened and added into four 32-bit lanes.");
            using (w.Block($"if ({V128}.IsHardwareAccelerated)"))
            {
                w.Line($"var lanes = {V128}<uint>.Zero;");
                using (w.Block($"for (; i <= {n - 16}; i += 16)"))
                {
                    w.Line($"var bytes = {V128}.LoadUnsafe(ref p, (nuint)i);");
                    w.Line($"var words = {V128}.WidenLower(bytes) + {V128}.WidenUpper(bytes);");
                    w.Line($"lanes += {V128}.WidenLower(words) + {V128}.WidenUpper(words);");
                }
                w.Line($"sum = (int){V128}.Sum(lanes);");
            }
        }
        w.Line($"for (; i < {n}; i++) sum += {U}.Add(ref p, i);");
        w.Line($"y[{plane}] = (byte)((sum + {n / 2}) / {n});");
    }
}
