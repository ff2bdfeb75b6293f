using ModelGen.Compiler;
using ModelGen.Compiler.Plan;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

public sealed class MemoryPlannerTests
{
    [Fact]
    public void BuffersLiveAtTheSameTimeNeverOverlapAndTheArenaIsNearTheLowerBound()
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 50; trial++)
        {
            var buffers = Enumerable.Range(0, 12).Select(i =>
            {
                int first = rng.Next(20);
                return new BufferRequest(i, rng.Next(1, 5000) * 4, first, first + rng.Next(0, 4));
            }).ToList();
            var (offsets, arena) = MemoryPlanner.Plan(buffers);
            foreach (var a in buffers)
            {
                Assert.Equal(0, offsets[a.Id] % MemoryPlanner.Alignment);
                Assert.True(offsets[a.Id] + a.Bytes <= arena);
                foreach (var b in buffers.Where(b => b.Id < a.Id && b.FirstStep <= a.LastStep && a.FirstStep <= b.LastStep))
                    Assert.True(offsets[a.Id] + a.Bytes <= offsets[b.Id] || offsets[b.Id] + b.Bytes <= offsets[a.Id], $"buffers {a.Id} and {b.Id} overlap");
            }
            Assert.True(arena >= MemoryPlanner.LowerBound(buffers));
        }
    }

    [Fact]
    public void AChainReusesMemory()
    {
        // a → b → c: a and c never live together, so they share offset 0.
        var buffers = new[] { new BufferRequest(0, 1024, 0, 1), new BufferRequest(1, 512, 1, 2), new BufferRequest(2, 1024, 2, 3) };
        var (offsets, arena) = MemoryPlanner.Plan(buffers);
        Assert.Equal(1536, arena);
        Assert.Equal(offsets[0], offsets[2]);
    }

    /// <summary>Every model the tests compile: the conformance grids, the whole architectures, the MNIST models.</summary>
    public static IEnumerable<(string Name, string Path, int BatchSize)> TestModels()
    {
        var grids = new[] { OperatorConformanceTests.All, DataMovementConformanceTests.All, NormalizationConformanceTests.All, ConvTransposeConformanceTests.All,
            RecurrentConformanceTests.All, ResizeConformanceTests.All, RuntimeShapeInputTests.All };
        foreach (var c in grids.SelectMany(g => g)) yield return (c.Name, c.Model.Save(c.Name + ".onnx"), c.BatchSize);
        yield return ("DepthwiseSeparableCnn", SyntheticModels.DepthwiseSeparableCnn().Save("dwsep.onnx"), 1);
        foreach (string m in new[] { "lenet5.onnx", "lenet300.onnx" })
            foreach (int batch in new[] { 1, 8 }) yield return ($"{m} batch {batch}", TestData.Mnist(m), batch);
    }

    [Fact]
    public void OnEveryTestModelTheArenaIsWithinFivePercentOfTheLivenessLowerBound()
    {
        int models = 0;
        foreach (var (name, path, batch) in TestModels())
        {
            var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "M", BatchSize = batch });
            var plan = artifact.MemoryPlan!;
            Assert.Equal(plan.ArenaBytes, artifact.ScratchBytes);
            Assert.True(plan.LowerBound <= plan.ArenaBytes && plan.ArenaBytes <= plan.TensorBytes + 64L * artifact.Tensors.Count, $"{name}: arena {plan.ArenaBytes} outside [{plan.LowerBound}, all tensors]");
            long slack = plan.LowerBound / 20;
            Assert.True(plan.ArenaBytes <= plan.LowerBound + slack, $"{name}: arena {plan.ArenaBytes} B, liveness lower bound {plan.LowerBound} B");
            models++;
        }
        Assert.True(models > 250, $"{models} models");
    }
}
