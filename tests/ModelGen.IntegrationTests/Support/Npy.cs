using System.Buffers.Binary;
using System.Text;

namespace ModelGen.IntegrationTests.Support;

/// <summary>Reads NumPy .npy files (little-endian, C order): just enough for data/mnist; writes float32 ones.</summary>
internal static class Npy
{
    /// <summary>Writes a version-1.0 float32 .npy (the header padded so the data starts on a 64-byte boundary).</summary>
    public static void WriteFloat32(string path, int[] shape, float[] data)
    {
        string dims = string.Join(", ", shape) + (shape.Length == 1 ? "," : "");
        string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
        header = header.PadRight((10 + header.Length + 1 + 63) / 64 * 64 - 10 - 1) + "\n";
        var bytes = new byte[10 + header.Length + data.Length * 4];
        bytes[0] = 0x93;
        Encoding.ASCII.GetBytes("NUMPY").CopyTo(bytes, 1);
        bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header).CopyTo(bytes, 10);
        for (int i = 0; i < data.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(10 + header.Length + i * 4), data[i]);
        }

        File.WriteAllBytes(path, bytes);
    }

    public static (int[] Shape, float[] Data) ReadFloat32(string path)
    {
        var (shape, payload) = Read(path, "<f4");
        var data = new float[payload.Length / 4];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = BinaryPrimitives.ReadSingleLittleEndian(payload.AsSpan(i * 4));
        }

        return (shape, data);
    }

    public static (int[] Shape, long[] Data) ReadInt64(string path)
    {
        var (shape, payload) = Read(path, "<i8");
        var data = new long[payload.Length / 8];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = BinaryPrimitives.ReadInt64LittleEndian(payload.AsSpan(i * 8));
        }

        return (shape, data);
    }

    private static (int[] Shape, byte[] Payload) Read(string path, string descr)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
        {
            throw new InvalidDataException(path + " is not a .npy file");
        }

        int major = bytes[6];
        int headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        int headerStart = major == 1 ? 10 : 12;
        string header = Encoding.Latin1.GetString(bytes, headerStart, headerLength);
        if (!header.Contains("'" + descr + "'") || header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException($"{path}: expected {descr} in C order, header {header}");
        }

        int open = header.IndexOf('(', header.IndexOf("'shape'", StringComparison.Ordinal));
        int close = header.IndexOf(')', open);
        int[] shape = header[(open + 1)..close]
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse)
            .ToArray();
        return (shape, bytes[(headerStart + headerLength)..]);
    }
}
