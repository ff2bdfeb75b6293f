using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using ModelGen.Onnx.Proto;
using ModelGen.Tests.Support;

namespace ModelGen.Fuzz;

/// <summary>Writes .npy files: the header padded to 64 bytes as numpy writes it.</summary>
public static class Npy
{
    public static byte[] Write(string descr, int[] shape, byte[] data, int major = 1)
    {
        string dims = shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}";
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        byte[] header = Encoding.Latin1.GetBytes(dict.PadRight(total - prefix - 1) + "\n");
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        if (major == 1) bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        else bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        bytes.AddRange(header);
        bytes.AddRange(data);
        return [.. bytes];
    }

    public static byte[] Float32(int[] shape, float[] values) => Write("<f4", shape, [.. values.SelectMany(BitConverter.GetBytes)]);
}

/// <summary>The seed corpus (the `seeds` command): small valid inputs of every target, a few hundred bytes each.</summary>
public static class Seeds
{
    public static void Write(string corpus)
    {
        void Save(string target, string name, byte[] bytes)
        {
            Directory.CreateDirectory(Path.Combine(corpus, target));
            File.WriteAllBytes(Path.Combine(corpus, target, name), bytes);
        }
        float[] F(int n) => OnnxBuilder.Random(n, n);
        byte[] B(int n, int width) => [.. Enumerable.Range(0, n * width).Select(i => (byte)(i * 29 % 7))];

        // .npy: every dtype read, versions 1 to 3, shapes that stack onto a [1,2,3] input and some that do not.
        Save("npy", "f4-2x2x3.npy", Npy.Float32([2, 2, 3], F(12)));
        Save("npy", "f8-1x2x3-v2.npy", Npy.Write("<f8", [1, 2, 3], B(6, 8), major: 2));
        Save("npy", "u1-3x2x3.npy", Npy.Write("|u1", [3, 2, 3], B(18, 1)));
        Save("npy", "i1-2x3-v3.npy", Npy.Write("|i1", [2, 3], B(6, 1), major: 3));
        Save("npy", "b1-1x2x3.npy", Npy.Write("|b1", [1, 2, 3], B(6, 1)));
        Save("npy", "i4-2x2x3.npy", Npy.Write("<i4", [2, 2, 3], B(12, 4)));
        Save("npy", "i8-6.npy", Npy.Write("<i8", [6], B(6, 8)));
        Save("npy", "f4-scalar.npy", Npy.Write("<f4", [], B(1, 4)));

        // .npz: one array (any name) or x and y by name, stored and deflated.
        Save("npz", "one-stored.npz", Zip(false, ("arr_0", Npy.Float32([2, 2, 3], F(12)))));
        Save("npz", "one-deflated.npz", Zip(true, ("x", Npy.Write("|u1", [1, 2, 3], B(6, 1)))));
        Save("npz", "two-stored.npz", Zip(false, ("x", Npy.Float32([1, 2, 3], F(6))), ("y", Npy.Float32([1, 4], F(4)))));
        Save("npz", "two-deflated.npz", Zip(true, ("x", Npy.Float32([2, 2, 3], F(12))), ("y", Npy.Write("<f8", [2, 4], B(8, 8)))));

        // .pb: TensorProto with raw data or typed fields, each type read.
        Save("pb", "float-raw.pb", OnnxBuilder.Tensor("x", [2, 2, 3], F(12)).ToByteArray());
        var floats = new TensorProto { Name = "x", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 1, 2, 3 }, FloatData = { F(6) } };
        Save("pb", "float-data.pb", floats.ToByteArray());
        Save("pb", "int64-data.pb", new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 2, 3 }, Int64Data = { 1, 2, 3, -4, 5, 6 } }.ToByteArray());
        Save("pb", "int32-raw.pb", new TensorProto { DataType = (int)TensorProto.Types.DataType.Int32, Dims = { 2, 3 }, RawData = ByteString.CopyFrom(B(6, 4)) }.ToByteArray());
        Save("pb", "double-data.pb", new TensorProto { DataType = (int)TensorProto.Types.DataType.Double, Dims = { 1, 2, 3 }, DoubleData = { 1, 2, 3, 4, 5, 6 } }.ToByteArray());

        // ONNX (the onnx and compile targets): tiny models over the operator families.
        Save("onnx", "cnn.onnx", new OnnxBuilder(13).Input("x", null, 1, 6, 6)
            .Initializer("w", [2, 1, 3, 3], F(18)).Initializer("b", [2], F(2))
            .Node("Conv", ["x", "w", "b"], ["c"], ("pads", new[] { 1, 1, 1, 1 }))
            .Initializer("scale", [2], F(2)).Initializer("bias", [2], F(2)).Initializer("mean", [2], [0.1f, 0.2f]).Initializer("var", [2], [1f, 2f])
            .Node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"])
            .Node("Relu", ["n"], ["r"]).Node("MaxPool", ["r"], ["p"], ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 }))
            .Node("Flatten", ["p"], ["f"]).Initializer("fw", [3, 18], F(54)).Initializer("fb", [3], F(3))
            .Node("Gemm", ["f", "fw", "fb"], ["g"], ("transB", 1)).Node("Softmax", ["g"], ["y"]).Output("y", 1, 3).Bytes());
        Save("onnx", "mlp.onnx", new OnnxBuilder(11).Input("x", 1, 4).Initializer("w", [4, 3], F(12)).Initializer("b", [3], F(3))
            .Node("MatMul", ["x", "w"], ["m"]).Node("Add", ["m", "b"], ["a"]).Node("Sigmoid", ["a"], ["y"]).Output("y").Bytes());
        Save("onnx", "shapes.onnx", new OnnxBuilder(13).Input("x", 1, 2, 3, 4)
            .Node("Shape", ["x"], ["s"]).Initializer("zero", [0L]).Node("Gather", ["s", "zero"], ["n"], ("axis", 0))
            .Initializer("rest", [-1L]).Node("Concat", ["n", "rest"], ["target"], ("axis", 0))
            .Node("Reshape", ["x", "target"], ["flat"]).Node("Transpose", ["x"], ["t"], ("perm", new[] { 0, 2, 1, 3 }))
            .Initializer("starts", [0L, 1L]).Initializer("ends", [1L, 3L]).Initializer("axes", [1L, 2L])
            .Node("Slice", ["t", "starts", "ends", "axes"], ["sl"]).Node("Flatten", ["sl"], ["sf"])
            .Node("Concat", ["flat", "sf"], ["y"], ("axis", 1)).Output("y").Bytes());
        Save("onnx", "resize-pad-reduce.onnx", new OnnxBuilder(13).Input("x", 1, 2, 3, 3)
            .Initializer("roi", [0], []).Initializer("scales", [4], [1f, 1f, 2f, 2f])
            .Node("Resize", ["x", "roi", "scales"], ["r"], ("mode", "linear"))
            .Initializer("pads", [0L, 0L, 1L, 1L, 0L, 0L, 1L, 1L]).Node("Pad", ["r", "pads"], ["p"], ("mode", "reflect"))
            .Node("ReduceMean", ["p"], ["m"], ("axes", new[] { 2, 3 }), ("keepdims", 0)).Output("y").Node("Elu", ["m"], ["y"]).Bytes());
        Save("onnx", "pool-residual.onnx", new OnnxBuilder(13).Input("x", 1, 2, 4, 4)
            .Initializer("w", [2, 1, 3, 3], F(18)).Node("Conv", ["x", "w"], ["d"], ("group", 2), ("pads", new[] { 1, 1, 1, 1 }))
            .Node("Add", ["x", "d"], ["a"]).Node("AveragePool", ["a"], ["p"], ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 }))
            .Node("GlobalAveragePool", ["p"], ["g"]).Initializer("zero", [], [0f]).Initializer("six", [], [6f]).Node("Clip", ["g", "zero", "six"], ["y"]).Output("y").Bytes());
        Save("onnx", "embedding.onnx", new OnnxBuilder(13).IntInput("ids", 1, 3).Initializer("table", [5, 2], F(10))
            .Node("Gather", ["table", "ids"], ["e"]).Initializer("axes", [1L]).Node("Unsqueeze", ["e", "axes"], ["u"]).Output("y").Node("Tanh", ["u"], ["y"]).Bytes());
        Save("onnx", "gru.onnx", new OnnxBuilder(13).Input("x", 2, 1, 3)
            .Initializer("w", [1, 6, 3], F(18)).Initializer("r", [1, 6, 2], F(12))
            .Node("GRU", ["x", "w", "r"], ["seq", "h"], ("hidden_size", 2)).Output("h").Bytes());
        Save("onnx", "convtranspose-split.onnx", new OnnxBuilder(13).Input("x", 1, 1, 3)
            .Initializer("w", [1, 2, 2], F(4)).Node("ConvTranspose", ["x", "w"], ["c"], ("strides", new[] { 2 }))
            .Node("Split", ["c"], ["a", "b"], ("axis", 1)).Node("Mul", ["a", "b"], ["y"]).Output("y").Bytes());
    }

    static byte[] Zip(bool compressed, params (string Name, byte[] Npy)[] arrays)
    {
        var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in arrays)
            {
                var entry = zip.CreateEntry(name + ".npy", compressed ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
                entry.LastWriteTime = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
                using var s = entry.Open();
                s.Write(bytes);
            }
        return memory.ToArray();
    }
}
