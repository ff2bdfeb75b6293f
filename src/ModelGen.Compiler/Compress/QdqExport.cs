namespace ModelGen.Compiler.Compress;

/// <summary>
/// The compressed model as ONNX that ONNX Runtime runs, for these options: <see cref="OnnxExport"/> of the graph they
/// prepare (int8 and int4 weights through DequantizeLinear, int8 arithmetic as QDQ).
/// </summary>
public static class QdqExport
{
    public static IReadOnlyList<string> Write(CompileOptions options, string outputPath) => OnnxExport.Write(ModelCompiler.Prepare(options), outputPath);
}
