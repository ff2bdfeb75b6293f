namespace ModelGen.IntegrationTests.Support;

/// <summary>
/// Packs src/ModelGen.Package once per test run into artifacts/feed, so every consumer project below
/// restores the package built from the current sources.
/// </summary>
public sealed class PackageFixture
{
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

    /// <summary>Fails the calling test with the pack output when packing failed.</summary>
    public void AssertPacked()
    {
        Assert.True(Pack.ExitCode == 0 && File.Exists(PackagePath), "dotnet pack failed:\n" + Pack);
    }
}

[CollectionDefinition(Name)]
public sealed class PackageCollection : ICollectionFixture<PackageFixture>
{
    public const string Name = "ModelGen package";
}
