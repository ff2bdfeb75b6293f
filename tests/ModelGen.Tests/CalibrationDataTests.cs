using System.IO.Compression;
using Google.Protobuf;
using ModelGen.Compiler.Data;
using ModelGen.Onnx;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>Calibration data in every format, checked against the model's inputs; bad data is a coded error.</summary>
public sealed class CalibrationDataTests
{
    static readonly DataInput[] Image = [new("image", [1, 1, 2, 2])];
    static readonly DataInput[] Two = [new("a", [1, 3]), new("b", [1, 2])];

    static string Dir() => Directory.CreateTempSubdirectory("modelgen-data").FullName;

    static string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(Dir(), name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static string Npz(bool compressed, params (string Name, byte[] Npy)[] arrays)
    {
        string path = Path.Combine(Dir(), "data.npz");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            foreach (var (name, bytes) in arrays)
            {
                using var s = zip.CreateEntry(name + ".npy", compressed ? CompressionLevel.Optimal : CompressionLevel.NoCompression).Open();
                s.Write(bytes);
            }
        return path;
    }

    static byte[] Pb(int[] shape, float[] values) => OnnxBuilder.Tensor("t", shape, values).ToByteArray();

    [Fact]
    public void SamplesSavedAsTheModelsInputWithALeadingSampleAxisAreRead()
    {
        // An input [1, 3, 2] and a file (4, 1, 3, 2): each sample as the model takes it, batch axis included.
        var set = CalibrationData.Load(Write("x.npy", NpyReaderTests.Npy("<f4", "(4, 1, 3, 2)", NpyReaderTests.Floats([.. Enumerable.Range(0, 24).Select(i => (float)i)]))), [new DataInput("x", [1, 3, 2])]);
        Assert.Equal(4, set.Count);
        Assert.Equal([6f, 7f, 8f, 9f, 10f, 11f], set.Sample(0, 1).ToArray());
        // With BatchSize 2 the input is [2, 3]: a (5, 2, 3) file is ten samples of (3).
        var batched = CalibrationData.Load(Write("b.npy", NpyReaderTests.Npy("<f4", "(5, 2, 3)", NpyReaderTests.Floats([.. Enumerable.Range(0, 30).Select(i => (float)i)]))), [new DataInput("x", [2, 3])]);
        Assert.Equal(10, batched.Count);
        // Any other layout names both it may take.
        var e = Assert.Throws<ModelGenException>(() => CalibrationData.Load(Write("c.npy", NpyReaderTests.Npy("<f4", "(4, 2, 3, 1)", NpyReaderTests.Floats([.. Enumerable.Range(0, 24).Select(i => (float)i)]))), [new DataInput("x", [1, 3, 2])]));
        Assert.Contains("(N, 3, 2)", e.Message);
        Assert.Contains("(N, 1, 3, 2)", e.Message);
    }

    [Fact]
    public void NpySamplesStackOnAxisZero()
    {
        var set = CalibrationData.Load(Write("x.npy", NpyReaderTests.Npy("<f4", "(2, 1, 2, 2)", NpyReaderTests.Floats(1, 2, 3, 4, 5, 6, 7, 8))), Image);
        Assert.Equal(2, set.Count);
        Assert.Equal([5f, 6f, 7f, 8f], set.Sample(0, 1).ToArray());
    }

    [Fact]
    public void Uint8ImagesAreScaled()
    {
        var set = CalibrationData.Load(Write("u.npy", NpyReaderTests.Npy("|u1", "(1, 1, 2, 2)", [0, 255, 51, 102])), Image, uint8Scale: 255);
        Assert.Equal([0f, 1f, 0.2f, 0.4f], set.Sample(0, 0).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NpzGivesEachInputItsArrayByName(bool compressed)
    {
        string path = Npz(compressed,
            ("b", NpyReaderTests.Npy("<f8", "(2, 2)", [.. new double[] { 10, 11, 12, 13 }.SelectMany(BitConverter.GetBytes)])),
            ("a", NpyReaderTests.Npy("<f4", "(2, 3)", NpyReaderTests.Floats(1, 2, 3, 4, 5, 6))));
        var set = CalibrationData.Load(path, Two);
        Assert.Equal(2, set.Count);
        Assert.Equal([4f, 5f, 6f], set.Sample(0, 1).ToArray());
        Assert.Equal([12f, 13f], set.Sample(1, 1).ToArray());
    }

    [Fact]
    public void PbFilesAndOnnxTestFoldersAreRead()
    {
        var single = CalibrationData.Load(Write("x.pb", Pb([3, 1, 2, 2], [.. Enumerable.Range(0, 12).Select(i => (float)i)])), Image);
        Assert.Equal(3, single.Count);
        Assert.Equal([8f, 9f, 10f, 11f], single.Sample(0, 2).ToArray());

        string root = Dir();
        for (int set = 0; set < 2; set++)
        {
            string folder = Directory.CreateDirectory(Path.Combine(root, $"test_data_set_{set}")).FullName;
            File.WriteAllBytes(Path.Combine(folder, "input_0.pb"), Pb([1, 3], [set, set, set]));
            File.WriteAllBytes(Path.Combine(folder, "input_1.pb"), Pb([1, 2], [-set, -set]));
        }
        var sets = CalibrationData.Load(root, Two);
        Assert.Equal(2, sets.Count);
        Assert.Equal([1f, 1f, 1f], sets.Sample(0, 1).ToArray());
        Assert.Equal([-1f, -1f], sets.Sample(1, 1).ToArray());
    }

    [Fact]
    public void TheMnistCalibrationFileFitsLeNet()
    {
        var set = CalibrationData.Load(TestData.Mnist("calibration-256.npy"), [new DataInput("image", [1, 1, 28, 28])]);
        Assert.Equal(256, set.Count);
    }

    public static TheoryData<string> Bad => ["shape", "count", "missing-name", "two-inputs-npy", "extension", "zip", "pb", "empty-folder", "no-samples"];

    [Theory]
    [MemberData(nameof(Bad))]
    public void BadDataIsACodedErrorNamingTheFile(string kind)
    {
        string path = kind switch
        {
            "shape" => Write("x.npy", NpyReaderTests.Npy("<f4", "(2, 3)", NpyReaderTests.Floats(1, 2, 3, 4, 5, 6))),
            "count" => Npz(false, ("a", NpyReaderTests.Npy("<f4", "(2, 3)", NpyReaderTests.Floats(1, 2, 3, 4, 5, 6))), ("b", NpyReaderTests.Npy("<f4", "(1, 2)", NpyReaderTests.Floats(1, 2)))),
            "missing-name" => Npz(false, ("a", NpyReaderTests.Npy("<f4", "(1, 3)", NpyReaderTests.Floats(1, 2, 3))), ("c", NpyReaderTests.Npy("<f4", "(1, 2)", NpyReaderTests.Floats(1, 2)))),
            "two-inputs-npy" => Write("x.npy", NpyReaderTests.Npy("<f4", "(1, 3)", NpyReaderTests.Floats(1, 2, 3))),
            "extension" => Write("x.csv", [1, 2, 3]),
            "zip" => Write("x.npz", [0x50, 0x4B, 0x03, 0x04, 1, 2, 3]),
            "pb" => Write("x.pb", [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
            "empty-folder" => Dir(),
            _ => Write("x.npy", NpyReaderTests.Npy("<f4", "(0, 1, 2, 2)", [])),
        };
        var inputs = kind is "count" or "missing-name" or "two-inputs-npy" ? Two : Image;
        var e = Assert.Throws<ModelGenException>(() => CalibrationData.Load(path, inputs));
        Assert.Equal(ErrorCodes.DataFileInvalid, e.Code);
        Assert.StartsWith(path, e.File);
    }
}
