using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Sharing;

/// <summary>modelgen compile's and bench's --weight-sharing reaches the compiler's check (MG0007 before any work).</summary>
[Collection("Console")] // Console.SetError is process-wide
public class SharingCliTests
{
    [Theory]
    [InlineData("compile", "9")]
    [InlineData("bench", "1")]
    public void BitsOutsideTwoToEightAreMG0007(string command, string bits)
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        int exit;
        string[] args = command == "compile"
            ? ["compile", TestData.Mnist("lenet300.onnx"), "--weight-sharing", bits, "--out", Path.GetTempPath()]
            : ["bench", TestData.Mnist("lenet300.onnx"), "--weight-sharing", bits];
        try { exit = Cli.Program.Main(args); }
        finally { Console.SetError(old); }
        Assert.Equal(1, exit);
        Assert.Contains($"error MG0007: WeightSharing (--weight-sharing) is the bits of each layer's codebook index, 2 to 8 (4 shares 16 values per layer), not {bits}", stderr.ToString());
    }
}
