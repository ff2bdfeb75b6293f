// Consumer program of EndToEndTests: runs the generated LeNet5 and LeNet300 classes on every test digit
// and writes their outputs (float32, little-endian, [count, 10]) for the test to compare with ONNX
// Runtime. Copied into a temporary project as Program.cs; not compiled into the test assembly.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Consumer;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: Consumer <test-images.npy> <output folder>");
    return 2;
}

float[] images = Npy.ReadFloat32(args[0], out int[] shape);
int count = shape[0];
Directory.CreateDirectory(args[1]);

float[] lenet5 = new float[count * LeNet5.OutputLength];
for (int i = 0; i < count; i++)
{
    ReadOnlySpan<float> image = images.AsSpan(i * LeNet5.InputLength, LeNet5.InputLength);
    Span<float> scores = lenet5.AsSpan(i * LeNet5.OutputLength, LeNet5.OutputLength);
    LeNet5.Run(image, scores);
    if (LeNet5.Predict(image) != ArgMax(scores))
    {
        Console.Error.WriteLine($"LeNet5.Predict disagrees with Run on digit {i}");
        return 3;
    }
}

float[] lenet300 = new float[count * LeNet300.OutputLength];
for (int i = 0; i < count; i++)
{
    ReadOnlySpan<float> image = images.AsSpan(i * LeNet300.InputLength, LeNet300.InputLength);
    LeNet300.Run(image, lenet300.AsSpan(i * LeNet300.OutputLength, LeNet300.OutputLength));
}

File.WriteAllBytes(Path.Combine(args[1], "lenet5.bin"), MemoryMarshal.AsBytes(lenet5.AsSpan()).ToArray());
File.WriteAllBytes(Path.Combine(args[1], "lenet300.bin"), MemoryMarshal.AsBytes(lenet300.AsSpan()).ToArray());
Console.WriteLine($"wrote {count} x {LeNet5.OutputLength} outputs of each model; weights {LeNet5.WeightBytes} + {LeNet300.WeightBytes} bytes");
return 0;

static int ArgMax(ReadOnlySpan<float> values)
{
    int best = 0;
    for (int i = 1; i < values.Length; i++)
    {
        if (values[i] > values[best])
        {
            best = i;
        }
    }

    return best;
}

/// <summary>A minimal .npy reader: float32, little-endian, C order, format version 1.0.</summary>
internal static class Npy
{
    public static float[] ReadFloat32(string path, out int[] shape)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY" || bytes[6] != 1)
        {
            throw new InvalidDataException(path + ": not a version 1.0 .npy file");
        }

        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        if (!header.Contains("'<f4'") || header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException(path + ": expected little-endian float32 in C order, found " + header);
        }

        int open = header.IndexOf('(', header.IndexOf("'shape'", StringComparison.Ordinal));
        int close = header.IndexOf(')', open);
        shape = header[(open + 1)..close]
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse)
            .ToArray();

        ReadOnlySpan<byte> payload = bytes.AsSpan(10 + headerLength);
        var data = new float[payload.Length / sizeof(float)];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = BinaryPrimitives.ReadSingleLittleEndian(payload[(i * 4)..]);
        }

        return data;
    }
}
