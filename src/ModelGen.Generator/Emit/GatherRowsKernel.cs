using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>Gather with indices given at run time (an embedding lookup): each index selects a slab of x, copied whole.</summary>
internal sealed class GatherRowsKernel : IKernel
{
    public KernelKind Kernel => KernelKind.GatherRows;

    public string InputName(ArtifactNode node, int i) => i == 0 ? "x" : "indices";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var rows = k.Node.GatherRows ?? throw new System.FormatException($"GatherRows '{k.Node.Name}' has no outer, axis and inner sizes");
        int outer = rows.Outer, axis = rows.Axis, inner = rows.Inner;
        long count = k.Inputs[1].ElementCount;
        w.Line($"// Gather: y{CodeWriter.Shape(k.Y.Shape)} = x{CodeWriter.Shape(k.Inputs[0].Shape)} at {count} run-time indices along an axis of {axis} (negative ones count from the end).");
        using var method = k.OpenMethod();
        using var indexLoop = w.Block($"for (int j = 0; j < {count}; j++)");
        w.Line("long index = indices[j];");
        w.Line($"if (index < 0) index += {axis};");
        w.Line($"if ((ulong)index >= {axis}UL)");
        w.Line($"    throw new ArgumentOutOfRangeException(nameof(indices), indices[j], \"An index is outside the {axis} entries it selects from.\");");
        using (w.For("o", outer, out string o))
        {
            string from = Expr.Times(Expr.Plus(Expr.Times(o, axis), "(int)index"), inner), to = Expr.Times(Expr.Plus(Expr.Times(o, count), "j"), inner);
            w.Line($"x.Slice({from}, {inner}).CopyTo(y.Slice({to}, {inner}));");
        }
    }
}
