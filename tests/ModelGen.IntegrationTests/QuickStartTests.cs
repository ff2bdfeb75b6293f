using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>
/// The README's newcomer path, run as the README writes it: its quick-start (a new console project that
/// takes ModelGen from the local feed and compresses LeNet-5 to int8) and its `dotnet tool install` of
/// modelgen. The commands come from the README itself, between its marker comments, so the README
/// cannot drift from what works. What the test changes, and only that: <c>MODELGEN=</c> is this
/// repository, <c>--global</c> is a temporary <c>--tool-path</c>, eng/pack.sh reuses the packages the
/// fixture just packed, and NuGet's package folder is a temporary one (so no cached package of the same
/// version hides the fresh one, and the user's cache is left alone).
/// </summary>
[Collection(PackageCollection.Name)]
public sealed partial class QuickStartTests(PackageFixture package, ITestOutputHelper output)
{
    [Fact]
    public void TheReadmesQuickStartCompressesLeNet5AndKeepsItsAccuracy()
    {
        package.AssertToolPacked();
        var blocks = Readme.Blocks("quick-start");
        Assert.Contains(blocks, b => b.Language == "xml");
        Assert.Contains(blocks, b => b.Language == "csharp");

        using var temp = new TempFolder("quick-start");
        var script = new StringBuilder();
        script.AppendLine("""
            set -euo pipefail
            # The README's XML block goes into the project file of the current folder, before </Project>.
            modelgen_add_to_project() {
              local projects=(*.csproj)
              [[ ${#projects[@]} -eq 1 && -f "${projects[0]}" ]] || { echo "not one project file in $PWD" >&2; return 1; }
              local items content
              items="$(cat)"
              content="$(<"${projects[0]}")"
              [[ "$content" == *'</Project>'* ]] || { echo "no </Project> in ${projects[0]}" >&2; return 1; }
              printf '%s\n%s\n' "${content%'</Project>'*}$items" '</Project>' > "${projects[0]}"
            }
            """);
        foreach (var block in blocks)
        {
            switch (block.Language)
            {
                case "sh":
                    script.AppendLine(SetCloneFolder(block.Code));
                    break;
                case "xml":
                    script.AppendLine("modelgen_add_to_project <<'MODELGEN_XML'").AppendLine(block.Code).AppendLine("MODELGEN_XML");
                    break;
                case "csharp":
                    script.AppendLine("cat > Program.cs <<'MODELGEN_CS'").AppendLine(block.Code).AppendLine("MODELGEN_CS");
                    break;
                default:
                    Assert.Fail($"The quick-start has a block of '{block.Language}' the test does not know how to follow.");
                    break;
            }
        }

        ProcessResult run = RunScript(temp, script.ToString(), new Dictionary<string, string>());
        output.WriteLine($"quick-start: {run.Elapsed.TotalSeconds:F1} s");
        Assert.True(run.ExitCode == 0, run.ToString());
        output.WriteLine(string.Join('\n', run.Output.Split('\n').Where(l => l.Contains("modelgen:") || l.Contains("LeNet-5") || l.Contains("accuracy"))));

        // The build compressed the model: its summary line, then the class's own constant says the same size.
        Match summary = Regex.Match(run.Output, @"modelgen: lenet5\.onnx: compression int8: weights ([\d,]+) \S+ ([\d,]+) bytes");
        Assert.True(summary.Success, "no compression summary in the build log\n" + run);
        long originalBytes = Number(summary.Groups[1].Value), compressedBytes = Number(summary.Groups[2].Value);
        Match printedBytes = Regex.Match(run.Output, @"LeNet-5 in int8: ([\d,.  ]+) bytes of weights");
        Assert.True(printedBytes.Success, run.ToString());
        Assert.Equal(compressedBytes, Number(printedBytes.Groups[1].Value));
        Assert.True(compressedBytes * 100 < originalBytes * 30, $"int8 weights {compressedBytes} of {originalBytes} bytes: not compressed");

        // Its accuracy on the test digits, against the float32 model's in ONNX Runtime on the same labels.
        Match accuracy = Regex.Match(run.Output, @"accuracy: (\d+\.\d+)% \((\d+) of (\d+) test digits\)");
        Assert.True(accuracy.Success, run.ToString());
        int right = int.Parse(accuracy.Groups[2].Value, CultureInfo.InvariantCulture);
        var (_, images) = Npy.ReadFloat32(Path.Combine(Repo.MnistData, "test-images.npy"));
        var (_, labels) = Npy.ReadInt64(Path.Combine(Repo.MnistData, "test-labels.npy"));
        Assert.Equal(labels.Length, int.Parse(accuracy.Groups[3].Value, CultureInfo.InvariantCulture));
        float[] reference = OnnxReference.Run(Path.Combine(Repo.MnistData, "lenet5.onnx"), images, labels.Length, [1, 28, 28], 10);
        int referenceRight = Enumerable.Range(0, labels.Length).Count(d => OnnxReference.ArgMax(reference.AsSpan(d * 10, 10)) == labels[d]);
        output.WriteLine($"int8: {right} of {labels.Length} right; float32 in ONNX Runtime: {referenceRight}");
        Assert.True(right >= referenceRight - labels.Length * 3 / 1000, $"int8 {right} against float32 {referenceRight} of {labels.Length} (0.3 points allowed)");
    }

    [Fact]
    public void TheReadmesToolInstallGivesAModelgenCommandThatRuns()
    {
        package.AssertToolPacked();
        var blocks = Readme.Blocks("tool");
        Assert.Equal(new[] { "sh" }, blocks.Select(b => b.Language));
        string commands = blocks[0].Code;
        Assert.Contains(" --global ", commands);

        using var temp = new TempFolder("tool");
        string toolPath = Path.Combine(temp.Path, "tools");
        string script = $"""
            set -euo pipefail
            MODELGEN={BashQuote(Repo.Root)}
            {commands.Replace(" --global ", $" --tool-path {BashQuote(toolPath)} ", StringComparison.Ordinal)}
            echo "modelgen is $(command -v modelgen)"
            # Beyond the README: the tool carries ONNX Runtime for bench (the ModelGen package does not).
            modelgen bench "$MODELGEN/data/mnist/lenet300.onnx" --data "$MODELGEN/data/mnist/test-images.npy" --samples 20 --seconds 1
            """;
        string path = toolPath + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
        ProcessResult run = RunScript(temp, script, new Dictionary<string, string> { ["PATH"] = path });
        output.WriteLine(run.Output.Trim());
        Assert.True(run.ExitCode == 0, run.ToString());

        Assert.Contains($"modelgen is {Path.Combine(toolPath, "modelgen")}", run.Output);
        // --version prints the package's version (with the commit after a '+').
        Assert.Matches(new Regex("^" + Regex.Escape(Repo.PackageVersion) + @"(\+[0-9a-f]+)?\r?$", RegexOptions.Multiline), run.Output);
        Assert.Matches(@"(?m)^  Conv +2  supported", run.Output);
        Assert.Contains("ModelGen can compile this model.", run.Output);
        Assert.Matches(@"top-1 same on 20 of 20 rows", run.Output);
    }

    [Fact]
    public void TheToolAndTheBuildPackageAreTwoPackagesAndOnlyTheToolCarriesOnnxRuntime()
    {
        package.AssertToolPacked();
        output.WriteLine($"{Path.GetFileName(package.PackagePath)}: {new FileInfo(package.PackagePath).Length:N0} bytes");
        output.WriteLine($"{Path.GetFileName(package.ToolPackagePath)}: {new FileInfo(package.ToolPackagePath).Length:N0} bytes");

        using (var build = ZipFile.OpenRead(package.PackagePath))
        {
            var names = build.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("<id>ModelGen</id>", Nuspec(build));
            // build/_ModelGen.targets runs this file with the dotnet host.
            Assert.Contains("tools/net10.0/modelgen.dll", names);
            Assert.Contains("tools/net10.0/modelgen.runtimeconfig.json", names);
            Assert.Contains("tools/net10.0/modelgen.deps.json", names);
            Assert.Contains("build/_ModelGen.targets", names);
            Assert.DoesNotContain(names, n => n.Contains("/native/", StringComparison.Ordinal));
            Assert.DoesNotContain(names, n => n.EndsWith(".resources.dll", StringComparison.Ordinal));
        }

        using var tool = ZipFile.OpenRead(package.ToolPackagePath);
        var toolNames = tool.Entries.Select(e => e.FullName).ToList();
        string nuspec = Nuspec(tool);
        Assert.Contains("<id>ModelGen.Cli</id>", nuspec);
        Assert.Contains("<packageType name=\"DotnetTool\" />", nuspec);
        using (var settings = new StreamReader(tool.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open()))
        {
            Assert.Matches("<Command Name=\"modelgen\" EntryPoint=\"modelgen.dll\"", settings.ReadToEnd());
        }

        foreach (string native in new[] { "linux-x64/native/libonnxruntime.so", "linux-arm64/native/libonnxruntime.so", "osx-arm64/native/libonnxruntime.dylib", "win-x64/native/onnxruntime.dll", "win-arm64/native/onnxruntime.dll" })
        {
            Assert.Contains("tools/net10.0/any/runtimes/" + native, toolNames);
        }

        Assert.DoesNotContain(toolNames, n => n.Contains("runtimes/android", StringComparison.Ordinal) || n.Contains("runtimes/ios", StringComparison.Ordinal));
    }

    [Fact]
    public void BenchFromTheBuildPackagesOwnModelgenSaysToInstallTheTool()
    {
        // The build package's modelgen has no ONNX Runtime native library; bench needs one, and must say
        // so with its code rather than fail as an internal error.
        using var temp = new TempFolder("package-bench");
        using (var build = ZipFile.OpenRead(package.PackagePath))
        {
            foreach (var entry in build.Entries.Where(e => e.FullName.StartsWith("tools/net10.0/", StringComparison.Ordinal) && e.Name.Length > 0))
            {
                string target = Path.Combine(temp.Path, entry.FullName);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                entry.ExtractToFile(target);
            }
        }

        string model = Path.Combine(Repo.MnistData, "lenet300.onnx");
        var bench = Dotnet.Run([Path.Combine(temp.Path, "tools", "net10.0", "modelgen.dll"), "bench", model, "--seconds", "0.2"], temp.Path, TimeSpan.FromMinutes(2));
        output.WriteLine(bench.ToString());
        Assert.NotEqual(0, bench.ExitCode);
        Assert.Contains("error MG0010", bench.Output);
        Assert.Contains("dotnet tool install --global ModelGen.Cli", bench.Output);
        Assert.DoesNotContain("MG9000", bench.Output);
    }

    /// <summary>The README's <c>MODELGEN=…</c> line, the clone's folder, set to this repository (it must be there once).</summary>
    private static string SetCloneFolder(string code)
    {
        var assignment = CloneFolderLine();
        if (!assignment.IsMatch(code))
        {
            return code;
        }

        Assert.Single(assignment.Matches(code));
        return assignment.Replace(code, "MODELGEN=" + BashQuote(Repo.Root));
    }

    [GeneratedRegex(@"(?m)^MODELGEN=\S*")]
    private static partial Regex CloneFolderLine();

    private ProcessResult RunScript(TempFolder temp, string script, Dictionary<string, string> environment)
    {
        string file = Path.Combine(temp.Path, "steps.sh");
        File.WriteAllText(file, script);
        environment["MODELGEN_SKIP_PACK"] = "1";
        environment["NUGET_PACKAGES"] = Path.Combine(temp.Path, "nuget-packages");
        string work = Path.Combine(temp.Path, "work");
        Directory.CreateDirectory(work);
        return Dotnet.Exec("bash", [file], work, TimeSpan.FromMinutes(20), environment);
    }

    private static string Nuspec(ZipArchive package)
    {
        using var reader = new StreamReader(package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
        return reader.ReadToEnd();
    }

    private static long Number(string text) => long.Parse(new string(text.Where(char.IsAsciiDigit).ToArray()), CultureInfo.InvariantCulture);

    private static string BashQuote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>A temporary folder (with a space in its path), deleted afterwards unless MODELGEN_KEEP_TEMP=1.</summary>
    private sealed class TempFolder : IDisposable
    {
        public TempFolder(string name)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "modelgen it", name + "-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public void Dispose()
        {
            if (Environment.GetEnvironmentVariable("MODELGEN_KEEP_TEMP") == "1")
            {
                return;
            }

            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
                // Best effort, as ConsumerProject.
            }
        }
    }
}

/// <summary>The fenced code blocks of README.md between <c>&lt;!-- name --&gt;</c> and <c>&lt;!-- /name --&gt;</c>.</summary>
internal static class Readme
{
    public sealed record Block(string Language, string Code);

    public static IReadOnlyList<Block> Blocks(string name)
    {
        string text = File.ReadAllText(Path.Combine(Repo.Root, "README.md")).ReplaceLineEndings("\n");
        string open = $"<!-- {name} -->", close = $"<!-- /{name} -->";
        int start = text.IndexOf(open, StringComparison.Ordinal), end = text.IndexOf(close, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, $"README.md has no section between {open} and {close}");
        Assert.Equal(-1, text.IndexOf(open, start + open.Length, StringComparison.Ordinal));
        string section = text[(start + open.Length)..end];
        var blocks = Regex.Matches(section, @"(?ms)^```(\w+)\n(.*?)\n```$")
            .Select(m => new Block(m.Groups[1].Value, m.Groups[2].Value))
            .ToList();
        Assert.NotEmpty(blocks);
        // Every fence in the section is a block above: none was skipped by a typo in its language.
        Assert.Equal(blocks.Count * 2, Regex.Matches(section, "(?m)^```").Count);
        return blocks;
    }
}
