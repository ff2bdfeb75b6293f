using MathNet.Numerics.LinearAlgebra;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// The GPTQ reconstruction on row-major arrays (issue 19: int4-weights took minutes in MathNet's managed inverse and
/// indexers) against the textbook algorithm written with MathNet, as it was: the same int4 codes, on one thread or many.
/// </summary>
[Collection("DenseMath threads")]
public sealed class GptqTests
{
    /// <summary>GPTQ as ModelGen computed it before: H = 2XᵀX/S damped, U = chol(H⁻¹)ᵀ, columns in order.</summary>
    static sbyte[] Reference(float[] w, int n, int k, IReadOnlyList<float[]> activations, float[] scales)
    {
        static sbyte Round(float v) => (sbyte)Math.Clamp(MathF.Round(v, MidpointRounding.ToEven), -7, 7);
        var x = Matrix<double>.Build.Dense(activations.Count, k, (r, c) => activations[r][c]);
        var h = x.TransposeThisAndMultiply(x).Multiply(2.0 / activations.Count);
        double damp = 0.01 * Enumerable.Range(0, k).Average(i => h[i, i]) + 1e-8;
        for (int i = 0; i < k; i++) { if (h[i, i] == 0) h[i, i] = 1; h[i, i] += damp; }
        var u = h.Inverse().Cholesky().Factor.Transpose();
        var work = Matrix<double>.Build.Dense(n, k, (r, c) => w[(long)r * k + c]);
        var q = new sbyte[(long)n * k];
        for (int col = 0; col < k; col++)
            for (int j = 0; j < n; j++)
            {
                sbyte qv = Round((float)(work[j, col] / scales[j]));
                q[(long)j * k + col] = qv;
                double error = (work[j, col] - qv * scales[j]) / u[col, col];
                for (int t = col + 1; t < k; t++) work[j, t] -= error * u[col, t];
            }
        return q;
    }

    [Fact]
    public void TheReconstructionGivesTheReferenceCodesOnOneThreadOrMany()
    {
        const int n = 24, k = 200, samples = 96; // k over three blocks of the blocked Cholesky
        var w = OnnxBuilder.Random(n * k, 41);
        // Correlated inputs (each column leans on the one before) and one always zero, as after a ReLU.
        var noise = OnnxBuilder.Random(samples * k, 42);
        var activations = Enumerable.Range(0, samples).Select(s =>
        {
            var a = new float[k];
            for (int c = 0; c < k; c++) a[c] = c == 7 ? 0 : noise[s * k + c] + (c > 0 ? 0.6f * a[c - 1] : 0);
            return a;
        }).ToList();
        var many = Int4Quantization.Reconstruct(w, n, k, activations); // not the memo of Quantize: computed here
        Assert.Equal("GPTQ reconstruction", many.Method);
        var reference = Reference(w, n, k, activations, many.Scales);
        var codes = Int4Quantization.Dequantize(many).Select((v, i) => (sbyte)MathF.Round(v / many.Scales[i / k])).ToArray();
        Assert.Equal(reference, codes);
        // The reconstruction does better than rounding on the data it was fitted to.
        Assert.True(many.ReconstructionError < many.RoundToNearestError);
        // The same weights and inputs again: the reconstruction already made.
        Assert.Same(Int4Quantization.Quantize(w, n, k, activations), Int4Quantization.Quantize(w, n, k, activations));

        DenseMath.MaxThreads = 1;
        try { Assert.Equal(many.Packed, Int4Quantization.Reconstruct(w, n, k, activations).Packed); }
        finally { DenseMath.MaxThreads = null; }
    }
}
