using ModelGen.Compiler.Plan;

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
}
