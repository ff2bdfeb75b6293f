using System.Security;

namespace ModelGen.IntegrationTests.Support;

/// <summary>
/// A throw-away consumer project in a temporary folder: its own nuget.config (the local feed for
/// ModelGen, nuget.org for the rest) and its own package folder, so a package cached by an earlier
/// run never hides the one just packed. Outside the repository, so none of its Directory.*.props apply.
/// The folder's path has a space in it, so every path the targets and the task pass on is one that
/// needs quoting.
/// </summary>
internal sealed class ConsumerProject : IDisposable
{
    private ConsumerProject(string directory, string name)
    {
        Directory = directory;
        Name = name;
    }

    public string Directory { get; }

    public string Name { get; }

    public string ProjectPath => Path.Combine(Directory, Name + ".csproj");

    /// <summary>The artifact folder for a Release build without a runtime identifier.</summary>
    public string ArtifactFolder => Path.Combine(Directory, "obj", "Release", "net10.0", "modelgen");

    /// <param name="spaceInPath">False for a NativeAOT publish: ILCompiler 10.0.12's link step passes the package
    /// folder's paths to the linker unquoted ("/usr/bin/ld.bfd: cannot find /tmp/modelgen"), not ModelGen's doing.</param>
    public static ConsumerProject Create(string name, bool spaceInPath = true)
    {
        string directory = Path.Combine(Path.GetTempPath(), spaceInPath ? "modelgen it" : "modelgen-it", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(directory);
        var project = new ConsumerProject(directory, name);
        File.WriteAllText(Path.Combine(directory, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="modelgen-local" value="{SecurityElement.Escape(Repo.Feed)}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="modelgen-local"><package pattern="ModelGen" /></packageSource>
                <packageSource key="nuget.org"><package pattern="*" /></packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        return project;
    }

    /// <summary>Writes the project file: an executable that references ModelGen, plus <paramref name="items"/>.</summary>
    public void WriteProject(string items, string properties = "")
    {
        File.WriteAllText(ProjectPath, $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <RestorePackagesPath>$(MSBuildThisFileDirectory).packages/</RestorePackagesPath>
                {properties}
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ModelGen" Version="{Repo.PackageVersion}" />
              </ItemGroup>
              <ItemGroup>
                {items}
              </ItemGroup>
            </Project>
            """);
    }

    public void WriteFile(string relativePath, string content)
    {
        string path = Path.Combine(Directory, relativePath);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    public string CopyModel(string fileName)
    {
        string target = Path.Combine(Directory, fileName);
        File.Copy(Path.Combine(Repo.MnistData, fileName), target, overwrite: true);
        return target;
    }

    public ProcessResult Build(params string[] extra) =>
        Dotnet.Run(
            ["build", ProjectPath, "-c", "Release", "-nodeReuse:false", "-p:UseSharedCompilation=false", .. extra],
            Directory,
            TimeSpan.FromMinutes(10));

    public ProcessResult RunBuilt(params string[] arguments) =>
        Dotnet.Run(
            [Path.Combine(Directory, "bin", "Release", "net10.0", Name + ".dll"), .. arguments],
            Directory,
            TimeSpan.FromMinutes(5));

    public void Dispose()
    {
        if (Environment.GetEnvironmentVariable("MODELGEN_KEEP_TEMP") == "1")
        {
            return;
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder does not fail a test.
        }
    }
}
