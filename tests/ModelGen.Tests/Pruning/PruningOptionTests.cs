using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Onnx;
using Xunit;

namespace ModelGen.Tests.Pruning;

/// <summary>PruningKind (--pruning-kind) and how it goes with Pruning (--pruning): checked before the model is read.</summary>
public class PruningOptionTests
{
    static CompressionPlan Plan(string? kind, double? pruning = null, string? calibration = null) =>
        CompressionPlan.Parse(new CompileOptions { ModelPath = "m.onnx", PruningKind = kind, Pruning = pruning, CalibrationPath = calibration });

    static string Error(string? kind, double? pruning = null)
    {
        var e = Assert.Throws<ModelGenException>(() => Plan(kind, pruning));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Equal("m.onnx", e.File);
        return e.Message;
    }

    [Fact]
    public void NOfMSetsTheAmountFromThePattern()
    {
        var plan = Plan("2:4");
        Assert.Equal(0.5, plan.Pruning);
        Assert.Equal((2, 4, PruningPattern.NOfM), (plan.PruningKind.N, plan.PruningKind.M, plan.PruningKind.Pattern));
        Assert.Equal(0.75, Plan("1:4").Pruning);
        Assert.Equal(0.5, Plan(" 4:8 ", 0.5).Pruning); // a Pruning that agrees is accepted
        Assert.Contains(Plan("2:4").Passes(), p => p is PruningPass);
    }

    [Fact]
    public void UnstructuredIsTheDefaultAndCaseDoesNotMatter()
    {
        Assert.Equal(PruningKind.Unstructured, Plan(null, 0.9).PruningKind);
        Assert.Equal(0.9, Plan("Unstructured", 0.9).Pruning);
        Assert.True(Plan("UNSTRUCTURED-SENSITIVE", 0.9, "c.npy").PruningKind.BySensitivity);
        Assert.Null(Plan(null).Pruning);
        Assert.DoesNotContain(Plan(null).Passes(), p => p is PruningPass);
    }

    [Fact]
    public void BadValuesAreMG0007SayingWhatToGive()
    {
        string unknown = Error("3:4");
        Assert.Contains("'3:4'", unknown);
        Assert.Contains("unstructured, unstructured-sensitive, 2:4, 1:4, 4:8", unknown);
        string disagrees = Error("2:4", 0.7);
        Assert.Contains("0.7 disagrees", disagrees);
        Assert.Contains("give 0.5", disagrees);
        Assert.Contains("needs Pruning", Error("unstructured"));
        Assert.Contains("give Calibration", Error("unstructured-sensitive", 0.8));
        Assert.Contains("above 0 and below 1", Error("2:4", 1.5));
    }

    [Fact]
    public void TheOriginalOfAPrunedCompileIsNotPruned() =>
        Assert.Null(CompressionPlan.Parse(new CompileOptions { ModelPath = "m.onnx", PruningKind = "2:4" }.Original).Pruning);
}
