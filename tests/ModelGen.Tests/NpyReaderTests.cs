using System.Text;
using ModelGen.Compiler.Data;
using ModelGen.Onnx;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>The .npy reader: every dtype against known values, the real MNIST file, and hostile files.</summary>
public sealed class NpyReaderTests
{
    /// <summary>A .npy file by hand: magic, version, header padded to 64 bytes with a newline, then the data.</summary>
    internal static byte[] Npy(string descr, string shape, byte[] data, int major = 1, string fortran = "False")
    {
        string dict = $"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}";
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        string header = dict.PadRight(total - prefix - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        if (major == 1) bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        else bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(data);
        return [.. bytes];
    }

    internal static byte[] Floats(params float[] v) => [.. v.SelectMany(BitConverter.GetBytes)];

    [Fact]
    public void ReadsFloat32WithItsShape()
    {
        var a = NpyReader.Read(Npy("<f4", "(2, 3)", Floats(1, 2, 3, 4.5f, -5, 6)), "a.npy");
        Assert.Equal([2, 3], a.Shape);
        Assert.Equal([1, 2, 3, 4.5f, -5, 6], a.Data);
        Assert.Equal("<f4", a.DType);
    }

    [Fact]
    public void ConvertsFloat64Int64Int32AndInt8()
    {
        Assert.Equal([0.25f, -3f], NpyReader.Read(Npy("<f8", "(2,)", [.. BitConverter.GetBytes(0.25), .. BitConverter.GetBytes(-3.0)]), "d.npy").Data);
        Assert.Equal([7f, -9f], NpyReader.Read(Npy("<i8", "(2,)", [.. BitConverter.GetBytes(7L), .. BitConverter.GetBytes(-9L)]), "l.npy").Data);
        Assert.Equal([70000f], NpyReader.Read(Npy("<i4", "(1,)", BitConverter.GetBytes(70000)), "i.npy").Data);
        Assert.Equal([-2f, 5f], NpyReader.Read(Npy("|i1", "(2,)", [0xFE, 5]), "b.npy").Data);
    }

    [Fact]
    public void Uint8IsDividedByTheGivenScale()
    {
        var raw = NpyReader.Read(Npy("|u1", "(1, 3)", [0, 51, 255]), "u.npy");
        Assert.Equal([0f, 51f, 255f], raw.Data);
        var scaled = NpyReader.Read(Npy("|u1", "(1, 3)", [0, 51, 255]), "u.npy", uint8Scale: 255);
        Assert.Equal([0f, 0.2f, 1f], scaled.Data);
    }

    [Fact]
    public void ReadsVersion2HeadersAndScalars()
    {
        var v2 = NpyReader.Read(Npy("<f4", "(1, 1)", Floats(3), major: 2), "v2.npy");
        Assert.Equal([1, 1], v2.Shape);
        var scalar = NpyReader.Read(Npy("<f4", "()", Floats(42)), "s.npy");
        Assert.Empty(scalar.Shape);
        Assert.Equal([42f], scalar.Data);
    }

    [Fact]
    public void ReadsTheMnistCalibrationFile()
    {
        var a = NpyReader.Read(TestData.Mnist("calibration-256.npy"));
        Assert.Equal([256, 1, 28, 28], a.Shape);
        Assert.All(a.Data, v => Assert.InRange(v, 0f, 1f));
        Assert.Contains(a.Data, v => v > 0.5f);
    }

    public static TheoryData<string, string> Refused => new()
    {
        { "fortran", ErrorCodes.DataTypeUnsupported },
        { "big-endian", ErrorCodes.DataTypeUnsupported },
        { "complex", ErrorCodes.DataTypeUnsupported },
        { "magic", ErrorCodes.DataFileInvalid },
        { "truncated", ErrorCodes.DataFileInvalid },
        { "trailing", ErrorCodes.DataFileInvalid },
        { "huge", ErrorCodes.DataFileInvalid },
        { "header-beyond-file", ErrorCodes.DataFileInvalid },
        { "negative", ErrorCodes.DataFileInvalid },
        { "version", ErrorCodes.DataFileInvalid },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void BadFilesAreCodedErrors(string kind, string code)
    {
        byte[] bytes = kind switch
        {
            "fortran" => Npy("<f4", "(2, 1)", Floats(1, 2), fortran: "True"),
            "big-endian" => Npy(">f4", "(1,)", Floats(1)),
            "complex" => Npy("<c8", "(1,)", new byte[8]),
            "magic" => Encoding.ASCII.GetBytes("PK\u0003\u0004 not numpy at all"),
            "truncated" => Npy("<f4", "(4,)", Floats(1, 2, 3)),
            "trailing" => Npy("<f4", "(1,)", Floats(1, 2)),
            "huge" => Npy("<f4", "(4294967296, 4294967296)", Floats(1)),
            "header-beyond-file" => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 0xFF, 0xFF, (byte)'{'],
            "negative" => Npy("<f4", "(-1,)", Floats(1)),
            _ => Npy("<f4", "(1,)", Floats(1), major: 9),
        };
        var e = Assert.Throws<ModelGenException>(() => NpyReader.Read(bytes, "bad.npy"));
        Assert.Equal(code, e.Code);
        Assert.Equal("bad.npy", e.File);
    }

    [Fact]
    public void EveryTruncationOfAValidFileIsACodedError()
    {
        var bytes = Npy("<f4", "(2, 2)", Floats(1, 2, 3, 4));
        for (int length = 0; length < bytes.Length; length++)
            Assert.Throws<ModelGenException>(() => NpyReader.Read(bytes[..length], "cut.npy"));
    }

    [Fact]
    public void AMissingFileIsMG0001()
    {
        var e = Assert.Throws<ModelGenException>(() => NpyReader.Read(Path.Combine(Path.GetTempPath(), "no-such-file-" + Guid.NewGuid() + ".npy")));
        Assert.Equal(ErrorCodes.FileNotFound, e.Code);
    }
}
