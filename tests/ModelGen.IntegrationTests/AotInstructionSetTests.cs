using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>
/// The target that gives a NativeAOT x64 publish the models' vector width (issue 19, item 8), run alone in a
/// real consumer project: which IlcInstructionSet ILC would get, and when MG0116 says so.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class AotInstructionSetTests(PackageFixture package, ITestOutputHelper output)
{
    [Fact]
    public void ANativeAotX64PublishGetsX8664V3WithMG0116OnlyWhenTheProjectLeftItsInstructionSetUnset()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("AotIsa");
        consumer.CopyModel("lenet5.onnx");
        consumer.WriteFile("Program.cs", "System.Console.WriteLine(AotIsa.LeNet5.SimdLevel);\n");
        consumer.WriteProject(
            """<CompressedModel Include="lenet5.onnx" ClassName="LeNet5" Simd="$(ModelSimd)" />""",
            "<PublishAot>true</PublishAot><ModelSimd Condition=\"'$(ModelSimd)' == ''\">auto</ModelSimd>");
        ProcessResult restore = Dotnet.Run(["restore", consumer.ProjectPath, "-nodeReuse:false"], consumer.Directory, TimeSpan.FromMinutes(10));
        Assert.True(restore.ExitCode == 0, restore.ToString());

        // (the project's choice, what ILC gets, whether MG0116 is raised)
        (string[] Options, string Expected, bool Warns)[] cases =
        [
            ([], "x86-64-v3", true),
            (["-p:IlcInstructionSet=x86-64-v2"], "x86-64-v2", false),
            (["-p:IlcInstructionSet=native"], "native", false),
            (["-p:ModelGen_AotInstructionSet=false"], "", false),
            (["-p:ModelGen_AotInstructionSet=x86-64-v4"], "x86-64-v4", true),
            (["-p:ModelSimd=vector128"], "", false),
            (["-p:ModelSimd=none"], "", false),
            (["-p:ModelSimd=Auto"], "x86-64-v3", true),
            (["-p:RuntimeIdentifier=linux-arm64"], "", false),
            (["-p:PublishAot=false"], "", false),
        ];
        foreach (var (options, expected, warns) in cases)
        {
            ProcessResult run = Dotnet.Run(
                ["msbuild", consumer.ProjectPath, "-nologo", "-nodeReuse:false", "-t:_ModelGen_AotInstructionSet", "-getProperty:IlcInstructionSet",
                 "-p:Configuration=Release", "-p:TreatWarningsAsErrors=false", "-p:RuntimeIdentifier=linux-x64", .. options],
                consumer.Directory, TimeSpan.FromMinutes(5));
            string what = $"with [{string.Join(" ", options)}]\n{run}";
            Assert.True(run.ExitCode == 0, what);
            string value = run.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.Contains("warning", StringComparison.Ordinal)).LastOrDefault() ?? "";
            Assert.True(expected == value, $"IlcInstructionSet should be '{expected}', is '{value}' {what}");
            Assert.True(warns == run.Output.Contains("warning MG0116", StringComparison.Ordinal), what);
            if (warns) Assert.Contains($"needs an {expected} processor", run.Output);
            output.WriteLine($"[{string.Join(" ", options)}] → '{value}'{(warns ? ", MG0116" : "")}");
        }
    }
}
