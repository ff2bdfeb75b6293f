using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Pruning;

/// <summary>modelgen compile's --pruning-kind reaches the compiler's checks (MG0007 before any work).</summary>
[Collection("Console")] // Console.SetError is process-wide
public class PruningCliTests
{
    [Theory]
    [InlineData("2:4", "0.7", "PruningKind 2:4 keeps 2 of every 4 consecutive weights of a row")]
    [InlineData("5:8", "0.5", "PruningKind (--pruning-kind) '5:8' is not one of")]
    public void CompileRefusesABadPruningKindAsMG0007(string kind, string pruning, string message)
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        int exit;
        try { exit = Cli.Program.Main(["compile", TestData.Mnist("lenet300.onnx"), "--pruning-kind", kind, "--pruning", pruning, "--out", Path.GetTempPath()]); }
        finally { Console.SetError(old); }
        Assert.Equal(1, exit);
        Assert.Contains($"error MG0007: {message}", stderr.ToString());
    }
}
