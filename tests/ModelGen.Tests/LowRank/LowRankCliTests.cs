using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.LowRank;

/// <summary>modelgen compile's --low-rank reaches the compiler's check (MG0007 before any work).</summary>
[Collection("Console")] // Console.SetError is process-wide
public class LowRankCliTests
{
    [Theory]
    [InlineData("compile")]
    [InlineData("bench")]
    public void AnEnergyOfOneOrMoreIsMG0007(string command)
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        int exit;
        string[] args = command == "compile"
            ? ["compile", TestData.Mnist("lenet300.onnx"), "--low-rank", "1", "--out", Path.GetTempPath()]
            : ["bench", TestData.Mnist("lenet300.onnx"), "--low-rank", "1"];
        try { exit = Cli.Program.Main(args); }
        finally { Console.SetError(old); }
        Assert.Equal(1, exit);
        Assert.Contains("error MG0007: LowRank (--low-rank) '1' is not a low-rank target: write an energy, the share of each factorized layer's energy", stderr.ToString());
    }
}
