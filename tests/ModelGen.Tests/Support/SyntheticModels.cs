namespace ModelGen.Tests.Support;

/// <summary>
/// Models of the shapes users bring, with seeded random weights, for tests and benchmarks where no
/// trained model of that kind is in the repository.
/// </summary>
public static class SyntheticModels
{
    static float[] R(int n, int seed, float scale) => [.. OnnxBuilder.Random(n, seed).Select(v => v * scale)];

    /// <summary>
    /// A MobileNet-v1 style depthwise-separable CNN for 28x28 digits: a 3x3 stem, three depthwise 3x3 +
    /// pointwise 1x1 pairs (two with stride 2), ReLU6 after each, global average pooling, a 10-way Gemm.
    /// About 12k parameters, 1.4M multiply-adds.
    /// </summary>
    public static OnnxBuilder DepthwiseSeparableCnn()
    {
        var b = new OnnxBuilder(13, "dwsep").Input("image", 1, 1, 28, 28).Initializer("zero", [], [0f]).Initializer("six", [], [6f]);
        string x = "image";
        int channels = 1, seed = 1;
        void Conv(string name, int outChannels, int kernel, int stride, int group)
        {
            int inPerGroup = channels / group;
            float scale = MathF.Sqrt(2f / (inPerGroup * kernel * kernel));
            b.Initializer($"{name}.w", [outChannels, inPerGroup, kernel, kernel], R(outChannels * inPerGroup * kernel * kernel, seed++, scale))
                .Initializer($"{name}.b", [outChannels], R(outChannels, seed++, 0.1f));
            int pad = kernel / 2;
            b.Node("Conv", [x, $"{name}.w", $"{name}.b"], [name], ("pads", new[] { pad, pad, pad, pad }), ("strides", new[] { stride, stride }), ("group", group))
                .Node("Clip", [name, "zero", "six"], [name + ".relu6"]);
            x = name + ".relu6";
            channels = outChannels;
        }
        Conv("stem", 16, 3, 1, 1);
        Conv("dw1", 16, 3, 2, 16);
        Conv("pw1", 32, 1, 1, 1);
        Conv("dw2", 32, 3, 1, 32);
        Conv("pw2", 64, 1, 1, 1);
        Conv("dw3", 64, 3, 2, 64);
        Conv("pw3", 128, 1, 1, 1);
        return b.Node("GlobalAveragePool", [x], ["pool"]).Node("Flatten", ["pool"], ["flat"])
            .Initializer("fc.w", [10, 128], R(1280, seed++, 0.1f)).Initializer("fc.b", [10], R(10, seed, 0.1f))
            .Node("Gemm", ["flat", "fc.w", "fc.b"], ["scores"], ("transB", 1)).Output("scores");
    }

    /// <summary>
    /// A keyword-spotting embedding CNN with the shapes and exporter patterns of a tf2onnx export (written here, trained
    /// by nobody): a 76x32 log-mel plane, a 3x3 stem on one channel, then 1x3 and 3x1 convolutions with pads over
    /// 24 to 96 channels, max pooling between stages, each convolution followed by LeakyRelu and a Max with a constant
    /// (TensorFlow's clipped leaky ReLU), 20 convolutions in all, a global average pool and a 96-wide embedding.
    /// </summary>
    public static OnnxBuilder KeywordSpottingCnn()
    {
        var b = new OnnxBuilder(13, "kws").Input("mels", 1, 1, 76, 32).Initializer("floor", [], [-0.4f]);
        string x = "mels";
        int channels = 1, seed = 100, index = 0;
        void Conv(int outChannels, int kh, int kw)
        {
            string name = $"conv{index++}";
            float scale = MathF.Sqrt(2f / (channels * kh * kw));
            b.Initializer($"{name}.w", [outChannels, channels, kh, kw], R(outChannels * channels * kh * kw, seed++, scale))
                .Initializer($"{name}.b", [outChannels], R(outChannels, seed++, 0.05f));
            b.Node("Conv", [x, $"{name}.w", $"{name}.b"], [name], ("pads", new[] { kh / 2, kw / 2, kh / 2, kw / 2 }))
                .Node("LeakyRelu", [name], [name + ".leaky"], ("alpha", 0.2f))
                .Node("Max", [name + ".leaky", "floor"], [name + ".max"]);
            x = name + ".max";
            channels = outChannels;
        }
        void Pool(int kh, int kw)
        {
            b.Node("MaxPool", [x], [x + ".pool"], ("kernel_shape", new[] { kh, kw }), ("strides", new[] { kh, kw }));
            x += ".pool";
        }
        Conv(24, 3, 3);
        for (int i = 0; i < 3; i++) { Conv(24, 1, 3); Conv(24, 3, 1); }
        Pool(2, 2);
        for (int i = 0; i < 3; i++) { Conv(48, 1, 3); Conv(48, 3, 1); }
        Pool(2, 2);
        for (int i = 0; i < 3; i++) { Conv(96, 1, 3); Conv(96, 3, 1); }
        Conv(96, 3, 3);
        return b.Node("GlobalAveragePool", [x], ["pooled"]).Node("Flatten", ["pooled"], ["embedding"]).Output("embedding");
    }

    /// <summary>x [1, inputs] → Gemm (hidden) → Relu → Gemm (outputs): (inputs + outputs)·hidden float32 weights.</summary>
    public static OnnxBuilder LargeMlp(int inputs, int hidden, int outputs)
    {
        float scale = MathF.Sqrt(2f / inputs);
        return new OnnxBuilder(13, "large").Input("x", 1, inputs)
            .Initializer("w1", [hidden, inputs], R(hidden * inputs, 11, scale)).Initializer("b1", [hidden], R(hidden, 12, 0.1f))
            .Node("Gemm", ["x", "w1", "b1"], ["h"], ("transB", 1)).Node("Relu", ["h"], ["r"])
            .Initializer("w2", [outputs, hidden], R(outputs * hidden, 13, MathF.Sqrt(2f / hidden))).Initializer("b2", [outputs], R(outputs, 14, 0.1f))
            .Node("Gemm", ["r", "w2", "b2"], ["y"], ("transB", 1)).Output("y");
    }
}
