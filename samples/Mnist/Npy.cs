using System.Buffers.Binary;
using System.Text;

/// <summary>
/// Reads a NumPy .npy file: format version 1.0, little-endian, C order. The header is a Python dict
/// literal such as <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2000, 1, 28, 28), }</c>.
/// </summary>
internal static class Npy
{
    public delegate T Reader<T>(ReadOnlySpan<byte> bytes);

    public static T[] Read<T>(string path, string descr, out int[] shape, Reader<T> read)
        where T : unmanaged
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY" || bytes[6] != 1)
        {
            throw new InvalidDataException($"{path}: not a version 1.0 .npy file");
        }

        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        if (!header.Contains($"'{descr}'") || header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException($"{path}: expected '{descr}' in C order, found {header}");
        }

        int open = header.IndexOf('(', header.IndexOf("'shape'", StringComparison.Ordinal));
        int close = header.IndexOf(')', open);
        shape = header[(open + 1)..close]
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse)
            .ToArray();

        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        ReadOnlySpan<byte> payload = bytes.AsSpan(10 + headerLength);
        var values = new T[payload.Length / size];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = read(payload.Slice(i * size, size));
        }

        return values;
    }
}
