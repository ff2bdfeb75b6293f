using System.Numerics;

namespace ModelGen.Compiler.Training;

/// <summary>
/// A dense row-major tensor of the training engine. Activations carry the mini-batch as their first axis
/// (the IR's shapes are one sample's, with a leading 1); parameters and constants have the IR's shape.
/// Generic so that the same rules train in float32 and check their gradients in double.
/// </summary>
public sealed class Tensor<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public int[] Shape { get; }
    public T[] Data { get; }

    public Tensor(int[] shape) : this(shape, new T[checked((int)TensorData.Size(shape))]) { }

    public Tensor(int[] shape, T[] data)
    {
        if (data.LongLength != TensorData.Size(shape)) throw new ArgumentException("element count does not match the shape");
        Shape = shape;
        Data = data;
    }

    public int Count => Data.Length;
    public Span<T> Span => Data;

    /// <summary>The same elements seen with another shape (Reshape, Flatten, Squeeze: no copy).</summary>
    public Tensor<T> Reshaped(int[] shape) => new(shape, Data);

    public static Tensor<T> From(TensorData constant)
    {
        var values = new T[constant.Floats.Length];
        for (int i = 0; i < values.Length; i++) values[i] = T.CreateChecked(constant.Floats[i]);
        return new Tensor<T>(constant.Shape, values);
    }

    public static Tensor<T> From(int[] shape, ReadOnlySpan<float> values)
    {
        var data = new T[values.Length];
        for (int i = 0; i < data.Length; i++) data[i] = T.CreateChecked(values[i]);
        return new Tensor<T>(shape, data);
    }

    public float[] ToFloats()
    {
        var values = new float[Data.Length];
        for (int i = 0; i < values.Length; i++) values[i] = float.CreateChecked(Data[i]);
        return values;
    }
}
