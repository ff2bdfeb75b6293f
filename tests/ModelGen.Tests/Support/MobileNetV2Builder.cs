namespace ModelGen.Tests.Support;

/// <summary>
/// A MobileNetV2 of width 0.5 at 128x128 RGB with two classes (the visual-wake-words shape: stem, 17 inverted
/// residual blocks, global average pool, a dense layer), built here with seeded random weights. Tests that need a
/// real-sized depthwise-separable network (kernel sharing, code size) use it: its layer shapes, and so its code
/// and weight bytes, are those of the published architecture; its weights are ours.
/// </summary>
public static class MobileNetV2Builder
{
    /// <summary>(expansion, output channels at width 1, repeats, first stride), from Sandler et al. 2018, table 2.</summary>
    static readonly (int Expansion, int Channels, int Repeats, int Stride)[] Blocks =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

    /// <summary>
    /// The input is "x" [1, 3, 128, 128], the output "y" [1, 2]: the logits (no softmax, so that tests comparing bits
    /// compare the int8 layers' work, not two float32 exponentials).
    /// </summary>
    public static OnnxBuilder Build(int seed = 2018)
    {
        var model = new OnnxBuilder().Input("x", 1, 3, 128, 128)
            .Initializer("zero", [], [0f]).Initializer("six", [], [6f]);
        int layer = 0, channels = 3;
        string tensor = "x";

        // A convolution with bias (batch normalization folded, as exporters leave it), then ReLU6 unless linear.
        string Conv(string input, int inputs, int outputs, int kernel, int stride, int group, bool relu6)
        {
            int id = layer++;
            int fanIn = inputs / group * kernel * kernel;
            model.Initializer($"w{id}", [outputs, inputs / group, kernel, kernel], Scaled(outputs * fanIn, fanIn, seed + 2 * id))
                .Initializer($"b{id}", [outputs], Scaled(outputs, 100, seed + 2 * id + 1));
            int pad = kernel / 2;
            model.Node("Conv", [input, $"w{id}", $"b{id}"], [$"c{id}"], ("group", group), ("pads", new[] { pad, pad, pad, pad }), ("strides", new[] { stride, stride }));
            if (!relu6) return $"c{id}";
            model.Node("Clip", [$"c{id}", "zero", "six"], [$"r{id}"]);
            return $"r{id}";
        }

        tensor = Conv(tensor, channels, 16, 3, 2, 1, relu6: true);
        channels = 16;
        int residual = 0;
        foreach (var (expansion, width1, repeats, firstStride) in Blocks)
        {
            int outputs = Divisible(width1 / 2);
            for (int r = 0; r < repeats; r++)
            {
                int stride = r == 0 ? firstStride : 1, hidden = channels * expansion;
                string block = tensor;
                if (expansion != 1) block = Conv(block, channels, hidden, 1, 1, 1, relu6: true);
                block = Conv(block, hidden, hidden, 3, stride, hidden, relu6: true);
                block = Conv(block, hidden, outputs, 1, 1, 1, relu6: false);
                if (stride == 1 && channels == outputs)
                {
                    model.Node("Add", [tensor, block], [$"add{residual}"]);
                    block = $"add{residual++}";
                }
                tensor = block;
                channels = outputs;
            }
        }

        return model.Node("GlobalAveragePool", [tensor], ["pooled"]).Node("Flatten", ["pooled"], ["flat"])
            .Initializer("dense_w", [channels, 2], Scaled(channels * 2, channels, seed - 1)).Initializer("dense_b", [2], [0.1f, -0.1f])
            .Node("Gemm", ["flat", "dense_w", "dense_b"], ["y"]).Output("y", 1, 2);
    }

    /// <summary>Channels rounded to a multiple of 8, never under 8, as the reference implementation does.</summary>
    static int Divisible(int channels) => Math.Max(8, (channels + 4) / 8 * 8);

    /// <summary>Uniform weights scaled by 1/sqrt(fan-in), so activations keep their range through the depth.</summary>
    static float[] Scaled(int count, int fanIn, int seed)
    {
        float scale = (float)Math.Sqrt(3.0 / fanIn);
        return [.. OnnxBuilder.Random(count, seed).Select(v => v * scale)];
    }
}
