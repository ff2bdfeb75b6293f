namespace ModelGen.Onnx;

/// <summary>
/// A user-caused error or warning with its MGnnnn code. <see cref="ToString"/> gives the MSBuild canonical
/// form (<c>file: error MG0001: message</c>) so the task turns it into a build diagnostic.
/// </summary>
public sealed class ModelGenException(string code, string file, string message) : Exception(message)
{
    public string Code { get; } = code;
    public string File { get; } = file;

    public string Canonical => $"{File}: error {Code}: {Message}";

    public override string ToString() => Canonical;
}

/// <summary>Every code the compiler side can report; docs/diagnostics.md describes each one.</summary>
public static class ErrorCodes
{
    public const string FileNotFound = "MG0001";
    public const string FileTooLarge = "MG0002";
    public const string NotOnnx = "MG0003";
    public const string NoGraph = "MG0004";
    public const string ExternalDataOutsideFolder = "MG0005";
    public const string ExternalDataMissing = "MG0006";
    public const string BadOption = "MG0007";
    public const string NotRegularFile = "MG0008";
    public const string FileUnreadable = "MG0009";
    /// <summary>`modelgen bench` needs ONNX Runtime's native library, which this copy of modelgen lacks.</summary>
    public const string OnnxRuntimeMissing = "MG0010";
    public const string DataFileInvalid = "MG0201";
    public const string DataTypeUnsupported = "MG0202";
    /// <summary>A warning: calibration data whose range looks unlike what the model saw (uint8 taken as 0..255).</summary>
    public const string DataRangeSuspect = "MG0203";
    public const string UnsupportedOperator = "MG1001";
    public const string UnsupportedDataType = "MG1002";
    public const string UnsupportedAttribute = "MG1003";
    public const string DynamicShape = "MG1004";
    public const string InvalidGraph = "MG1005";
    public const string ShapeMismatch = "MG1006";
    public const string TooLarge = "MG1007";
    /// <summary>InputShape (--input-shape) does not fit the model: an input it lacks, another rank, a fixed size contradicted.</summary>
    public const string InputShapeMismatch = "MG1008";
    public const string WriteFailed = "MG1101";
    public const string AccuracyBudgetMissed = "MG3001";
    /// <summary>Training was asked for and a node's operator (or its fused activation) has no gradient yet.</summary>
    public const string NotTrainable = "MG4001";
    /// <summary>Training was asked for and a value computed at run time has no batch axis (its shape does not start with 1).</summary>
    public const string NoBatchAxis = "MG4002";
    /// <summary>A distillation student (Student, --student FILE) whose inputs or outputs differ from the teacher's: names, shapes, element types, or what the output is.</summary>
    public const string StudentContractMismatch = "MG4010";
    /// <summary>A warning: the distilled student agrees with the teacher on too few held-out samples (below 90%).</summary>
    public const string DistillationAgreementLow = "MG4011";
    public const string Internal = "MG9000";
}
