using System.IO.Compression;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Onnx;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Files an attacker (or an accident) hands the compiler: links out of the model's folder, FIFOs and devices,
/// bombs that are small on disk and huge once parsed, inflated or folded. Each ends in a coded error within
/// seconds and a bounded allocation.
/// </summary>
public sealed class HostileFileTests
{
    /// <summary>What any one of these cases may allocate: far below the gigabytes the bombs would cost.</summary>
    const long AllocationCap = 256L << 20;

    static ModelGenException Fails(Action compile)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ModelGenException>(compile);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < AllocationCap, $"allocated {allocated:N0} bytes before '{e.Message}'");
        return e;
    }

    static ModelGenException CompileFails(string path) => Fails(() => CompileToSource(path));

    /// <summary>The whole compile, as `modelgen compile` runs it: artifact, its text, and the C# emitted from that.</summary>
    static string CompileToSource(string path)
    {
        var compiled = ModelCompiler.Compile(new CompileOptions { ModelPath = path }, out var prepared);
        var text = ModelGen.Artifact.ArtifactText.Write(compiled);
        string source = ModelGen.Generator.Emit.ModelEmitter.Emit(ModelGen.Artifact.ArtifactText.Read(text));
        ModelCompiler.CheckEmittedSize(source.Length, compiled, prepared);
        return source;
    }

    /// <summary>A model whose initializer 'w' (two floats) is external data at <paramref name="location"/>.</summary>
    static string ModelWithExternalData(string location)
    {
        var b = new OnnxBuilder().Input("x", 1, 2);
        var t = new Onnx.Proto.TensorProto { Name = "w", DataType = 1, DataLocation = Onnx.Proto.TensorProto.Types.DataLocation.External };
        t.Dims.Add(2);
        t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "location", Value = location });
        b.Model.Graph.Initializer.Add(t);
        return b.Node("Add", ["x", "w"], ["y"]).Output("y").Save();
    }

    static string Folder(string path) => Path.GetDirectoryName(path)!;

    static string Secret()
    {
        // A file outside the model's folder with enough bytes for the tensor: what a link must not reach.
        string dir = Directory.CreateTempSubdirectory("modelgen-secret").FullName;
        string file = Path.Combine(dir, "secret.bin");
        File.WriteAllBytes(file, new byte[4096]);
        return file;
    }

    [Fact]
    public void ExternalDataThroughAFolderLinkOutOfTheModelFolderIsRefused()
    {
        string secret = Secret();
        string model = ModelWithExternalData("linkdir/secret.bin");
        Directory.CreateSymbolicLink(Path.Combine(Folder(model), "linkdir"), Folder(secret));
        var e = CompileFails(model);
        Assert.Equal(ErrorCodes.ExternalDataOutsideFolder, e.Code);
        Assert.Contains("'w'", e.Message);
        Assert.Contains(Folder(secret), e.Message);
    }

    [Theory]
    [InlineData("short.bin")]
    [InlineData("a-file-link-with-a-long-name-that-no-size-check-catches.bin")]
    public void ExternalDataThroughAFileLinkOutOfTheModelFolderIsRefused(string name)
    {
        string secret = Secret();
        string model = ModelWithExternalData(name);
        File.CreateSymbolicLink(Path.Combine(Folder(model), name), secret);
        Assert.Equal(ErrorCodes.ExternalDataOutsideFolder, CompileFails(model).Code);
    }

    [Fact]
    public void ExternalDataThroughALinkThatStaysInTheFolderIsRead()
    {
        string model = ModelWithExternalData("link.bin");
        var bytes = new byte[8];
        BitConverter.GetBytes(1.5f).CopyTo(bytes, 0);
        BitConverter.GetBytes(-2f).CopyTo(bytes, 4);
        Directory.CreateDirectory(Path.Combine(Folder(model), "weights"));
        File.WriteAllBytes(Path.Combine(Folder(model), "weights", "w.bin"), bytes);
        File.CreateSymbolicLink(Path.Combine(Folder(model), "link.bin"), "weights/w.bin");
        Assert.Equal([1.5f, -2f], ModelCompiler.Import(model)["w"].Constant!.Floats);
    }

    [Fact]
    public void ExternalDataOffsetsThatOverflowAndNulCharactersAreCodedErrors()
    {
        string model = ModelWithExternalData("w.bin");
        File.WriteAllBytes(Path.Combine(Folder(model), "w.bin"), new byte[8]);
        var proto = OnnxModelLoader.Load(model);
        proto.Graph.Initializer[0].ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "offset", Value = long.MaxValue.ToString() });
        var e = Fails(() => OnnxModelLoader.ReadExternalData(proto.Graph.Initializer[0], model, 8));
        Assert.Equal(ErrorCodes.ExternalDataMissing, e.Code);
        proto.Graph.Initializer[0].ExternalData.Clear();
        proto.Graph.Initializer[0].ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "location", Value = "w.bin\0.txt" });
        Assert.Equal(ErrorCodes.ExternalDataMissing, Fails(() => OnnxModelLoader.ReadExternalData(proto.Graph.Initializer[0], model, 8)).Code);
    }

    [Fact]
    public async Task SpecialFilesAreRefusedWithoutBeingRead()
    {
        if (!OperatingSystem.IsLinux()) return; // mkfifo and /dev/zero: the Linux machines the tests run on
        string dir = Directory.CreateTempSubdirectory("modelgen-special").FullName;
        string zeroLink = Path.Combine(dir, "model.onnx");
        File.CreateSymbolicLink(zeroLink, "/dev/zero");
        var e = CompileFails(zeroLink);
        Assert.Equal(ErrorCodes.NotRegularFile, e.Code);
        Assert.Contains("/dev/zero", e.Message);

        // A FIFO: opening it for reading would wait for a writer forever.
        string fifo = Path.Combine(dir, "data.npy");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo])) mkfifo.WaitForExit();
        var read = Task.Run(() => Assert.Throws<ModelGenException>(() => NpyReader.Read(fifo)));
        Assert.Same(read, await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(30))));
        Assert.Equal(ErrorCodes.NotRegularFile, (await read).Code);

        string calibration = Path.Combine(dir, "calibration.npy");
        File.CreateSymbolicLink(calibration, "/dev/zero");
        Assert.Equal(ErrorCodes.NotRegularFile, Fails(() => CalibrationData.Load(calibration, [new DataInput("x", [1, 2])])).Code);
        string npz = Path.Combine(dir, "calibration.npz");
        File.CreateSymbolicLink(npz, fifo);
        Assert.Equal(ErrorCodes.NotRegularFile, Fails(() => CalibrationData.Load(npz, [new DataInput("x", [1, 2])])).Code);
        string folder = Path.Combine(dir, "folder.onnx");
        Directory.CreateDirectory(folder);
        Assert.Equal(ErrorCodes.NotRegularFile, CompileFails(folder).Code);
    }

    [Fact]
    public void TwentyMillionEmptyNodesAreRefusedBeforeTheyAreParsed()
    {
        // GraphProto field 1 (node), length 0: two bytes a node; ModelProto field 7 (graph) around them.
        const int nodes = 20_000_000;
        var graph = new byte[2 * nodes];
        for (int i = 0; i < nodes; i++) graph[2 * i] = 0x0A;
        var length = new List<byte>();
        for (uint v = (uint)graph.Length; ; v >>= 7)
        {
            if (v < 0x80) { length.Add((byte)v); break; }
            length.Add((byte)(v | 0x80));
        }
        byte[] model = [0x3A, .. length, .. graph];
        string path = Path.Combine(Directory.CreateTempSubdirectory("modelgen-nodes").FullName, "nodes.onnx");
        File.WriteAllBytes(path, model);
        var e = Fails(() => OnnxModelLoader.Load(path));
        Assert.Equal(ErrorCodes.TooLarge, e.Code);
        Assert.Contains("50,000 nodes", e.Message);
    }

    static string NpzWith(Action<ZipArchive> write)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("modelgen-npz").FullName, "data.npz");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create)) write(zip);
        return path;
    }

    [Fact]
    public void AnNpzThatInflatesAThousandfoldIsRefusedBeforeItInflates()
    {
        // 64 MiB of zeros deflate to about 64 KB: a zip bomb in miniature (the issue's was 522 KB to 512 MiB).
        byte[] header = NpyReaderTests.Npy("<f4", "(16777216, 1)", []);
        string path = NpzWith(zip =>
        {
            using var s = zip.CreateEntry("x.npy", CompressionLevel.Optimal).Open();
            s.Write(header);
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 64; i++) s.Write(zeros);
        });
        Assert.True(new FileInfo(path).Length < 1 << 20);
        var e = Fails(() => CalibrationData.Load(path, [new DataInput("x", [1, 1])]));
        Assert.Equal(ErrorCodes.DataFileInvalid, e.Code);
        Assert.Contains("inflates", e.Message);
    }

    [Fact]
    public void AnNpzEntryThatDeclaresTwoGigabytesIsRefusedBeforeAllocating()
    {
        byte[] npy = NpyReaderTests.Npy("<f4", "(2, 1)", NpyReaderTests.Floats(1, 2));
        string path = NpzWith(zip =>
        {
            using var s = zip.CreateEntry("x.npy", CompressionLevel.NoCompression).Open();
            s.Write(npy);
        });
        // The uncompressed size in the local header (offset 22) and the central directory (offset 24) lies.
        var bytes = File.ReadAllBytes(path);
        PatchAfter(bytes, [0x50, 0x4B, 0x03, 0x04], 22, 0x7FFFFFD0);
        PatchAfter(bytes, [0x50, 0x4B, 0x01, 0x02], 24, 0x7FFFFFD0);
        File.WriteAllBytes(path, bytes);
        Assert.Equal(ErrorCodes.DataFileInvalid, Fails(() => CalibrationData.Load(path, [new DataInput("x", [1, 1])])).Code);
        // And so does the compressed size (offsets 18 and 20): the bound holds to what the archive has.
        PatchAfter(bytes, [0x50, 0x4B, 0x03, 0x04], 18, 0x7FFFFFD0);
        PatchAfter(bytes, [0x50, 0x4B, 0x01, 0x02], 20, 0x7FFFFFD0);
        File.WriteAllBytes(path, bytes);
        Assert.Equal(ErrorCodes.DataFileInvalid, Fails(() => CalibrationData.Load(path, [new DataInput("x", [1, 1])])).Code);
    }

    static void PatchAfter(byte[] bytes, byte[] signature, int offset, uint value)
    {
        int at = bytes.AsSpan().IndexOf(signature);
        Assert.True(at >= 0);
        BitConverter.GetBytes(value).CopyTo(bytes, at + offset);
    }

    [Fact]
    public void AConvolutionOnAFoldedBroadcastBombRunsTheBroadcastAtRunTimeInstead()
    {
        // Adds of [1,1,1,2900] and [1,1,2900,1] would fold into a 2900x2900 kernel (8.4 M weights from 23 KB).
        string path = new OnnxBuilder().Input("x", 1, 1, 2900, 2900)
            .Initializer("a", [1, 1, 1, 2900], OnnxBuilder.Random(2900, 1))
            .Initializer("b", [1, 1, 2900, 1], OnnxBuilder.Random(2900, 2))
            .Node("Add", ["a", "b"], ["w"])
            .Node("Conv", ["x", "w"], ["y"])
            .Output("y").Save();
        Assert.Contains("Add_0", CompilesWithinBudget(path));
    }

    /// <summary>The whole compile of <paramref name="path"/>: its C#, with what it cost bounded.</summary>
    static string CompilesWithinBudget(string path)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        string source = CompileToSource(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < AllocationCap, $"allocated {allocated:N0} bytes");
        Assert.True(source.Length < 1 << 20, $"{source.Length:N0} characters of C#");
        return source;
    }

    /// <summary>y = x · (a + b) with a [n, 1] and b [1, n]: an n x n weight folded from 2n numbers.</summary>
    static string OuterSumMatMul(int n) => new OnnxBuilder().Input("x", 1, n)
        .Initializer("a", [n, 1], OnnxBuilder.Random(n, 1))
        .Initializer("b", [1, n], OnnxBuilder.Random(n, 2))
        .Node("Add", ["a", "b"], ["w"])
        .Node("MatMul", ["x", "w"], ["y"])
        .Output("y").Save();

    [Fact]
    public void AMatMulOnAFoldedBombRunsTheBroadcastAtRunTimeInstead()
    {
        // A 2800x2800 weight folded from two 2800-element vectors would be 7.8 M floats (94 MB of C#) from 22 KB.
        string path = OuterSumMatMul(2800);
        string source = CompilesWithinBudget(path);
        Assert.Contains("Add_0", source); // the Add is a kernel, not a folded constant
    }

    [Fact]
    public void ABroadcastOfTwoConstantsIntoMillionsRunsAtRunTime()
    {
        // Add([1,1,4096], [1,4096,1]) of two initializers: 16.8 M floats from 33 KB, 201 MB of C# when folded.
        string path = new OnnxBuilder().Input("x", 1, 4096, 4096)
            .Initializer("a", [1, 1, 4096], OnnxBuilder.Random(4096, 1))
            .Initializer("b", [1, 4096, 1], OnnxBuilder.Random(4096, 2))
            .Node("Add", ["a", "b"], ["c"])
            .Node("Mul", ["x", "c"], ["y"])
            .Output("y").Save();
        Assert.Contains("Add_0", CompilesWithinBudget(path));
    }

    [Fact]
    public void FoldingWithinTheBudgetStillFolds()
    {
        // 1,000 x 1,000 from 8 KB: a million elements, the smallest model's folding budget.
        string path = OuterSumMatMul(1000);
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = path });
        Assert.True(graph["w"].IsConstant);
        Assert.DoesNotContain(graph.Nodes, n => n.OpType == "Add");
    }

    [Fact]
    public void RealModelsFitTheEmittedCodeBudgetAndMoreDoesNot()
    {
        foreach (string path in new[] { TestData.Mnist("lenet5.onnx"), SyntheticModels.DepthwiseSeparableCnn().Save() })
        {
            var compiled = ModelCompiler.Compile(new CompileOptions { ModelPath = path }, out var prepared);
            string source = ModelGen.Generator.Emit.ModelEmitter.Emit(ModelGen.Artifact.ArtifactText.Read(ModelGen.Artifact.ArtifactText.Write(compiled)));
            ModelCompiler.CheckEmittedSize(source.Length, compiled, prepared);
            // Four times the C# it has is still within the budget; a megabyte of code per kernel is not.
            ModelCompiler.CheckEmittedSize(4L * source.Length, compiled, prepared);
            long perKernel = (1L << 20) * (compiled.Nodes.Count + 1) + 3 * ModelCompiler.EmbeddedBudget(prepared);
            Assert.Equal(ErrorCodes.TooLarge, Assert.Throws<ModelGenException>(() => ModelCompiler.CheckEmittedSize(perKernel, compiled, prepared)).Code);
        }
    }
}
