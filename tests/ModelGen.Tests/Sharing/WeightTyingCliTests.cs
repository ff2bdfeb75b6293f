using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Sharing;

/// <summary>modelgen compile's --weight-sharing-ties reaches the compiler's checks (MG0007 before any work).</summary>
[Collection("Console")] // Console.SetError is process-wide
public class WeightTyingCliTests
{
    [Theory]
    [InlineData("fc1,fc2", "WeightSharingTies (--weight-sharing-ties) ties layers to one shared codebook: give WeightSharing")]
    [InlineData("fc1", "WeightSharingTies (--weight-sharing-ties) 'fc1': the group 'fc1' names one layer")]
    [InlineData("auto:1.5", "WeightSharingTies (--weight-sharing-ties) 'auto:1.5': the similarity threshold after 'auto:' is a number above 0 and at most 1")]
    public void CompileRefusesBadTiesAsMG0007(string ties, string message)
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        int exit;
        try { exit = Cli.Program.Main(["compile", TestData.Mnist("lenet300.onnx"), "--weight-sharing-ties", ties, "--out", Path.GetTempPath()]); }
        finally { Console.SetError(old); }
        Assert.Equal(1, exit);
        Assert.Contains($"error MG0007: {message}", stderr.ToString());
    }
}
