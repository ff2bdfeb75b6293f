using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Import;
using ModelGen.Compiler.Ir;
using ModelGen.Onnx;
using ModelGen.Onnx.Proto;
using ModelGen.Tests.Support;

// Usage: dotnet run --project tests/ModelGen.OnnxNodeTests -c Release -- <onnx checkout>/onnx/backend/test/data/node [--all-types]
// Each test whose operators are all in issue 3's list is compiled, evaluated by the reference evaluator,
// and its generated C# compiled (Roslyn) and run; both are compared with the test's expected outputs.
if (args.Length == 0 || !Directory.Exists(args[0]))
{
    Console.Error.WriteLine("usage: ModelGen.OnnxNodeTests <onnx>/onnx/backend/test/data/node [--all-types]");
    return 2;
}
bool allTypes = args.Contains("--all-types");
var covered = new HashSet<string>(StringComparer.Ordinal)
{
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Relu", "LeakyRelu",
    "PRelu", "Elu", "Selu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Erf", "Exp", "Log", "Sqrt",
    "Neg", "Abs", "Softmax", "LogSoftmax", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization",
    "InstanceNormalization", "LayerNormalization", "LRN", "Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze",
    "Unsqueeze", "Gather", "Pad", "Identity", "Dropout", "Constant", "Shape", "Cast", "ReduceMean", "ReduceSum", "ReduceMax", "Resize",
    "LSTM", "GRU",
};
var failures = new List<string>();
var compiled = new List<(string Name, ModelArtifact Artifact, TensorData[] Inputs, TensorData[] Expected)>();
int notOurs = 0;
foreach (var dir in Directory.GetDirectories(args[0]).Order(StringComparer.Ordinal))
{
    string name = Path.GetFileName(dir), model = Path.Combine(dir, "model.onnx");
    if (!File.Exists(model)) continue;
    var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
    var ops = proto.Graph.Node.Select(n => n.OpType).Distinct().ToList();
    bool float32OrInt64 = proto.Graph.Input.Concat(proto.Graph.Output).All(v => v.Type?.TensorType?.ElemType is 1 or 7);
    if (ops.Count == 0 || !ops.All(covered.Contains) || (!allTypes && !float32OrInt64)) { notOurs++; continue; }
    try
    {
        var graph = ModelCompiler.Import(model);
        var artifact = ArtifactText.Read(ArtifactText.Write(ModelCompiler.Compile(new CompileOptions { ModelPath = model, ClassName = "Test" + compiled.Count, Namespace = "NodeTests" })));
        foreach (var set in Directory.GetDirectories(dir, "test_data_set_*").Order(StringComparer.Ordinal))
        {
            TensorData Read(string file) => OnnxImporter.ReadTensor(TensorProto.Parser.ParseFrom(File.ReadAllBytes(file)), model);
            var inputFiles = Directory.GetFiles(set, "input_*.pb").Order(StringComparer.Ordinal).ToList();
            var inputs = graph.Inputs.Select((n, i) => Read(inputFiles[i])).ToArray();
            var expected = Directory.GetFiles(set, "output_*.pb").Order(StringComparer.Ordinal).Select(Read).ToArray();
            var evaluated = ReferenceEvaluator.Run(graph, graph.Inputs.Select((n, i) => (n, inputs[i])).ToDictionary(p => p.n, p => p.Item2));
            for (int o = 0; o < expected.Length; o++) Compare("evaluator", o, expected[o], evaluated[graph.Outputs[o]]);
            compiled.Add((name, artifact, inputs, expected));
        }
    }
    catch (Exception e)
    {
        failures.Add($"{name}: {(e is ModelGenException m ? m.Code + " " + m.Message : e.GetType().Name + " " + e.Message)}".Split('\n')[0]);
    }
}

// One compilation for every generated class, then each run on its test's inputs.
var generated = GeneratedModels.Build([.. compiled.Select(c => c.Artifact).DistinctBy(a => a.ClassName)]);
var failedNames = new HashSet<string>(failures.Select(f => f[..f.IndexOf(':')]));
foreach (var c in compiled)
{
    try
    {
        object[] inputs = [.. c.Inputs.Select(t => t.Type == ElementType.Float32 ? (object)t.Floats.ToArray() : t.Ints.ToArray())];
        object[] outputs = [.. c.Expected.Select(t => t.Type == ElementType.Float32 ? (object)new float[t.Count] : new long[t.Count])];
        generated.Run(c.Artifact, inputs, outputs);
        for (int o = 0; o < outputs.Length; o++)
            Compare("generated code", o, c.Expected[o], outputs[o] is float[] f ? new TensorData(c.Expected[o].Shape, f) : new TensorData(c.Expected[o].Shape, (long[])outputs[o]));
    }
    catch (Exception e)
    {
        var inner = e is System.Reflection.TargetInvocationException { InnerException: { } i } ? i : e;
        if (failedNames.Add(c.Name)) failures.Add($"{c.Name}: {inner.GetType().Name} {inner.Message}".Split('\n')[0]);
    }
}
foreach (var f in failures.Order(StringComparer.Ordinal)) Console.WriteLine(f.Length > 240 ? f[..240] : f);
int tried = compiled.Select(c => c.Name).Distinct().Count() + failures.Count(f => !compiled.Any(c => f.StartsWith(c.Name + ":", StringComparison.Ordinal)));
int passed = tried - failedNames.Count;
Console.WriteLine($"{passed} of {tried} node tests pass ({100.0 * passed / tried:F1}%){(allTypes ? "" : " (float32/int64 inputs and outputs)")}; {notOurs} use other operators or types");
return 0;

// Within 1e-4 absolute plus 1e-3 relative (ONNX's backend tests use rtol 1e-3, atol 1e-7 for most); NaN matches NaN.
static void Compare(string who, int output, TensorData expected, TensorData actual)
{
    if (expected.Type != actual.Type || expected.Count != actual.Count)
        throw new InvalidDataException($"{who}: output {output} is {actual.Type}[{actual.Count}], expected {expected.Type}[{expected.Count}]");
    for (int i = 0; i < expected.Count; i++)
    {
        double e = expected.Type == ElementType.Float32 ? expected.Floats[i] : expected.Ints[i];
        double a = actual.Type == ElementType.Float32 ? actual.Floats[i] : actual.Ints[i];
        if (e == a || (double.IsNaN(e) && double.IsNaN(a))) continue;
        if (!(Math.Abs(e - a) <= 1e-4 + 1e-3 * Math.Abs(e))) throw new InvalidDataException($"{who}: output {output}[{i}] is {a}, expected {e}");
    }
}
