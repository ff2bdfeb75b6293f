using System.Text.RegularExpressions;
using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>
/// The README's "Large models: a project of their own": the models in a class library the app references. An edit of
/// the app's Program.cs then compiles the app alone (the model's generated class is not compiled again), and with
/// Optimize=true in the library the JIT optimizes the kernels in a Debug build of the app, where it otherwise compiles
/// every method of a Debug assembly unoptimized, AggressiveOptimization or not.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class ModelProjectPatternTests(PackageFixture package, ITestOutputHelper output)
{
    private static readonly Regex ToolInvocation = new(@"modelgen\.dll""? compile ");

    [Fact]
    public void AnAppEditDoesNotRecompileTheModelsProjectAndItsKernelsAreOptimizedInDebug()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("App");
        File.Copy(Path.Combine(Repo.MnistData, "lenet5.onnx"), Path.Combine(consumer.Directory, "lenet5.onnx"));
        consumer.WriteFile(Path.Combine("Models", "Models.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Optimize>true</Optimize>
                <RestorePackagesPath>$(MSBuildThisFileDirectory)../.packages/</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ModelGen" Version="{Repo.PackageVersion}" />
                <CompressedModel Include="../lenet5.onnx" ClassName="LeNet5" />
              </ItemGroup>
            </Project>
            """);
        // Side by side, as in the README: an app folder above Models/ would compile Models/obj/**/*.cs as its own.
        consumer.WriteFile(Path.Combine("App", "App.csproj"), """
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <RestorePackagesPath>$(MSBuildThisFileDirectory)../.packages/</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="../Models/Models.csproj" />
              </ItemGroup>
            </Project>
            """);
        const string Report = """
            var debuggable = (System.Diagnostics.DebuggableAttribute?)Attribute.GetCustomAttribute(typeof(Models.LeNet5).Assembly, typeof(System.Diagnostics.DebuggableAttribute));
            var app = (System.Diagnostics.DebuggableAttribute?)Attribute.GetCustomAttribute(typeof(Program).Assembly, typeof(System.Diagnostics.DebuggableAttribute));
            Console.WriteLine($"models optimized: {debuggable?.IsJITOptimizerDisabled != true}; app optimized: {app?.IsJITOptimizerDisabled != true}");
            """;
        consumer.WriteFile(Path.Combine("App", "Program.cs"), Report + "Console.WriteLine($\"first {Models.LeNet5.OutputLength}\");\n");

        ProcessResult first = Build(consumer, "first build");
        Assert.Matches(ToolInvocation, first.Output);
        string library = Path.Combine(consumer.Directory, "Models", "obj", "Debug", "net10.0", "Models.dll");
        Assert.True(File.Exists(library), first.ToString());
        DateTime libraryWrite = File.GetLastWriteTimeUtc(library);
        ProcessResult run = Run(consumer);
        Assert.Contains("models optimized: True; app optimized: False", run.Output);
        Assert.Contains("first 10", run.Output);

        consumer.WriteFile(Path.Combine("App", "Program.cs"), Report + "Console.WriteLine($\"second {Models.LeNet5.InputLength}\");\n");
        ProcessResult edited = Build(consumer, "Program.cs edited");
        Assert.DoesNotMatch(ToolInvocation, edited.Output);
        Assert.Equal(libraryWrite, File.GetLastWriteTimeUtc(library)); // the library's CoreCompile did not run
        Assert.Contains("second 784", Run(consumer).Output);
    }

    private ProcessResult Build(ConsumerProject consumer, string step)
    {
        ProcessResult result = Dotnet.Run(
            ["build", Path.Combine(consumer.Directory, "App", "App.csproj"), "-c", "Debug", "-nodeReuse:false", "-p:UseSharedCompilation=false", "-v:n"],
            consumer.Directory,
            TimeSpan.FromMinutes(10));
        output.WriteLine($"{step}: {result.Elapsed.TotalSeconds:F1} s");
        Assert.True(result.ExitCode == 0, $"{step} failed:\n{result}");
        return result;
    }

    private static ProcessResult Run(ConsumerProject consumer)
    {
        ProcessResult result = Dotnet.Run([Path.Combine(consumer.Directory, "App", "bin", "Debug", "net10.0", "App.dll")], consumer.Directory, TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}
