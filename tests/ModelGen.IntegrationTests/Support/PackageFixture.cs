namespace ModelGen.IntegrationTests.Support;

/// <summary>
/// Packs src/ModelGen.Package once per test run into artifacts/feed, so every consumer project below
/// restores the package built from the current sources; the .NET tool ModelGen.Cli (src/ModelGen.Cli)
/// is packed there too, the first time a test asks for it.
/// </summary>
public sealed class PackageFixture
{
    private readonly Lazy<ProcessResult> _toolPack = new(() => Dotnet.Run(
        ["pack", Path.Combine(Repo.Root, "src", "ModelGen.Cli", "ModelGen.Cli.csproj"), "-c", "Release", "-nodeReuse:false", "-p:UseSharedCompilation=false"],
        Repo.Root,
        TimeSpan.FromMinutes(10)));

    public PackageFixture()
    {
        string project = Path.Combine(Repo.Root, "src", "ModelGen.Package", "ModelGen.Package.csproj");
        Pack = Dotnet.Run(
            ["pack", project, "-c", "Release", "-nodeReuse:false", "-p:UseSharedCompilation=false"],
            Repo.Root,
            TimeSpan.FromMinutes(10));
        PackagePath = Path.Combine(Repo.Feed, $"ModelGen.{Repo.PackageVersion}.nupkg");
    }

    public ProcessResult Pack { get; }

    public string PackagePath { get; }

    public string ToolPackagePath => Path.Combine(Repo.Feed, $"ModelGen.Cli.{Repo.PackageVersion}.nupkg");

    /// <summary>Fails the calling test with the pack output when packing failed.</summary>
    public void AssertPacked()
    {
        Assert.True(Pack.ExitCode == 0 && File.Exists(PackagePath), "dotnet pack failed:\n" + Pack);
    }

    /// <summary>Packs the tool package ModelGen.Cli (once), after the ModelGen package; fails the calling test when either failed.</summary>
    public void AssertToolPacked()
    {
        AssertPacked();
        ProcessResult toolPack = _toolPack.Value;
        Assert.True(toolPack.ExitCode == 0 && File.Exists(ToolPackagePath), "dotnet pack of ModelGen.Cli failed:\n" + toolPack);
    }
}

[CollectionDefinition(Name)]
public sealed class PackageCollection : ICollectionFixture<PackageFixture>
{
    public const string Name = "ModelGen package";
}
