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
    [Fact]
    public void TheMnistSamplePublishedWithNativeAotRunsAndKeepsItsAccuracy() => PublishAndRun("aot", "-p:PublishAot=true");

    [Fact]
    public void TheMnistSamplePublishedTrimmedRunsAndKeepsItsAccuracy() => PublishAndRun("trimmed", "--self-contained", "-p:PublishTrimmed=true");

    /// <summary>Publishes the sample with the given options: no warning (trimming, AOT or ours), then it runs at its accuracy.</summary>
    void PublishAndRun(string kind, params string[] options)
    {
        package.AssertPacked();
        string rid = RuntimeInformation.RuntimeIdentifier;
        if (!OperatingSystem.IsLinux() || !(rid.EndsWith("-x64", StringComparison.Ordinal) || rid.EndsWith("-arm64", StringComparison.Ordinal)))
        {
            output.WriteLine($"NativeAOT publish is only exercised on linux-x64 and linux-arm64, not {rid}.");
            return;
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

            Assert.DoesNotMatch(@"warning (IL|CS|MG)\d+", publish.Output);
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
