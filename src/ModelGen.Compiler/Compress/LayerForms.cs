using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>A fully connected layer (Dense) or a convolution with int8 weights only: the arithmetic stays float32 (the graph keeps float weights equal to Scale·Q).</summary>
public sealed record Int8WeightsForm(QuantizedWeights Weights) : LayerForm;

/// <summary>A fully connected layer with int4 weights only (the graph keeps the float weights they stand for).</summary>
public sealed record Int4WeightsForm(QuantizedInt4 Weights) : LayerForm;

/// <summary>
/// A fully connected layer (one row) whose weights are stored sparse (SparseStorage): float32 values, or with
/// <paramref name="Int8"/> int8 weight codes (the values of <paramref name="Weights"/> are the codes, exact in
/// float) with a float32 scale per row, as <see cref="Int8WeightsForm"/>. The graph keeps the float weights (zeros
/// included, Scale·Q for int8), so the arithmetic is the dense layer's: the kernel only skips the zeros.
/// With <paramref name="Shared"/> (weight sharing), the values of <see cref="Weights"/> are codebook codes (code 0 is
/// exact zero, so padding entries are code 0) stored <see cref="SharedWeights.Bits"/> bits each, and the codebook
/// is embedded beside them; the graph keeps the values the codes stand for.
/// </summary>
public sealed record SparseDenseForm(SparseWeights Weights, QuantizedWeights? Int8, SharedWeights? Shared = null) : LayerForm
{
    /// <summary>The int8 codes' scale per row (null: float32 values).</summary>
    public float[]? Int8Scales => Int8?.Scales;

    /// <summary>Bytes a value takes: 4 (float32) or 1 (int8); codebook codes are counted in bits (<see cref="Bytes"/>).</summary>
    public int ValueBytes => Int8Scales is null ? 4 : 1;

    /// <summary>The embedded bytes: values (or packed codes and the codebook), indices, row counts, and the int8 scales.</summary>
    public long Bytes => Shared is { } shared ? Weights.BytesWithCodes(shared.Bits) + shared.CodebookBytes : Weights.Bytes(ValueBytes) + (Int8Scales?.Length ?? 0) * 4L;
}

/// <summary>
/// A form computed in integers: its <see cref="Evaluate"/> is what the emitted kernel computes, bit for bit, on
/// the real values of uint8 activations. The reference evaluator calls it in place of the operator's float32 semantics.
/// </summary>
public abstract record IntegerForm : LayerForm
{
    public abstract TensorData[] Evaluate(Node node, TensorData?[] inputs);
}

/// <summary>What an int8 layer (<see cref="Int8Dense"/>, <see cref="Int8Conv"/>) holds: its input quantization, int8 weights and per-channel multipliers.</summary>
public interface IInt8Layer
{
    QuantParams Input { get; }
    sbyte[] Q { get; }
    float[] Multipliers { get; }

    /// <summary>The per-output integer the kernel adds (the float bias, if any, folded in).</summary>
    int[] Bias(float[]? bias);
}

/// <summary>A layer that reads the uint8 output of an int8 layer, and which tensor it reads (the output, or a pooling's or Flatten's of it).</summary>
public sealed record LayerReader(string Node, string Tensor);

/// <summary>A layer's bias input before and after bias correction (null: it had none).</summary>
public sealed record BiasInputs(string? Original, string Corrected);

/// <summary>
/// A layer in int8 arithmetic (<see cref="Int8DenseForm"/>, <see cref="Int8ConvForm"/>): its input quantized with
/// <see cref="Input"/>, int8 weights, int32 sums; with <see cref="Output"/>, it writes uint8 for its readers.
/// </summary>
public abstract record Int8LayerForm : IntegerForm
{
    /// <summary>The layer's quantized weights and parameters.</summary>
    public abstract IInt8Layer Int8 { get; }

    public QuantParams Input => Int8.Input;
    public float[] Multipliers => Int8.Multipliers;
    public sbyte[] Q => Int8.Q;

    /// <summary>The per-output integer the kernel adds (the float bias, if any, folded in).</summary>
    public int[] FoldedBias(float[]? bias) => Int8.Bias(bias);

    /// <summary>How the layer writes its output as uint8 (Int8Quantization.Resolve); null: it writes float32.</summary>
    public Requantization? Output { get; init; }

    /// <summary>The int8 layers and uint8 Adds and Concats reading the output, when every reader is one; null otherwise.</summary>
    public IReadOnlyList<LayerReader>? Readers { get; init; }

    /// <summary>Per channel the largest |sum + bias| the int32 accumulator can reach, for the requantization (null: not known).</summary>
    public long[]? SumBounds { get; init; }

    /// <summary>The bias before and after bias correction (null: not corrected); mixed precision swaps them.</summary>
    public BiasInputs? Bias { get; init; }
}

/// <summary>A fully connected layer (one row) in int8 arithmetic.</summary>
public sealed record Int8DenseForm(Int8Dense Layer) : Int8LayerForm
{
    public override IInt8Layer Int8 => Layer;

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!; var b = inputs.Length > 2 ? inputs[2] : null;
        return [new TensorData([.. x.Shape[..^1], Layer.N], Layer.Apply(x.Floats, b?.Floats, (int)(x.Count / Layer.K), Output))];
    }
}

/// <summary>A 2-D convolution in int8 arithmetic.</summary>
public sealed record Int8ConvForm(Int8Conv Layer) : Int8LayerForm
{
    public override IInt8Layer Int8 => Layer;

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!; var w = inputs[1]!; var b = inputs.Length > 2 ? inputs[2] : null;
        var geo = ConvOperator.Geometry(node, x.Shape, w.Shape);
        int group = (int)node.Int("group", 1);
        return [new TensorData(geo.OutputShape(x.Shape[0], w.Shape[0], x.Shape.Length - 2), Layer.Apply(x.Floats, x.Shape, geo, group, b?.Floats, Output))];
    }
}

/// <summary>
/// An Add of two uint8 activations between int8 layers (residual connections), in integers. <see cref="Group"/>: the
/// int8 layers whose uint8 outputs it depends on; when mixed precision puts one in float32, the Add works in float32.
/// </summary>
public sealed record ByteAddForm(Int8Add Add, IReadOnlyList<string> Group) : IntegerForm
{
    public override TensorData[] Evaluate(Node node, TensorData?[] inputs) => [new TensorData(inputs[0]!.Shape, Add.Apply(inputs[0]!.Floats, inputs[1]!.Floats))];
}

/// <summary>A Concat of uint8 activations, all in <see cref="Params"/> (the bytes are copied as they are; the evaluator's copy is exact). <see cref="Group"/> as for <see cref="ByteAddForm"/>.</summary>
public sealed record ByteConcatForm(QuantParams Params, IReadOnlyList<string> Group) : LayerForm;

/// <summary>
/// A GlobalAveragePool or 2-D AveragePool of uint8 activations (the layer before writes uint8 for it, quantized as
/// <see cref="Params"/>): the output is the real value of the rounded integer mean of the input bytes.
/// </summary>
public sealed record ByteAverageForm(QuantParams Params) : IntegerForm
{
    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        return node.OpType == "GlobalAveragePool" ? [Global(x)] : [Window(node, x)];
    }

    TensorData Global(TensorData x)
    {
        int planes = x.Shape[0] * x.Shape[1], n = (int)(x.Count / planes);
        var y = new float[planes];
        for (int p = 0; p < planes; p++)
        {
            int sum = 0;
            foreach (float v in x.Floats.AsSpan(p * n, n)) sum += Params.Quantize(v);
            y[p] = Params.Dequantize(Int8Quantization.AverageBytes(sum, n));
        }
        return new TensorData([x.Shape[0], x.Shape[1], .. Enumerable.Repeat(1, x.Shape.Length - 2)], y);
    }

    /// <summary>A window's bytes averaged as the kernel does: a counted pad is a real 0, the zero point.</summary>
    TensorData Window(Node node, TensorData x)
    {
        var geo = MaxPoolOperator.Geometry(new Graph(), node, x.Shape);
        bool includePad = node.Int("count_include_pad", 0) != 0;
        int n = x.Shape[0], c = x.Shape[1];
        // The input rows of each output row and the input columns of each output column that fall inside the input.
        static int[] Inside(int start, int kernel, int dilation, int size) => [.. Enumerable.Range(0, kernel).Select(k => start + k * dilation).Where(i => i >= 0 && i < size)];
        var rows = Enumerable.Range(0, geo.OutH).Select(oh => Inside(oh * geo.StrideH - geo.PadTop, geo.KernelH, geo.DilationH, geo.InH)).ToArray();
        var columns = Enumerable.Range(0, geo.OutW).Select(ow => Inside(ow * geo.StrideW - geo.PadLeft, geo.KernelW, geo.DilationW, geo.InW)).ToArray();
        var y = new float[(long)n * c * geo.OutH * geo.OutW];
        long at = 0;
        for (int nc = 0; nc < n * c; nc++)
            for (int oh = 0; oh < geo.OutH; oh++)
                for (int ow = 0; ow < geo.OutW; ow++)
                {
                    int sum = 0;
                    foreach (int ih in rows[oh])
                        foreach (int iw in columns[ow]) sum += Params.Quantize(x.Floats[((long)nc * geo.InH + ih) * geo.InW + iw]);
                    int divisor = AveragePoolOperator.Divisor(geo, includePad, oh, ow), inside = rows[oh].Length * columns[ow].Length;
                    y[at++] = Params.Dequantize(Int8Quantization.AverageBytes(sum + (divisor - inside) * Params.ZeroPoint, divisor));
                }
        return new TensorData(geo.OutputShape(n, c, x.Shape.Length - 2), y);
    }
}

/// <summary>
/// A node int8 calibration gave an integer form (<see cref="Calibrated"/>) that works in float32 now: mixed precision
/// keeps the layer in float32, or an Add or Concat whose group holds such a layer. The calibrated form is kept so the
/// node can be switched back without calibrating again.
/// </summary>
public sealed record KeptFloat32Form(LayerForm Calibrated) : LayerForm;
