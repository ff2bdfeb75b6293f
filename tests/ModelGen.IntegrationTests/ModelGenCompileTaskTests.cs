using Microsoft.Build.Framework;
using ModelGen.IntegrationTests.Support;
using ModelGen.Tasks;

namespace ModelGen.IntegrationTests;

/// <summary>
/// The task on its own, with a fake build engine: its command line, its parameter checks and how it
/// turns the tool's output into diagnostics. A shell script stands in for modelgen (run by /bin/sh in
/// place of the dotnet host), so these tests need neither the CLI nor MSBuild.
/// </summary>
public sealed class ModelGenCompileTaskTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "modelgen task-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly FakeBuildEngine _engine = new();

    public ModelGenCompileTaskTests()
    {
        Directory.CreateDirectory(_folder);
        File.WriteAllText(Model, "not read by the fake tool");
        File.WriteAllText(Tool, "");
    }

    private string Model => Path.Combine(_folder, "my model.onnx");

    private string Tool => Path.Combine(_folder, "modelgen.dll");

    private string Artifact => Path.Combine(_folder, "obj", "modelgen", "App.Digits.mgen");

    [Fact]
    public void CommandLineCarriesEveryOptionWithPathsQuoted()
    {
        ModelGenCompile task = NewTask();
        task.ClassName = "Digits";
        task.Namespace = "App.Models";
        task.BatchSize = "4";
        task.Simd = "Vector128";
        task.CalibrationScale = "255";
        task.Measure = "binary:0.7";
        task.Pruning = "0.9";
        task.PruningKind = "Unstructured-Sensitive";
        task.FineTune = "True";
        task.TrainingData = Path.Combine(_folder, "train images.npy");
        task.TrainingLabels = Path.Combine(_folder, "train labels.npy");
        task.Epochs = "3";
        task.LearningRate = "0.001";
        task.Seed = "7";
        task.TrainingTimeLimit = "10m";
        task.TrainingAugmentation = "shift:2";

        Assert.Equal(
            $"\"{Tool}\" compile \"{Model}\" --class Digits --namespace App.Models --batch-size 4 --simd vector128 --calibration-scale 255 --measure binary:0.7 --pruning 0.9 --pruning-kind unstructured-sensitive --fine-tune --training-data \"{_folder}/train images.npy\" --training-labels \"{_folder}/train labels.npy\" --epochs 3 --learning-rate 0.001 --seed 7 --training-time-limit 10m --augment shift:2 --artifact \"{Artifact}\"",
            task.CommandLineForTests);
    }

    [Fact]
    public void WeightSharingGoesOnTheCommandLineAndIsKnownMetadata()
    {
        ModelGenCompile task = NewTask();
        task.WeightSharing = " 4 ";
        Assert.Equal($"\"{Tool}\" compile \"{Model}\" --weight-sharing 4 --artifact \"{Artifact}\"", task.CommandLineForTests);
        Assert.Contains("WeightSharing", ModelGenCheckItems.Known);
    }

    [Fact]
    public void EmptyOptionsAreLeftToTheToolsDefaults()
    {
        ModelGenCompile task = NewTask();
        task.ClassName = "";
        task.Namespace = "";

        Assert.Equal($"\"{Tool}\" compile \"{Model}\" --artifact \"{Artifact}\"", task.CommandLineForTests);
    }

    [Fact]
    public void ValidationReportsEveryProblemBeforeRunningAnything()
    {
        ModelGenCompile task = NewTask();
        task.ModelFile = Path.Combine(_folder, "missing.onnx");
        task.ToolAssembly = Path.Combine(_folder, "nowhere", "modelgen.dll");
        task.BatchSize = "0";
        task.Simd = "avx9";
        task.ClassName = "class";
        task.Namespace = "My-App";
        task.FineTune = "yes";

        Assert.False(task.Execute());

        Assert.Equal(["MG0100", "MG0101", "MG0102", "MG0103", "MG0104", "MG0105", "MG0117"], _engine.Errors.Select(e => e.Code).ToArray());
        // The item's Include and metadata are fixed in the project: there the errors point, naming the item; the
        // package's missing program is no fault of the item.
        Assert.All(_engine.Errors.Where(e => e.Code != "MG0101"), e => Assert.Equal("Consumer.csproj", e.File));
        Assert.All(_engine.Errors.Where(e => e.Code != "MG0101"), e => Assert.StartsWith($"CompressedModel '{task.ModelFile}': ", e.Message));
        Assert.Equal(task.ModelFile, _engine.Errors.Single(e => e.Code == "MG0101").File);
        Assert.DoesNotContain(_engine.Messages, m => m.Message?.Contains(" compile ") == true);
    }

    [Fact]
    public void InputShapeGoesOnTheCommandLineAndOneThatDoesNotParseIsMG0112AtTheItemsLine()
    {
        ModelGenCompile task = NewTask();
        task.InputShape = "audio:1x16000; mask:1x50";
        Assert.Equal($"\"{Tool}\" compile \"{Model}\" --input-shape \"audio:1x16000; mask:1x50\" --artifact \"{Artifact}\"", task.CommandLineForTests);

        foreach (string good in new[] { "1x16000", "input:0:1X16000", "a:1x2;", " a : 1 x 2 " })
            Assert.Null(ModelGenCompile.BadInputShapeEntry(good));
        foreach (var (bad, entry) in new[] { ("audio:1x0", "audio:1x0"), ("a:1x2;audio:1x-5", "audio:1x-5"), ("audio:", "audio:"), (":1x2", ":1x2"), ("audio:1x268435457", "audio:1x268435457"), ("audio:1,2", "audio:1,2"), ("audio:99999999999999999999", "audio:99999999999999999999") })
            Assert.Equal(entry, ModelGenCompile.BadInputShapeEntry(bad));

        string project = WriteProject();
        task = NewTask();
        task.ItemSpec = "Models/mel.onnx";
        task.ItemFile = project;
        task.InputShape = "audio:1x0";
        task.BatchSize = "x";
        Assert.False(task.Execute());
        Assert.Equal(["MG0102", "MG0112"], _engine.Errors.Select(e => e.Code).ToArray());
        Assert.All(_engine.Errors, e => Assert.Equal((project, 5, 6), (e.File, e.LineNumber, e.ColumnNumber)));
        Assert.StartsWith("CompressedModel 'Models/mel.onnx': InputShape 'audio:1x0': 'audio:1x0' is not name:dims", _engine.Errors[1].Message);
    }

    [Fact]
    public void TheToolsOptionErrorsPointAtTheItemAndItsModelErrorsAtTheModel()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        string project = WriteProject();
        ModelGenCompile task = FakeTool("""
            echo "$2: error MG0007: Compression 'int9' is not one of none, int8" >&2
            echo "$2: error MG1008: InputShape names input 'voice', which the model does not have" >&2
            echo "$2: error MG1004: graph input 'audio' has symbolic dimension 1" >&2
            exit 1
            """);
        task.ItemSpec = "Models/mel.onnx";
        task.ItemFile = project;

        Assert.False(task.Execute());

        Assert.Equal(["MG0007", "MG1008", "MG1004"], _engine.Errors.Select(e => e.Code).ToArray());
        Assert.Equal((project, 5, 6), (_engine.Errors[0].File, _engine.Errors[0].LineNumber, _engine.Errors[0].ColumnNumber));
        Assert.Equal("CompressedModel 'Models/mel.onnx': Compression 'int9' is not one of none, int8", _engine.Errors[0].Message);
        Assert.Equal((project, 5), (_engine.Errors[1].File, _engine.Errors[1].LineNumber));
        // About the model's content: the model.
        Assert.Equal((Model, 0), (_engine.Errors[2].File, _engine.Errors[2].LineNumber));
    }

    [Fact]
    public void UnknownMetadataPointsAtTheItemsLineInTheFileThatDefinesIt()
    {
        string project = WriteProject();
        var item = new Microsoft.Build.Utilities.TaskItem("Models/mel.onnx");
        item.SetMetadata("Compresion", "int8");
        var task = new ModelGenCheckItems { BuildEngine = _engine, Items = [item], ProjectFile = project };

        Assert.True(task.Execute());

        var warning = Assert.Single(_engine.Warnings);
        Assert.Equal((project, 5, 6), (warning.File, warning.LineNumber, warning.ColumnNumber));
        // An item two elements name, or none (a wildcard): the file alone.
        Assert.Equal((0, 0), ItemLocation.Find(project, "Models/*.onnx"));
        Assert.Equal((0, 0), ItemLocation.Find(project, "twice.onnx"));
        Assert.Equal((7, 6), ItemLocation.Find(project, "b.onnx"));
        Assert.Equal((0, 0), ItemLocation.Find(Path.Combine(_folder, "none.csproj"), "b.onnx"));
    }

    /// <summary>A project naming Models/mel.onnx on line 5 (column 6, after four spaces and '&lt;'), twice.onnx twice, b.onnx in a list.</summary>
    private string WriteProject()
    {
        string path = Path.Combine(_folder, "App.csproj");
        File.WriteAllText(path, """
            <Project Sdk="Microsoft.NET.Sdk">
              <!-- a comment: <CompressedModel Include="Models/mel.onnx" /> -->
              <ItemGroup>
                <CompressedModel Include="twice.onnx" />
                <CompressedModel Include="Models\mel.onnx"
                                 InputShape="audio:1x0" />
                <CompressedModel Include="a.onnx; b.onnx" />
                <CompressedModel Include="twice.onnx" />
              </ItemGroup>
            </Project>
            """);
        return path;
    }

    [Theory]
    [InlineData("My.@class", true)]
    [InlineData("Modèles.Überweisung_1", true)]
    [InlineData("My.class", false)]
    [InlineData("My.global", false)]
    [InlineData("My.\u202Eevil", false)]
    [InlineData("My..App", false)]
    public void NamespacesFollowTheCompilersRule(string ns, bool valid)
    {
        // The task compiles in the compiler's own rule (ValidationTests holds the compiler to the same cases).
        Assert.Equal(valid, ModelGenCompile.IsNamespace(ns));
    }

    [Theory]
    [InlineData("Digits", true)]
    [InlineData("_x9", true)]
    [InlineData("Ünïcode", true)]
    [InlineData("9lives", false)]
    [InlineData("my-model", false)]
    [InlineData("class", false)]
    [InlineData("", false)]
    public void ClassNamesMustBeIdentifiers(string name, bool valid) =>
        Assert.Equal(valid, ModelGenCompile.IsIdentifier(name));

    [Fact]
    public void UnknownMetadataWarnsWithTheClosestKnownName()
    {
        var item = new Microsoft.Build.Utilities.TaskItem("model.onnx");
        item.SetMetadata("Compresion", "int8");
        item.SetMetadata("calibration", "data.npy"); // MSBuild's names ignore case: this is Calibration
        item.SetMetadata("Link", "Models/model.onnx");
        item.SetMetadata("Flavour", "x");
        var task = new ModelGenCheckItems { BuildEngine = _engine, Items = [item], ProjectFile = "Consumer.csproj" };

        Assert.True(task.Execute());

        Assert.Equal(2, _engine.Warnings.Count);
        Assert.All(_engine.Warnings, w => Assert.Equal("MG0111", w.Code));
        Assert.All(_engine.Warnings, w => Assert.Equal("Consumer.csproj", w.File));
        Assert.Contains("'Compresion'", _engine.Warnings[0].Message);
        Assert.Contains("did you mean 'Compression'?", _engine.Warnings[0].Message);
        Assert.Contains("'Flavour'", _engine.Warnings[1].Message);
        Assert.DoesNotContain("did you mean", _engine.Warnings[1].Message);
        Assert.Empty(_engine.Errors);
    }

    [Fact]
    public void ClassNamesAreAtMostAHundredCharacters()
    {
        // C# refuses names over 512 characters (CS7013); the compiler caps them at 100 (MG0007) and so does the task.
        Assert.True(ModelGenCompile.IsIdentifier(new string('A', 100)));
        Assert.False(ModelGenCompile.IsIdentifier(new string('A', 101)));
    }

    [Fact]
    public void CanonicalErrorsFromTheToolBecomeBuildErrorsWithCodeAndFile()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        ModelGenCompile task = FakeTool("""
            echo "modelgen: reading the model"
            echo "$2: warning MG2001: accuracy below budget" >&2
            echo "$2: error MG1001: node 'n1' uses operator 'Foo', which is not supported" >&2
            exit 1
            """);

        Assert.False(task.Execute());

        BuildErrorEventArgs error = Assert.Single(_engine.Errors);
        Assert.Equal("MG1001", error.Code);
        Assert.Equal(Model, error.File);
        Assert.Contains("operator 'Foo'", error.Message);
        BuildWarningEventArgs warning = Assert.Single(_engine.Warnings);
        Assert.Equal("MG2001", warning.Code);
    }

    [Fact]
    public void TheToolsReportLinesShowAtNormalVerbosityAndItsOtherOutputDoesNot()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        ModelGenCompile task = FakeTool("""
            echo "modelgen: int8: 26% of the weight bytes, top-1 as the original on 100.00% of 256 samples"
            echo "some other chatter"
            mkdir -p "$(dirname "$4")" && echo artifact > "$4"
            """);

        Assert.True(task.Execute(), _engine.Log);

        Assert.Equal(MessageImportance.High, Assert.Single(_engine.Messages, m => m.Message!.StartsWith("modelgen: int8")).Importance);
        Assert.Equal(MessageImportance.Low, Assert.Single(_engine.Messages, m => m.Message == "some other chatter").Importance);
    }

    [Fact]
    public void ACrashOfTheToolIsAnErrorWithItsFirstLine()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        ModelGenCompile task = FakeTool("""
            echo "Unhandled exception. System.InvalidOperationException: boom" >&2
            echo "   at Somewhere()" >&2
            exit 134
            """);

        Assert.False(task.Execute());

        BuildErrorEventArgs error = Assert.Single(_engine.Errors);
        Assert.Equal("MG0107", error.Code);
        Assert.Contains("134", error.Message);
        Assert.Contains("System.InvalidOperationException: boom", error.Message);
    }

    [Fact]
    public void AToolThatRunsPastTheTimeoutIsStoppedWithAnError()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        ModelGenCompile task = FakeTool("sleep 30");
        task.Timeout = 300;

        Assert.False(task.Execute());

        BuildErrorEventArgs error = Assert.Single(_engine.Errors);
        Assert.Equal("MG0107", error.Code);
        Assert.Contains("300 ms", error.Message);
    }

    /// <summary>Cancelling the build (Ctrl+C in dotnet build) stops a long compile, such as training, within a second, and leaves no artifact.</summary>
    [Fact]
    public void CancellingTheBuildStopsTheToolPromptlyAndLeavesNoArtifact()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        // A "training" tool: progress lines, then the artifact only at the end (as modelgen writes it).
        ModelGenCompile task = FakeTool("""
            for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo "modelgen: training: epoch $i of 20"; sleep 1; done
            mkdir -p "$(dirname "$4")" && echo artifact > "$4"
            """);
        bool? result = null;
        var run = new Thread(() => result = task.Execute());
        run.Start();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!_engine.Messages.ToArray().Any(m => m?.Message?.StartsWith("modelgen: training") == true) && waited.Elapsed < TimeSpan.FromSeconds(20))
        {
            Thread.Sleep(20);
        }

        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "the tool never reported progress");
        var cancelled = System.Diagnostics.Stopwatch.StartNew();
        task.Cancel();
        Assert.True(run.Join(TimeSpan.FromSeconds(5)), "Execute did not return after Cancel");
        Assert.InRange(cancelled.Elapsed.TotalSeconds, 0, 1.5);
        Assert.False(result);
        Assert.False(File.Exists(Artifact));
        // The progress line showed at normal verbosity before the cancel.
        Assert.Equal(MessageImportance.High, _engine.Messages.First(m => m.Message!.StartsWith("modelgen: training")).Importance);
    }

    [Fact]
    public void SuccessWithoutAnArtifactIsAnError()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        ModelGenCompile task = FakeTool("exit 0");

        Assert.False(task.Execute());
        Assert.Equal("MG0108", Assert.Single(_engine.Errors).Code);
    }

    [Fact]
    public void SuccessWritesTheArtifactAndAStaleOneIsDeletedFirst()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        // The fake tool appends, so a surviving stale artifact would show up as two lines.
        Directory.CreateDirectory(Path.GetDirectoryName(Artifact)!);
        File.WriteAllText(Artifact, "stale\n");
        ModelGenCompile task = FakeTool("""
            while [ "$#" -gt 0 ]; do
              if [ "$1" = "--artifact" ]; then echo "fresh" >> "$2"; fi
              shift
            done
            """);

        Assert.True(task.Execute(), _engine.Log);
        Assert.Equal("fresh\n", File.ReadAllText(Artifact));
        Assert.Empty(_engine.Errors);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private ModelGenCompile NewTask() => new()
    {
        BuildEngine = _engine,
        ModelFile = Model,
        ArtifactFile = Artifact,
        ToolAssembly = Tool,
    };

    // The script is the "tool assembly" and /bin/sh the "host": `sh <script> compile <model> ...`,
    // so in the script $1 is "compile" and $2 the model.
    private ModelGenCompile FakeTool(string script)
    {
        File.WriteAllText(Tool, script + "\n");
        ModelGenCompile task = NewTask();
        task.DotnetHostPath = "/bin/sh";
        return task;
    }
}
