using ModelGen.Compiler.Training.Kernels;
using Xunit;

namespace ModelGen.Tests.Training;

public class GemmKernelTests
{
    /// <summary>
    /// The kernel's contract: each element is the in-order chain of fused multiply-adds, so it must equal a
    /// scalar loop bit for bit (whatever the vector width, tiling and threads), for every operand layout.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 1, false, false, false)]
    [InlineData(5, 19, 7, false, true, false)]
    [InlineData(13, 33, 300, true, false, true)]
    [InlineData(70, 530, 41, true, true, true)]
    [InlineData(64, 64, 600, false, false, true)]
    public void EveryElementIsTheInOrderFmaChain(int m, int n, int k, bool transA, bool transB, bool accumulate)
    {
        var random = new Random(m * 1000 + n + k);
        float[] a = Random(m * k, random), b = Random(k * n, random), c = Random(m * n, random);
        var expected = (float[])c.Clone();
        var av = transA ? MatrixView<float>.Transposed(a, m) : MatrixView<float>.RowMajor(a, k);
        var bv = transB ? MatrixView<float>.Transposed(b, k) : MatrixView<float>.RowMajor(b, n);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            float sum = accumulate ? c[i * n + j] : 0f;
            for (int p = 0; p < k; p++) sum = MathF.FusedMultiplyAdd(av.At(i, p), bv.At(p, j), sum);
            expected[i * n + j] = sum;
        }
        Gemm.Multiply(m, n, k, av, bv, c, 0, accumulate);
        for (int i = 0; i < c.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(c[i]), $"element {i}: {expected[i]:R} vs {c[i]:R}");
    }

    [Fact]
    public void MatchesADoubleProduct()
    {
        var random = new Random(3);
        int m = 9, n = 21, k = 17;
        double[] a = [.. Enumerable.Range(0, m * k).Select(_ => random.NextDouble() - 0.5)], b = [.. Enumerable.Range(0, k * n).Select(_ => random.NextDouble() - 0.5)];
        var c = new double[m * n];
        Gemm.Multiply(m, n, k, MatrixView<double>.RowMajor(a, k), MatrixView<double>.RowMajor(b, n), c, 0, accumulate: false);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
            Assert.Equal(sum, c[i * n + j], 12);
        }
    }

    static float[] Random(int count, Random random) => [.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1))];
}
