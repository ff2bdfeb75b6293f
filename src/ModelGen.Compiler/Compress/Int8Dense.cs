using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A fully connected layer in int8 arithmetic: its input quantized to uint8 with the calibrated
/// <see cref="Input"/> parameters, its weights int8 symmetric per output channel, an int32 dot product
/// plus the layer's <see cref="AccumulatorBias"/>, and one float32 multiply out:
/// y[j] = (Σk xq[k]·q[j, k] + bias[j])·Multipliers[j], Multipliers[j] = sx·sw[j].
/// <see cref="Apply"/> is the arithmetic the emitted kernel does, operation for operation, so the
/// evaluator and the generated code give the same bits.
/// </summary>
public sealed record Int8Dense(QuantParams Input, sbyte[] Q, int[] RowSums, float[] Multipliers, int N, int K) : IInt8Layer
{
    /// <summary>The multipliers as float16 ratios of <see cref="LayerMultiplier"/> (see <see cref="ChannelScales"/>); null: float32.</summary>
    public Half[]? MultiplierRatios { get; init; }

    /// <summary>Multipliers[j] = (float)MultiplierRatios[j]·LayerMultiplier, in float32.</summary>
    public float LayerMultiplier { get; init; }

    /// <summary>The per-output integer the kernel adds (the float bias, if any, folded in).</summary>
    public int[] Bias(float[]? bias) => AccumulatorBias.Fold(bias, Input.ZeroPoint, RowSums, Multipliers);

    /// <summary>x [rows, K] → y [rows, N]; with <paramref name="output"/>, the uint8 outputs (as their real values).</summary>
    public float[] Apply(float[] x, float[]? bias, int rows, Requantization? output = null)
    {
        var y = new float[(long)rows * N];
        var xq = new byte[K];
        var folded = Bias(bias);
        var m = output is null ? null : Multipliers.Select(output.Multiplier).ToArray();
        for (int r = 0; r < rows; r++)
        {
            for (int k = 0; k < K; k++) xq[k] = Input.Quantize(x[(long)r * K + k]);
            for (int j = 0; j < N; j++)
            {
                int acc = 0;
                for (int k = 0; k < K; k++) acc += xq[k] * Q[(long)j * K + k];
                y[(long)r * N + j] = output is null ? (acc + folded[j]) * Multipliers[j] : output.Output.Dequantize(output.Apply(acc + folded[j], m![j]));
            }
        }
        return y;
    }
}
