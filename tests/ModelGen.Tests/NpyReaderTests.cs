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

    /// <summary>A .npy file with the header text exactly as given (no padding), for malformed headers.</summary>
    static byte[] Raw(string header, byte[] data, int major = 1, int minor = 0)
    {
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, (byte)minor };
        byte[] text = major == 3 ? Encoding.UTF8.GetBytes(header) : Encoding.Latin1.GetBytes(header);
        if (major == 1) bytes.AddRange(BitConverter.GetBytes((ushort)text.Length));
        else bytes.AddRange(BitConverter.GetBytes((uint)text.Length));
        bytes.AddRange(text);
        bytes.AddRange(data);
        return [.. bytes];
    }

    static ModelGenException Refuse(byte[] bytes, string code)
    {
        var e = Assert.Throws<ModelGenException>(() => NpyReader.Read(bytes, "bad.npy"));
        Assert.Equal(code, e.Code);
        Assert.Equal("bad.npy", e.File);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\r', e.Message);
        return e;
    }

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

    [Theory]
    [InlineData("|u1")]
    [InlineData("<u1")]
    [InlineData("u1")]
    public void EveryUint8SpellingIsRead(string descr)
    {
        var a = NpyReader.Read(Npy(descr, "(2,)", [3, 200]), "u.npy", uint8Scale: 2);
        Assert.Equal([2], a.Shape);
        Assert.Equal([1.5f, 100f], a.Data);
        Assert.Equal(descr, a.DType);
    }

    [Theory]
    [InlineData("{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}\n", 1)]
    [InlineData("{'fortran_order':False,'shape':(2,),'descr':'<f4',}", 2)]
    [InlineData("  { 'shape' : ( 2 , ) ,\t'descr' : '<f4' , 'fortran_order' : False , }   \n", 3)]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n", 1)]
    public void HeaderKeysInAnyOrderAndEitherQuote(string header, int major)
    {
        var a = NpyReader.Read(Raw(header, Floats(-1.25f, 8), major), "h.npy");
        Assert.Equal([2], a.Shape);
        Assert.Equal([-1.25f, 8f], a.Data);
    }

    [Fact]
    public void ReadsVersion3AndEmptyArrays()
    {
        var v3 = NpyReader.Read(Npy("<i8", "(3,)", [.. new long[] { 1, -1, 1L << 40 }.SelectMany(BitConverter.GetBytes)], major: 3), "v3.npy");
        Assert.Equal([1f, -1f, 1099511627776f], v3.Data);
        var empty = NpyReader.Read(Npy("<f4", "(0, 3)", []), "e.npy");
        Assert.Equal([0, 3], empty.Shape);
        Assert.Empty(empty.Data);
    }

    [Fact]
    public void ReadsFromAPath()
    {
        string path = Path.Combine(Path.GetTempPath(), "npy-" + Guid.NewGuid() + ".npy");
        File.WriteAllBytes(path, Npy("<f8", "(1, 2)", [.. BitConverter.GetBytes(1e-3), .. BitConverter.GetBytes(1e30)]));
        try
        {
            var a = NpyReader.Read(path);
            Assert.Equal([1, 2], a.Shape);
            Assert.Equal([1e-3f, 1e30f], a.Data);
            Assert.Equal("<f8", a.DType);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ReadsTheMnistCalibrationFile()
    {
        string path = TestData.Mnist("calibration-256.npy");
        var a = NpyReader.Read(path);
        Assert.Equal([256, 1, 28, 28], a.Shape);
        Assert.Equal("<f4", a.DType);
        Assert.Equal(256 * 28 * 28, a.Data.Length);
        Assert.All(a.Data, v => Assert.InRange(v, 0f, 1f));
        Assert.Contains(a.Data, v => v > 0.5f);
        Assert.Contains(a.Data, v => v == 0f);
        // The header itself says the same shape, and the values are the file's bytes.
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        Assert.Contains("'shape': (256, 1, 28, 28)", Encoding.ASCII.GetString(bytes, 10, headerLength));
        Assert.Equal(BitConverter.ToSingle(bytes, 10 + headerLength + 4 * 300), a.Data[300]);
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
        var e = Refuse(bytes, code);
        if (code == ErrorCodes.DataTypeUnsupported)
            Assert.Contains(kind == "fortran" ? "numpy.ascontiguousarray" : "astype(numpy.float32)", e.Message);
        if (kind == "big-endian") Assert.Contains("big-endian", e.Message);
        if (kind == "truncated") Assert.Contains("truncated", e.Message);
    }

    public static TheoryData<string, string> MalformedHeaders => new()
    {
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", "tuple" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", "tuple" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,,), }", "was expected" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", "was expected" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1.0,), }", "whole number" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': ('1',), }", "whole number" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -1), }", "0 or more" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 99999999999999999999999999999), }", "larger than any data file" },
        { "{'descr': '<f4', 'fortran_order': False, }", "no 'shape'" },
        { "{'fortran_order': False, 'shape': (1,), }", "no 'descr'" },
        { "{'descr': '<f4', 'shape': (1,), }", "no 'fortran_order'" },
        { "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "not True or False" },
        { "{'descr': '<f4', 'fortran_order': false, 'shape': (1,), }", "not a literal" },
        { "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "twice" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", "end of the header" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "ends where" },
        { "{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }", "was expected" },
        { "{'descr': '<f4\n', 'fortran_order': False, 'shape': (1,), }", "not closed" },
        { "{descr: '<f4', 'fortran_order': False, 'shape': (1,), }", "quoted key" },
        { "['descr', '<f4']", "'{'" },
        { "", "ends where" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': " + new string('(', 5000) + "1" + new string(')', 5000) + ", }", "nested" },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void MalformedHeadersAreMG0201(string header, string said)
    {
        var e = Refuse(Raw(header, Floats(1)), ErrorCodes.DataFileInvalid);
        Assert.Contains(said, e.Message);
    }

    [Fact]
    public void StructuredDtypesAndOtherVersionsAreRefused()
    {
        Refuse(Raw("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", Floats(1)), ErrorCodes.DataTypeUnsupported);
        Refuse(Raw("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", new byte[12]), ErrorCodes.DataTypeUnsupported);
        Refuse(Raw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new byte[8]), ErrorCodes.DataTypeUnsupported);
        Refuse(Raw("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", new byte[2]), ErrorCodes.DataTypeUnsupported);
        Refuse(Raw("{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", new byte[8]), ErrorCodes.DataTypeUnsupported);
        Assert.Contains("1.1", Refuse(Raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Floats(1), minor: 1), ErrorCodes.DataFileInvalid).Message);
        Refuse(Npy("<f4", "(1,)", Floats(1), major: 0), ErrorCodes.DataFileInvalid);
    }

    [Fact]
    public void HeadersOver64KiBOrBeyondTheFileAreMG0201()
    {
        string longHeader = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }".PadRight(NpyReader.MaxHeaderLength + 1) + "\n";
        Assert.Contains("65536", Refuse(Raw(longHeader, Floats(1), major: 2), ErrorCodes.DataFileInvalid).Message);
        // Exactly at the limit is still read.
        string atLimit = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }".PadRight(NpyReader.MaxHeaderLength - 1) + "\n";
        Assert.Equal([1f], NpyReader.Read(Raw(atLimit, Floats(1), major: 2), "ok.npy").Data);
        byte[] v2 = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, (byte)'{'];
        Refuse(v2, ErrorCodes.DataFileInvalid);
        byte[] v1 = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 100, 0, (byte)'{'];
        Assert.Contains("truncated", Refuse(v1, ErrorCodes.DataFileInvalid).Message);
    }

    [Theory]
    [InlineData("(4294967296, 4294967296)")]
    [InlineData("(2147483647, 2147483647)")]
    [InlineData("(65536, 65536, 65536)")]
    [InlineData("(2147483647,)")]
    [InlineData("(536870912,)")]
    [InlineData("(0, 4294967296)")]
    public void HugeDeclaredShapesFailFastWithoutAllocating(string shape)
    {
        byte[] bytes = Npy("<f8", shape, Floats(1));
        NpyReader.Read(Npy("<f4", "(1,)", Floats(1)), "warm.npy");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ModelGenException>(() => NpyReader.Read(bytes, "huge.npy"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(ErrorCodes.DataFileInvalid, e.Code);
        Assert.True(allocated < 256 * 1024, $"{allocated} bytes allocated");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), clock.Elapsed.ToString());
    }

    [Fact]
    public void EveryTruncationOfAValidFileIsACodedError()
    {
        byte[][] files =
        [
            Npy("<f4", "(2, 2)", Floats(1, 2, 3, 4)),
            Npy("|u1", "(3,)", [1, 2, 3], major: 2),
            Npy("<i8", "(1,)", BitConverter.GetBytes(5L), major: 3),
            Npy("<f4", "()", Floats(42)),
        ];
        foreach (var bytes in files)
        {
            NpyReader.Read(bytes, "whole.npy");
            for (int length = 0; length < bytes.Length; length++)
            {
                var e = Assert.Throws<ModelGenException>(() => NpyReader.Read(bytes[..length], "cut.npy"));
                Assert.Equal(ErrorCodes.DataFileInvalid, e.Code);
            }
        }
    }

    /// <summary>Random corruption of valid files (seeded): every result is an array that fits the file or a coded error.</summary>
    [Fact]
    public void CorruptedFilesNeverThrowAnythingElse()
    {
        var random = new Random(20261125);
        byte[][] seeds =
        [
            Npy("<f4", "(2, 3)", Floats(1, 2, 3, 4, 5, 6)),
            Npy("|u1", "(1, 2, 2)", [1, 2, 3, 4], major: 2),
            Npy("<f8", "()", BitConverter.GetBytes(1.0), major: 3),
        ];
        const string alphabet = "{}()[],:'\" \n0123456789-LTrueFalsNon<>|f4u1i8descrshapefortran_order\\";
        for (int trial = 0; trial < 20000; trial++)
        {
            byte[] bytes = [.. seeds[trial % seeds.Length]];
            int edits = 1 + random.Next(4);
            for (int k = 0; k < edits; k++)
            {
                int at = random.Next(bytes.Length);
                bytes[at] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)alphabet[random.Next(alphabet.Length)],
                    _ => (byte)(bytes[at] ^ (1 << random.Next(8))),
                };
            }
            if (random.Next(4) == 0) bytes = bytes[..random.Next(bytes.Length + 1)];
            try
            {
                var a = NpyReader.Read(bytes, "fuzz.npy");
                Assert.Equal(a.Shape.Aggregate(1L, (p, d) => p * d), a.Data.Length);
                Assert.True(a.Data.Length <= bytes.Length);
            }
            catch (ModelGenException e)
            {
                Assert.True(e.Code is ErrorCodes.DataFileInvalid or ErrorCodes.DataTypeUnsupported, e.Canonical);
                Assert.DoesNotContain('\n', e.Message);
            }
        }
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(-1f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void ABadUint8ScaleIsMG0007(float scale)
    {
        var e = Assert.Throws<ModelGenException>(() => NpyReader.Read(Npy("|u1", "(1,)", [1]), "u.npy", scale));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
    }

    [Fact]
    public void AMissingFileIsMG0001()
    {
        var e = Assert.Throws<ModelGenException>(() => NpyReader.Read(Path.Combine(Path.GetTempPath(), "no-such-file-" + Guid.NewGuid() + ".npy")));
        Assert.Equal(ErrorCodes.FileNotFound, e.Code);
    }
}
