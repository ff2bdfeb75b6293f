namespace ModelGen.IntegrationTests.Support;

/// <summary>Paths in the source tree the tests run from.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Feed => Path.Combine(Root, "artifacts", "feed");

    public static string MnistData => Path.Combine(Root, "data", "mnist");

    public static string PackageVersion => "0.1.0-dev";

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")) &&
                Directory.Exists(Path.Combine(dir.FullName, "src", "ModelGen.Package")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root above " + AppContext.BaseDirectory);
    }
}
