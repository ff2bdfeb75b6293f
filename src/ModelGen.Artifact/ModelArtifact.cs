using System;
using System.Collections.Generic;

namespace ModelGen.Artifact;

/// <summary>
/// A compiled model as the source generator sees it: tensors with their storage, and kernels in
/// schedule order. Written by the compiler, read by the generator; the text form is documented in
/// docs/artifact-format.md and versioned by <see cref="FormatVersion"/>.
/// </summary>
public sealed class ModelArtifact
{
    /// <summary>Bumped whenever the text form changes meaning; readers refuse other versions.</summary>
    public const int FormatVersion = 1;

    public string ClassName { get; set; } = "Model";
    public string Namespace { get; set; } = "ModelGen.Models";
    /// <summary>The model's file name (no folder: builds must not depend on where a clone lives).</summary>
    public string SourceFile { get; set; } = "";
    public string SourceSha256 { get; set; } = "";
    public string Producer { get; set; } = "";
    public long Opset { get; set; }
    /// <summary>The widest SIMD the emitted kernels may use.</summary>
    public SimdLevel Simd { get; set; } = SimdLevel.Auto;
    /// <summary>The compression the model was compiled with (none, int8, int8-weights…).</summary>
    public string Compression { get; set; } = "none";
    /// <summary>The compression report's summary, when calibration data measured it; empty otherwise.</summary>
    public string Measured { get; set; } = "";
    /// <summary>Bytes of the scratch arena that holds every intermediate tensor.</summary>
    public long ScratchBytes { get; set; }
    /// <summary>How the compiler's memory plan compares with its bounds; null for an artifact read from text (not in the text form).</summary>
    public MemoryPlanReport? MemoryPlan { get; set; }

    public List<ArtifactTensor> Tensors { get; } = new List<ArtifactTensor>();
    public List<ArtifactBinding> Inputs { get; } = new List<ArtifactBinding>();
    public List<ArtifactBinding> Outputs { get; } = new List<ArtifactBinding>();
    public List<ArtifactNode> Nodes { get; } = new List<ArtifactNode>();
}

/// <summary>
/// The arena a memory plan needs, against the sum of every arena tensor (no reuse at all) and the liveness
/// lower bound (the most bytes live at one step, buffers 64-byte aligned, which no plan can beat).
/// </summary>
public sealed class MemoryPlanReport
{
    public MemoryPlanReport(long arenaBytes, long tensorBytes, long lowerBound)
    {
        ArenaBytes = arenaBytes;
        TensorBytes = tensorBytes;
        LowerBound = lowerBound;
    }

    public long ArenaBytes { get; }
    public long TensorBytes { get; }
    public long LowerBound { get; }
}

/// <summary>
/// The widest SIMD the emitted kernels may use. The text form (the Simd option's values, the artifact) is
/// lower case: <c>auto</c>, <c>vector128</c>, <c>none</c> (<see cref="SimdLevelText"/>).
/// </summary>
public enum SimdLevel
{
    /// <summary>Vector512, Vector256 and Vector128 paths, each taken where the processor accelerates it.</summary>
    Auto,
    /// <summary>Vector128 paths only (smaller code: one path per kernel).</summary>
    Vector128,
    /// <summary>Scalar code only.</summary>
    None,
}

/// <summary>The text form of <see cref="SimdLevel"/>: what users write and the artifact stores.</summary>
public static class SimdLevelText
{
    /// <summary>The values in <see cref="SimdLevel"/> order.</summary>
    public static readonly string[] Names = { "auto", "vector128", "none" };

    public static string ToText(this SimdLevel level) => Names[(int)level];

    /// <summary>Parses a value in any case; false when it names no level.</summary>
    public static bool TryParse(string? text, out SimdLevel level)
    {
        int i = text is null ? -1 : System.Array.IndexOf(Names, text.ToLowerInvariant());
        level = i < 0 ? SimdLevel.Auto : (SimdLevel)i;
        return i >= 0;
    }
}

/// <summary>Where a tensor's elements live when the emitted code runs.</summary>
public enum TensorStorage
{
    /// <summary>The caller's input span (<see cref="ArtifactTensor.Index"/> = input ordinal).</summary>
    Input,
    /// <summary>The caller's output span (<see cref="ArtifactTensor.Index"/> = output ordinal).</summary>
    Output,
    /// <summary>A slice of the scratch arena at <see cref="ArtifactTensor.Offset"/> bytes.</summary>
    Arena,
    /// <summary>Embedded in the assembly (<see cref="ArtifactTensor.Data"/>).</summary>
    Weight,
}

/// <summary>
/// The element type of a tensor. Everything computed is float32; int64 is for indices in and constant shapes out;
/// the others hold compressed weights or, for uint8, the activations one int8 layer writes for the next.
/// </summary>
public enum TensorElement
{
    Float32,
    /// <summary>Indices in, a constant shape out: inputs, outputs and weights, never the arena.</summary>
    Int64,
    /// <summary>Int8 weights (quantized, with their scales in another tensor).</summary>
    Int8,
    /// <summary>
    /// Raw bytes: packed weights (two int4 per byte), laid out as the kernel reading them says, or in the arena
    /// the uint8 activations one int8 layer writes for the next (their quantization in the nodes).
    /// </summary>
    UInt8,
    /// <summary>Int32 weights: the biases of int8 layers, in accumulator units.</summary>
    Int32,
    /// <summary>Int16 weights: the biases of int8 layers when every one fits in 16 bits.</summary>
    Int16,
    /// <summary>
    /// Float16 weights: an int8 layer's per-channel multipliers over its layer-wide one, positive normal numbers
    /// in (0, 1] read as their bits (ushort) and widened with two integer operations.
    /// </summary>
    Float16,
}

public static class TensorElements
{
    /// <summary>Bytes per element.</summary>
    public static int Bytes(this TensorElement e) => e switch
    {
        TensorElement.Int64 => 8,
        TensorElement.Int8 or TensorElement.UInt8 => 1,
        TensorElement.Int16 or TensorElement.Float16 => 2,
        _ => 4,
    };

    /// <summary>The C# type of the element (float16 is read as its bits).</summary>
    public static string CSharpType(this TensorElement e) => e switch
    {
        TensorElement.Int64 => "long",
        TensorElement.Int8 => "sbyte",
        TensorElement.UInt8 => "byte",
        TensorElement.Int32 => "int",
        TensorElement.Int16 => "short",
        TensorElement.Float16 => "ushort",
        _ => "float",
    };

    /// <summary>The artifact's <c>type=</c> value; float32 is written as no type at all.</summary>
    public static string Text(this TensorElement e) => e.ToString().ToLowerInvariant();

    /// <summary>The element type a <c>type=</c> value names, or null for an unknown name.</summary>
    public static TensorElement? Parse(string text)
    {
        foreach (TensorElement e in Enum.GetValues(typeof(TensorElement)))
            if (e != TensorElement.Float32 && e.Text() == text) return e;
        return null;
    }

    /// <summary>Whether the type holds something other than float32 or int64 (the compressed weights' types).</summary>
    public static bool IsCompressed(this TensorElement e) => e != TensorElement.Float32 && e != TensorElement.Int64;
}

public sealed class ArtifactTensor
{
    public int Id { get; set; }
    /// <summary>The ONNX value name (untrusted text: escape before emitting).</summary>
    public string Name { get; set; } = "";
    public TensorStorage Storage { get; set; }
    public int Index { get; set; }
    public long Offset { get; set; }
    public int[] Shape { get; set; } = new int[0];
    /// <summary>The element type; <see cref="TensorElement.Float32"/> unless the tensor is one of the few that are not.</summary>
    public TensorElement Element { get; set; }
    /// <summary>Bytes per element: 8 (int64), 1 (int8, uint8), 2 (int16, float16) or 4 (float32, int32).</summary>
    public int ElementBytes => Element.Bytes();
    /// <summary>The C# element type of the tensor's spans.</summary>
    public string CSharpType => Element.CSharpType();
    /// <summary>Bytes the tensor takes in the arena: its elements, rounded up to whole floats (the arena is a float span).</summary>
    public long ArenaBytes => (ElementCount * ElementBytes + 3) / 4 * 4;
    /// <summary>Little-endian elements (float32, int64 or int8), weights only.</summary>
    public byte[]? Data { get; set; }

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (int d in Shape) n *= d;
            return n;
        }
    }
}

/// <summary>A graph input or output: the tensor and the C# parameter that carries it.</summary>
public sealed class ArtifactBinding
{
    public int Tensor { get; set; }
    /// <summary>The ONNX name, for documentation only.</summary>
    public string Name { get; set; } = "";
    /// <summary>A valid, unique C# parameter name (the compiler sanitizes it).</summary>
    public string Parameter { get; set; } = "";
}

/// <summary>One kernel of the schedule.</summary>
public sealed class ArtifactNode
{
    /// <summary>Kernel kind (docs/artifact-format.md lists them).</summary>
    public KernelKind Kernel { get; set; }
    /// <summary>The ONNX node name (untrusted text) and operator this kernel computes.</summary>
    public string Name { get; set; } = "";
    public string OnnxOp { get; set; } = "";
    public int[] Inputs { get; set; } = new int[0];
    public int[] Outputs { get; set; } = new int[0];
    /// <summary>Kernel attributes in their text form, ordinal order (see docs/artifact-format.md).</summary>
    public SortedDictionary<string, string> Attributes { get; } = new SortedDictionary<string, string>(System.StringComparer.Ordinal);

    /// <summary>The window of a windowed kernel (<see cref="KernelWindow.Has"/>), parsed once; null for the others.</summary>
    public KernelWindow? Window { get; private set; }

    /// <summary>Sets the window and its text form in <see cref="Attributes"/>.</summary>
    public void SetWindow(KernelWindow window)
    {
        Window = window;
        window.WriteTo(Attributes);
    }

    /// <summary>The attributes of a <see cref="KernelKind.Dense"/> kernel, parsed once; null for the others.</summary>
    public DenseAttributes? Dense { get; private set; }

    /// <summary>Sets a Dense kernel's attributes and their text form in <see cref="Attributes"/>.</summary>
    public void SetDense(DenseAttributes dense)
    {
        Dense = dense;
        dense.WriteTo(Attributes);
    }

    /// <summary>The quantization of an int8-arithmetic kernel (<see cref="Int8LayerAttributes.Has"/>), parsed once; null for the others.</summary>
    public Int8LayerAttributes? Int8Layer { get; private set; }

    /// <summary>Sets an int8 layer's quantization and its text form in <see cref="Attributes"/>.</summary>
    public void SetInt8Layer(Int8LayerAttributes layer)
    {
        Int8Layer = layer;
        layer.WriteTo(Attributes);
    }

    /// <summary>The group, method and weight form of a convolution (<see cref="ConvAttributes.Has"/>), parsed once; null for the others.</summary>
    public ConvAttributes? Conv { get; private set; }

    /// <summary>Sets a convolution's attributes and their text form in <see cref="Attributes"/>.</summary>
    public void SetConv(ConvAttributes conv)
    {
        Conv = conv;
        conv.WriteTo(Attributes);
    }

    /// <summary>The function of a <see cref="KernelKind.Unary"/> kernel, parsed once; null for the others.</summary>
    public UnaryAttributes? Unary { get; private set; }

    /// <summary>Sets a Unary kernel's function and its text form in <see cref="Attributes"/>.</summary>
    public void SetUnary(UnaryAttributes unary)
    {
        Unary = unary;
        unary.WriteTo(Attributes);
    }

    /// <summary>The functions fused into the kernel's output, on any kind that carries them, parsed once; null when none.</summary>
    public ActivationChain? Activation { get; private set; }

    /// <summary>Sets <see cref="Activation"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetActivation(ActivationChain fusedActivation)
    {
        Activation = fusedActivation;
        fusedActivation.WriteTo(Attributes);
    }

    /// <summary>The operator of a <see cref="KernelKind.Binary"/> kernel, parsed once; null for the others.</summary>
    public BinaryAttributes? Binary { get; private set; }

    /// <summary>Sets <see cref="Binary"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetBinary(BinaryAttributes binaryAttributes)
    {
        Binary = binaryAttributes;
        binaryAttributes.WriteTo(Attributes);
    }

    /// <summary>The integer arithmetic of an <see cref="KernelKind.AddU8"/> kernel, parsed once; null for the others.</summary>
    public AddU8Attributes? AddU8 { get; private set; }

    /// <summary>Sets <see cref="AddU8"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetAddU8(AddU8Attributes addU8Attributes)
    {
        AddU8 = addU8Attributes;
        addU8Attributes.WriteTo(Attributes);
    }

    /// <summary>Which bounds a <see cref="KernelKind.ClipRuntime"/> kernel takes as inputs, parsed once; null for the others.</summary>
    public ClipRuntimeAttributes? ClipRuntime { get; private set; }

    /// <summary>Sets <see cref="ClipRuntime"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetClipRuntime(ClipRuntimeAttributes clipRuntimeAttributes)
    {
        ClipRuntime = clipRuntimeAttributes;
        clipRuntimeAttributes.WriteTo(Attributes);
    }

    /// <summary>An <see cref="KernelKind.AveragePool"/> kernel's countpad and zero point, parsed once; null for the others.</summary>
    public AveragePoolAttributes? AveragePool { get; private set; }

    /// <summary>Sets <see cref="AveragePool"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetAveragePool(AveragePoolAttributes averagePoolAttributes)
    {
        AveragePool = averagePoolAttributes;
        averagePoolAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.Pool3D"/> kernel's window and op, parsed once; null for the others.</summary>
    public Pool3DAttributes? Pool3D { get; private set; }

    /// <summary>Sets <see cref="Pool3D"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetPool3D(Pool3DAttributes pool3DAttributes)
    {
        Pool3D = pool3DAttributes;
        pool3DAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.Gemm"/> kernel's transposes, alpha and beta, parsed once; null for the others.</summary>
    public GemmAttributes? Gemm { get; private set; }

    /// <summary>Sets <see cref="Gemm"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetGemm(GemmAttributes gemmAttributes)
    {
        Gemm = gemmAttributes;
        gemmAttributes.WriteTo(Attributes);
    }

    /// <summary>The attributes of a normalization kernel (<see cref="NormalizationAttributes.Has"/>), parsed once; null for the others.</summary>
    public NormalizationAttributes? Normalization { get; private set; }

    /// <summary>Sets <see cref="Normalization"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetNormalization(NormalizationAttributes normalizationAttributes)
    {
        Normalization = normalizationAttributes;
        normalizationAttributes.WriteTo(Kernel, Attributes);
    }

    /// <summary>A <see cref="KernelKind.Remap"/> kernel's plan, parsed once; null for the others.</summary>
    public RemapAttributes? Remap { get; private set; }

    /// <summary>Sets <see cref="Remap"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetRemap(RemapAttributes remapAttributes)
    {
        Remap = remapAttributes;
        remapAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.GatherRows"/> kernel's sizes, parsed once; null for the others.</summary>
    public GatherRowsAttributes? GatherRows { get; private set; }

    /// <summary>Sets <see cref="GatherRows"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetGatherRows(GatherRowsAttributes gatherRowsAttributes)
    {
        GatherRows = gatherRowsAttributes;
        gatherRowsAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.ConvTranspose"/> kernel's geometry, parsed once; null for the others.</summary>
    public ConvTransposeAttributes? ConvTranspose { get; private set; }

    /// <summary>Sets <see cref="ConvTranspose"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetConvTranspose(ConvTransposeAttributes convTransposeAttributes)
    {
        ConvTranspose = convTransposeAttributes;
        convTransposeAttributes.WriteTo(Attributes);
    }

    /// <summary>The plane of a dilated <see cref="KernelKind.DepthwiseInt8"/> kernel, parsed once; null for the others.</summary>
    public DepthwisePlane? Plane { get; private set; }

    /// <summary>Sets <see cref="Plane"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetPlane(DepthwisePlane depthwisePlane)
    {
        Plane = depthwisePlane;
        depthwisePlane.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.Reduce"/> kernel's op and sizes, parsed once; null for the others.</summary>
    public ReduceAttributes? Reduce { get; private set; }

    /// <summary>Sets <see cref="Reduce"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetReduce(ReduceAttributes reduceAttributes)
    {
        Reduce = reduceAttributes;
        reduceAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.ReduceRuntime"/> kernel's op and input shape, parsed once; null for the others.</summary>
    public ReduceRuntimeAttributes? ReduceRuntime { get; private set; }

    /// <summary>Sets <see cref="ReduceRuntime"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetReduceRuntime(ReduceRuntimeAttributes reduceRuntimeAttributes)
    {
        ReduceRuntime = reduceRuntimeAttributes;
        reduceRuntimeAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.Softmax"/> kernel's layout, parsed once; null for the others.</summary>
    public SoftmaxAttributes? Softmax { get; private set; }

    /// <summary>Sets <see cref="Softmax"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetSoftmax(SoftmaxAttributes softmaxAttributes)
    {
        Softmax = softmaxAttributes;
        softmaxAttributes.WriteTo(Attributes);
    }

    /// <summary>An LSTM or GRU kernel's attributes, parsed once; null for the others.</summary>
    public RecurrentAttributes? Recurrent { get; private set; }

    /// <summary>Sets <see cref="Recurrent"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetRecurrent(RecurrentAttributes recurrentAttributes)
    {
        Recurrent = recurrentAttributes;
        recurrentAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.CheckShape"/> kernel's rule and shapes, parsed once; null for the others.</summary>
    public CheckShapeAttributes? CheckShape { get; private set; }

    /// <summary>Sets <see cref="CheckShape"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetCheckShape(CheckShapeAttributes checkShapeAttributes)
    {
        CheckShape = checkShapeAttributes;
        checkShapeAttributes.WriteTo(Attributes);
    }

    /// <summary>A SliceRuntime or PadRuntime kernel's input shape and parameters, parsed once; null for the others.</summary>
    public RuntimeShapeAttributes? RuntimeShape { get; private set; }

    /// <summary>Sets <see cref="RuntimeShape"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetRuntimeShape(RuntimeShapeAttributes runtimeShapeAttributes)
    {
        RuntimeShape = runtimeShapeAttributes;
        runtimeShapeAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.ResizeRuntime"/> kernel's shape, modes and parameters, parsed once; null for the others.</summary>
    public ResizeRuntimeAttributes? ResizeRuntime { get; private set; }

    /// <summary>Sets <see cref="ResizeRuntime"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetResizeRuntime(ResizeRuntimeAttributes resizeRuntimeAttributes)
    {
        ResizeRuntime = resizeRuntimeAttributes;
        resizeRuntimeAttributes.WriteTo(Attributes);
    }

    /// <summary>A <see cref="KernelKind.ResizeLinear"/> kernel's tables, parsed once; null for the others.</summary>
    public ResizeLinearAttributes? ResizeLinear { get; private set; }

    /// <summary>Sets <see cref="ResizeLinear"/> and its text form in <see cref="Attributes"/>.</summary>
    public void SetResizeLinear(ResizeLinearAttributes resizeLinearAttributes)
    {
        ResizeLinear = resizeLinearAttributes;
        resizeLinearAttributes.WriteTo(Attributes);
    }

    /// <summary>Parses the typed attributes from their text form (the reader calls it once per node).</summary>
    internal void ParseAttributes()
    {
        if (KernelWindow.Has(Kernel)) Window = KernelWindow.Read(Attributes);
        if (Kernel == KernelKind.Dense) Dense = DenseAttributes.Read(Attributes);
        if (ConvAttributes.Has(Kernel)) Conv = ConvAttributes.Read(Attributes);
        if (Kernel == KernelKind.Unary) Unary = UnaryAttributes.Read(Attributes);
        if (Int8LayerAttributes.Has(Kernel)) Int8Layer = Int8LayerAttributes.Read(Attributes);
        if (ActivationChain.Has(Attributes)) Activation = ActivationChain.Read(Attributes);
        if (NormalizationAttributes.Has(Kernel)) Normalization = NormalizationAttributes.Read(Kernel, Attributes);
        if (RecurrentAttributes.Has(Kernel)) Recurrent = RecurrentAttributes.Read(Kernel, Attributes);
        if (RuntimeShapeAttributes.Has(Kernel)) RuntimeShape = RuntimeShapeAttributes.Read(Kernel, Attributes);
        switch (Kernel)
        {
            case KernelKind.Binary: Binary = BinaryAttributes.Read(Attributes); break;
            case KernelKind.AddU8: AddU8 = AddU8Attributes.Read(Attributes); break;
            case KernelKind.ClipRuntime: ClipRuntime = ClipRuntimeAttributes.Read(Attributes); break;
            case KernelKind.AveragePool: AveragePool = AveragePoolAttributes.Read(Attributes); break;
            case KernelKind.Pool3D: Pool3D = Pool3DAttributes.Read(Attributes); break;
            case KernelKind.Gemm: Gemm = GemmAttributes.Read(Attributes); break;
            case KernelKind.Remap: Remap = RemapAttributes.Read(Attributes); break;
            case KernelKind.GatherRows: GatherRows = GatherRowsAttributes.Read(Attributes); break;
            case KernelKind.ConvTranspose: ConvTranspose = ConvTransposeAttributes.Read(Attributes); break;
            case KernelKind.DepthwiseInt8: Plane = DepthwisePlane.Read(Attributes); break;
            case KernelKind.Reduce: Reduce = ReduceAttributes.Read(Attributes); break;
            case KernelKind.ReduceRuntime: ReduceRuntime = ReduceRuntimeAttributes.Read(Attributes); break;
            case KernelKind.Softmax: Softmax = SoftmaxAttributes.Read(Attributes); break;
            case KernelKind.CheckShape: CheckShape = CheckShapeAttributes.Read(Attributes); break;
            case KernelKind.ResizeRuntime: ResizeRuntime = ResizeRuntimeAttributes.Read(Attributes); break;
            case KernelKind.ResizeLinear: ResizeLinear = ResizeLinearAttributes.Read(Attributes); break;
        }
    }
}
