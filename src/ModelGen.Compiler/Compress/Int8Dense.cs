using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A fully connected layer in int8 arithmetic: its input quantized to uint8 with the calibrated
/// <see cref="Input"/> parameters, its weights int8 symmetric per output channel, an int32 dot product,
/// the zero point taken out with the weights' row sums, and one float32 multiply-add to the output:
/// y[j] = (Σk xq[k]·q[j, k] − zx·RowSum[j])·Multiplier[j] + b[j], Multiplier[j] = sx·sw[j].
/// <see cref="Apply"/> is the arithmetic the emitted kernel does, operation for operation, so the
/// evaluator and the generated code give the same bits.
/// </summary>
public sealed record Int8Dense(QuantParams Input, sbyte[] Q, int[] RowSums, float[] Multipliers, int N, int K)
{
    /// <summary>x [rows, K] → y [rows, N] (bias added by the caller's order: acc·M + b).</summary>
    public float[] Apply(float[] x, float[]? bias, int rows)
    {
        var y = new float[(long)rows * N];
        var xq = new byte[K];
        for (int r = 0; r < rows; r++)
        {
            for (int k = 0; k < K; k++) xq[k] = Input.Quantize(x[(long)r * K + k]);
            for (int j = 0; j < N; j++)
            {
                int acc = 0;
                for (int k = 0; k < K; k++) acc += xq[k] * Q[(long)j * K + k];
                acc -= Input.ZeroPoint * RowSums[j];
                float v = acc * Multipliers[j];
                y[(long)r * N + j] = bias is null ? v : v + (bias.Length == N ? bias[j] : bias[(long)r * N + j]);
            }
        }
        return y;
    }
}
