namespace ModelGen.Tests.Support;

/// <summary>Paths to the repository's data folder (data/mnist) and a .npy reader for it.</summary>
public static class TestData
{
    public static string Root { get; } = FindRoot();

    public static string Mnist(string file) => Path.Combine(Root, "data", "mnist", file);

    /// <summary>data/audio: mel.onnx and vad.onnx, written by data/audio/make_mel.py.</summary>
    public static string Audio(string file) => Path.Combine(Root, "data", "audio", file);

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")) && Directory.Exists(Path.Combine(dir.FullName, "data")))
                return dir.FullName;
        throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Reads a little-endian C-order .npy (version 1.0) of float32 ('&lt;f4') or int64 ('&lt;i8') as float.</summary>
    public static (float[] Data, int[] Shape) ReadNpy(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        string header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        int start = header.IndexOf('(') + 1, end = header.IndexOf(')');
        int[] shape = [.. header[start..end].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse)];
        int offset = 10 + headerLength;
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var data = new float[count];
        if (header.Contains("'<f4'"))
            Buffer.BlockCopy(bytes, offset, data, 0, (int)count * 4);
        else if (header.Contains("'<i8'"))
            for (int i = 0; i < count; i++) data[i] = BitConverter.ToInt64(bytes, offset + i * 8);
        else throw new NotSupportedException(header);
        return (data, shape);
    }
}
