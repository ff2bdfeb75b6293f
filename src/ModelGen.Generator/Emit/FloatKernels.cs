using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

// The float32 core kernels, written by KernelEmitter's methods and registered like every other kind.

internal sealed class ConvKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Conv;
    public string InputName(ArtifactNode node, int i) => (KernelEmitter.ConvOf(node) switch
    {
        { Int8Weights: true } => new[] { "x", "w", "scales", "b" },
        { Sparse.IsNOfM: true } => new[] { "x", "w", "index", "b" },
        { Sparse: not null } => new[] { "x", "w", "index", "counts", "b" },
        _ => new[] { "x", "w", "b" },
    })[i];

    public void Emit(KernelContext k)
    {
        var method = k.Conv.Method;
        if (method == ConvMethod.Gemm) KernelEmitter.ConvGemm(k.W, k.Node, k.Name, k.Signature, k.Inputs, k.Outputs, k.Simd);
        else if (method == ConvMethod.ImplicitGemm) ImplicitGemmEmitter.Emit(k.W, k.Node, k.Name, k.Signature, k.Inputs, k.Outputs, k.Simd);
        else if (method == ConvMethod.Sparse) SparseConvEmitter.Emit(k);
        else if (method == ConvMethod.Depthwise) DepthwiseConvEmitter.Emit(k.W, k.Node, k.Name, k.Signature, k.Inputs, k.Outputs, k.Simd);
        else
        {
            bool usesAxpy = false;
            KernelEmitter.Conv(k.W, k.Node, k.Name, k.Signature, k.Inputs, k.Y, ref usesAxpy, k.Simd);
            if (usesAxpy) k.Helpers.Add("Axpy");
        }
    }
}

internal sealed class MaxPoolKernel : IKernel
{
    public KernelKind Kernel => KernelKind.MaxPool;
    public string InputName(ArtifactNode node, int i) => "x";
    public void Emit(KernelContext k) => KernelEmitter.MaxPool(k.W, k.Node, k.Name, k.Signature, k.Inputs[0], k.Y, k.Simd);
}

internal sealed class DenseKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Dense;
    public string InputName(ArtifactNode node, int i) => KernelEmitter.Dense(node).Sparse is { } sparse ? SparseGemvEmitter.InputName(sparse, i)
        : KernelEmitter.Dense(node).Layout == DenseLayout.Codebook ? new[] { "x", "w", "codebook", "b" }[i]
        : (KernelEmitter.Dense(node).HasScales ? new[] { "x", "w", "scales", "b" } : new[] { "x", "w", "b" })[i];
    public void Emit(KernelContext k) => KernelEmitter.Dense(k.W, k.Node, k.Name, k.Signature, k.Inputs, k.Y, k.Simd);
}

internal sealed class MatMulKernel : IKernel
{
    public KernelKind Kernel => KernelKind.MatMul;
    public string InputName(ArtifactNode node, int i) => new[] { "a", "b" }[i];
    public void Emit(KernelContext k) => KernelEmitter.MatMul(k.W, k.Name, k.Signature, k.Inputs[0], k.Inputs[1], k.Y);
}

internal sealed class UnaryKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Unary;
    public string InputName(ArtifactNode node, int i) => "x";
    public void Emit(KernelContext k) => KernelEmitter.Unary(k.W, k.Node, k.Name, k.Signature, k.Y, k.Simd);
}

internal sealed class CopyKernel : IKernel
{
    public KernelKind Kernel => KernelKind.Copy;
    public string InputName(ArtifactNode node, int i) => "x";
    public void Emit(KernelContext k) => KernelEmitter.Copy(k.W, k.Name, k.Signature, k.Y);
}
