using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>
/// samples/Mnist published with NativeAOT against the packed package: one native file that runs the
/// generated LeNet-5 without the .NET runtime or ONNX Runtime.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class NativeAotSampleTests(PackageFixture package, ITestOutputHelper output)
{
    /// <summary>
    /// Issue 19: a default NativeAOT publish ran the Vector128 paths (.NET's default x64 target has no AVX,
    /// and ILC folds Avx2.IsSupported and Vector256.IsHardwareAccelerated to false without AVX in it), several
    /// times slower than the JIT. The package now sets IlcInstructionSet=x86-64-v3 on x64 with warning MG0116, so
    /// the native binary must run the vector width the JIT runs here (x86-64-v3 has no AVX-512: on an AVX-512
    /// machine the JIT takes vector512 and the binary vector256). The speeds are printed, not asserted: on a
    /// shared machine a ratio is noise; README's performance section has the measured table.
    /// </summary>
    [Fact]
    public void TheMnistSamplePublishedWithNativeAotRunsAndKeepsItsAccuracy()
    {
        var (native, publish) = PublishAndRun("aot", "-p:PublishAot=true");
        if (native is null) return;
        bool x64 = RuntimeInformation.RuntimeIdentifier.EndsWith("-x64", StringComparison.Ordinal);
        var warnings = Regex.Matches(publish!.Output, @"warning (IL|CS|MG)\d+").Select(m => m.Value).Distinct().ToList();
        Assert.True(warnings.SequenceEqual(x64 ? ["warning MG0116"] : []), "warnings: " + string.Join(", ", warnings) + "\n" + publish);
        if (x64) Assert.Matches(@"warning MG0116: NativeAOT: ModelGen set IlcInstructionSet=x86-64-v3 .*needs an x86-64-v3 processor", publish.Output);

        ProcessResult jit = RunUnderTheJit();
        string jitLevel = SimdLevel(jit), nativeLevel = SimdLevel(native);
        string expected = x64 && jitLevel == "vector512" ? "vector256" : jitLevel;
        output.WriteLine($"| the sample (LeNet-5) | SIMD | float32 Run µs | int8 Run µs |\n|---|---|---|---|\n| JIT | {jitLevel} | {Microseconds(jit, "float32")} | {Microseconds(jit, "int8")} |\n| NativeAOT, default publish | {nativeLevel} | {Microseconds(native, "float32")} | {Microseconds(native, "int8")} |");
        Assert.True(expected == nativeLevel, $"the JIT runs {jitLevel}, so the default native binary should run {expected}; it runs {nativeLevel}\n{native}\n{jit}");
    }

    [Fact]
    public void TheMnistSamplePublishedTrimmedRunsAndKeepsItsAccuracy()
    {
        var (_, publish) = PublishAndRun("trimmed", "--self-contained", "-p:PublishTrimmed=true");
        if (publish is not null) Assert.DoesNotMatch(@"warning (IL|CS|MG)\d+", publish.Output);
    }

    static string SimdLevel(ProcessResult run)
    {
        Match level = Regex.Match(run.Output, @"SIMD: (vector512|vector256|vector128|none)");
        Assert.True(level.Success, "the sample prints its SIMD level\n" + run);
        return level.Groups[1].Value;
    }

    /// <summary>The µs per Run of the sample table's row with this compression.</summary>
    static string Microseconds(ProcessResult run, string compression) => Regex.Match(run.Output, @"\| \w+ +\| " + compression + @" +\|.*\| +(\d+\.\d) \|").Groups[1].Value;

    /// <summary>The same sample built and run under the JIT, for its SIMD level and speed.</summary>
    ProcessResult RunUnderTheJit()
    {
        ProcessResult build = Dotnet.Run(
            ["build", Path.Combine(Repo.Root, "samples", "Mnist", "Mnist.csproj"), "-c", "Release", "-nodeReuse:false", "-p:UseSharedCompilation=false"],
            Repo.Root, TimeSpan.FromMinutes(10));
        Assert.True(build.ExitCode == 0, build.ToString());
        ProcessResult run = Dotnet.Run([Path.Combine(Repo.Root, "samples", "Mnist", "bin", "Release", "net10.0", "Mnist.dll"), Repo.MnistData], Repo.Root, TimeSpan.FromMinutes(5));
        Assert.True(run.ExitCode == 0, run.ToString());
        return run;
    }

    /// <summary>Publishes the sample with the given options, then it runs at its accuracy: the run and the publish (null, null where not exercised).</summary>
    (ProcessResult? Run, ProcessResult? Publish) PublishAndRun(string kind, params string[] options)
    {
        package.AssertPacked();
        string rid = RuntimeInformation.RuntimeIdentifier;
        if (!OperatingSystem.IsLinux() || !(rid.EndsWith("-x64", StringComparison.Ordinal) || rid.EndsWith("-arm64", StringComparison.Ordinal)))
        {
            output.WriteLine($"NativeAOT publish is only exercised on linux-x64 and linux-arm64, not {rid}.");
            return (null, null);
        }

        // The sample restores into samples/.packages; drop the copy of an earlier pack of this version.
        string stale = Path.Combine(Repo.Root, "samples", ".packages", "modelgen");
        if (Directory.Exists(stale))
        {
            Directory.Delete(stale, recursive: true);
        }

        string publishFolder = Path.Combine(Path.GetTempPath(), "modelgen-it", $"mnist-{kind}-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            ProcessResult publish = Dotnet.Run(
                ["publish", Path.Combine(Repo.Root, "samples", "Mnist", "Mnist.csproj"), "-c", "Release", "-r", rid,
                 .. options, "-nodeReuse:false", "-p:UseSharedCompilation=false", "-o", publishFolder],
                Repo.Root,
                TimeSpan.FromMinutes(15));
            output.WriteLine($"publish: {publish.Elapsed.TotalSeconds:F1} s");
            Assert.True(publish.ExitCode == 0, publish.ToString());

            string binary = Path.Combine(publishFolder, "Mnist");
            Assert.True(File.Exists(binary), $"no binary at {binary}\n{publish}");
            if (kind == "aot")
            {
                Assert.False(File.Exists(Path.Combine(publishFolder, "Mnist.dll")), "the publish folder holds IL, not a native binary");
                output.WriteLine($"native binary: {new FileInfo(binary).Length:N0} bytes");
            }
            else output.WriteLine($"trimmed publish folder: {Directory.EnumerateFiles(publishFolder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length):N0} bytes");

            ProcessResult run = Dotnet.Exec(binary, [Repo.MnistData], publishFolder, TimeSpan.FromMinutes(5));
            output.WriteLine(run.Output.Trim());
            Assert.True(run.ExitCode == 0, run.ToString());
            Match accuracy = Regex.Match(run.Output, @"accuracy: (\d+\.\d+)%");
            Assert.True(accuracy.Success, run.ToString());
            Assert.True(double.Parse(accuracy.Groups[1].Value, CultureInfo.InvariantCulture) >= 97.0, run.ToString());
            return (run, publish);
        }
        finally
        {
            if (Directory.Exists(publishFolder) && Environment.GetEnvironmentVariable("MODELGEN_KEEP_TEMP") != "1")
            {
                Directory.Delete(publishFolder, recursive: true);
            }
        }
    }
}
