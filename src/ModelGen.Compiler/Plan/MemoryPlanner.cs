namespace ModelGen.Compiler.Plan;

/// <summary>A buffer to place in the arena: its size and the schedule steps during which it is live.</summary>
public sealed record BufferRequest(int Id, long Bytes, int FirstStep, int LastStep);

/// <summary>
/// Static memory plan: places buffers in one arena so that buffers live at the same time never overlap.
/// Greedy by size (largest first, each at the lowest offset that fits among the already placed buffers
/// that overlap it in time), the heuristic of TFLite's arena planner; offsets aligned for SIMD loads.
/// </summary>
public static class MemoryPlanner
{
    public const int Alignment = 64;

    public static (Dictionary<int, long> Offsets, long ArenaBytes) Plan(IReadOnlyList<BufferRequest> buffers)
    {
        var offsets = new Dictionary<int, long>();
        var placed = new List<(BufferRequest Buffer, long Offset)>();
        long arena = 0;
        foreach (var b in buffers.OrderByDescending(b => b.Bytes).ThenBy(b => b.FirstStep).ThenBy(b => b.Id))
        {
            var conflicts = placed
                .Where(p => p.Buffer.FirstStep <= b.LastStep && b.FirstStep <= p.Buffer.LastStep)
                .OrderBy(p => p.Offset)
                .ToList();
            long offset = 0;
            foreach (var (other, otherOffset) in conflicts)
            {
                if (offset + b.Bytes <= otherOffset) break;
                offset = Math.Max(offset, Align(otherOffset + other.Bytes));
            }
            offsets[b.Id] = offset;
            placed.Add((b, offset));
            arena = Math.Max(arena, offset + b.Bytes);
        }
        return (offsets, Align(arena));
    }

    /// <summary>
    /// The most bytes live at any one step, each buffer rounded up to the plan's alignment: no plan that
    /// aligns its buffers can use less. A sweep over start and end events.
    /// </summary>
    public static long LowerBound(IReadOnlyList<BufferRequest> buffers)
    {
        var events = buffers.SelectMany(b => new[] { (Step: b.FirstStep, Delta: Align(b.Bytes)), (Step: b.LastStep + 1, Delta: -Align(b.Bytes)) })
            .OrderBy(e => e.Step).ThenBy(e => e.Delta);
        long live = 0, best = 0;
        foreach (var (_, delta) in events) best = Math.Max(best, live += delta);
        return best;
    }

    public static long Align(long v) => (v + Alignment - 1) / Alignment * Alignment;
}
