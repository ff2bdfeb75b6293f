using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using ModelGen.Artifact;
using ModelGen.Generator;

namespace ModelGen.Tests.Support;

/// <summary>
/// Runs the real source generator (CSharpGeneratorDriver) over artifacts, compiles what it emits with
/// a small harness per model, and loads the result: the same path a consumer's build takes, in memory.
/// </summary>
public sealed class GeneratedModels
{
    readonly Assembly _assembly;
    public ImmutableArray<Diagnostic> GeneratorDiagnostics { get; }
    public IReadOnlyDictionary<string, string> Sources { get; }
    /// <summary>Bytes of the compiled assembly (generated classes and harness).</summary>
    public long AssemblyBytes => Image.Length;

    /// <summary>The compiled assembly itself (IL: another runtime, as the ARM64 runner, can load it).</summary>
    public byte[] Image { get; private init; } = [];

    GeneratedModels(Assembly assembly, ImmutableArray<Diagnostic> diagnostics, IReadOnlyDictionary<string, string> sources)
    {
        _assembly = assembly;
        GeneratorDiagnostics = diagnostics;
        Sources = sources;
    }

    /// <summary>Generates and compiles the given artifacts; fails the test on any compiler warning or error.</summary>
    public static GeneratedModels Build(params ModelArtifact[] models) => BuildWith("", models);

    /// <summary>As <see cref="Build"/>, with more source compiled beside (say, a partial part of a model class that reaches its kernels).</summary>
    public static GeneratedModels BuildWith(string extraSource, params ModelArtifact[] models) => BuildWith(extraSource, false, models);

    /// <summary>With <paramref name="documentation"/>, as a consumer with GenerateDocumentationFile: doc comment warnings (CS0419, CS1574…) count too.</summary>
    public static GeneratedModels BuildWith(string extraSource, bool documentation, params ModelArtifact[] models)
    {
        var texts = models.Select((m, i) => (AdditionalText)new InMemoryAdditionalText($"/models/m{i}.mgen", ArtifactText.Write(m))).ToImmutableArray();
        // The harness is undocumented on purpose: CS1591 only for the generated code.
        var harness = "#pragma warning disable CS1591\n" + string.Join("\n", models.Select(Harness)) + "\n" + extraSource;
        var parse = new CSharpParseOptions(LanguageVersion.Latest, documentation ? DocumentationMode.Diagnose : DocumentationMode.Parse);
        var compilation = CSharpCompilation.Create(
            "GeneratedModels" + Guid.NewGuid().ToString("N"),
            [CSharpSyntaxTree.ParseText(harness, parse)],
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, optimizationLevel: OptimizationLevel.Release, nullableContextOptions: NullableContextOptions.Enable));
        GeneratorDriver driver = CSharpGeneratorDriver.Create([new ModelGenerator().AsSourceGenerator()], texts, parse);
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var genDiagnostics);
        var run = driver.GetRunResult();
        var sources = run.Results.SelectMany(r => r.GeneratedSources).ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        if (Environment.GetEnvironmentVariable("MODELGEN_DUMP_DIR") is { Length: > 0 } dumpDir)
        {
            Directory.CreateDirectory(dumpDir);
            string key = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", texts.Select(t => t.GetText()!.ToString())))))[..16];
            foreach (var (hint, source) in sources) File.WriteAllText(Path.Combine(dumpDir, key + "." + hint), source);
        }
        using var stream = new MemoryStream();
        var emit = output.Emit(stream, xmlDocumentationStream: documentation ? new MemoryStream() : null);
        var problems = emit.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(emit.Success && problems.Count == 0 && genDiagnostics.IsEmpty,
            "generated code must compile without warnings:\n" + string.Join("\n", genDiagnostics.Concat(problems).Take(20)));
        stream.Position = 0;
        // Not collectible: the generated classes keep a [ThreadStatic] scratch buffer, and the runtime can crash
        // (SIGSEGV in libcoreclr) cleaning up thread statics of an unloaded collectible assembly when a pool thread
        // exits (a race of the kind dotnet/runtime#110837 fixed; seen here twice in one CI run). A test process holds a few hundred small assemblies; they stay loaded.
        var context = new AssemblyLoadContext(null, isCollectible: false);
        return new GeneratedModels(context.LoadFromStream(stream), genDiagnostics, sources) { Image = stream.ToArray() };
    }

    /// <summary>Runs model <paramref name="className"/> once: inputs and outputs in ONNX order.</summary>
    public void Run(ModelArtifact model, object[] inputs, object[] outputs) =>
        Method(model, "Run").Invoke(null, [inputs, outputs]);

    /// <summary>Runs a single-input, single-output model on <paramref name="count"/> consecutive samples.</summary>
    public void RunMany(ModelArtifact model, float[] inputs, float[] outputs, int count) =>
        Method(model, "RunMany").Invoke(null, [inputs, outputs, count]);

    /// <summary>Bytes the thread allocated over <paramref name="count"/> calls of Run (after a first call).</summary>
    public long AllocatedBytes(ModelArtifact model, float[] input, float[] output, int count) =>
        (long)Method(model, "AllocatedBytesPerRuns").Invoke(null, [input, output, count])!;

    public int Predict(ModelArtifact model, float[] input) => (int)Method(model, "Predict").Invoke(null, [input])!;

    public object? Member(ModelArtifact model, string name)
    {
        var type = ModelType(model);
        var field = type.GetField(name, BindingFlags.Public | BindingFlags.Static);
        return field is not null ? field.GetValue(null) : Method(model, "Get" + name).Invoke(null, []);
    }

    public Type ModelType(ModelArtifact model) => _assembly.GetType(model.Namespace.Replace("@", "") + "." + model.ClassName)!;

    MethodInfo Method(ModelArtifact model, string name) => _assembly.GetType(HarnessType(model))!.GetMethod(name)!;

    /// <summary>The harness class of a model: Run, and for one float32 input and output RunMany.</summary>
    public static string HarnessType(ModelArtifact model) => $"TestHarness.{HarnessName(model)}";

    /// <summary>The harness class's name: the namespace's parts (without '@') and the class joined by '_'.</summary>
    static string HarnessName(ModelArtifact model) => $"{model.Namespace.Replace("@", "").Replace('.', '_')}_{model.ClassName}";

    static string Harness(ModelArtifact m)
    {
        string cls = $"global::{m.Namespace}.{m.ClassName}";
        var ins = m.Inputs.Select((b, i) => $"({(m.Tensors[b.Tensor].Element == TensorElement.Int64 ? "long" : "float")}[])inputs[{i}]");
        var outs = m.Outputs.Select((b, i) => $"({(m.Tensors[b.Tensor].Element == TensorElement.Int64 ? "long" : "float")}[])outputs[{i}]");
        string single = m.Inputs.Count == 1 && m.Outputs.Count == 1 && m.Tensors[m.Inputs[0].Tensor].Element != TensorElement.Int64 && m.Tensors[m.Outputs[0].Tensor].Element != TensorElement.Int64
            ? $$"""
                public static long AllocatedBytesPerRuns(float[] input, float[] output, int count)
                {
                    // The thread's scratch buffer is made on the first call; the rest of the warm-up lets tiered
                    // compilation settle (a method promoted mid-measurement can allocate on this thread).
                    // The least of five rounds: the runtime may allocate once on this thread (a method promoted
                    // during a round, seen on a loaded machine: 3,560 bytes once), while an allocation by Run
                    // shows in every round.
                    for (int i = 0; i < 200; i++) {{cls}}.Run(input, output);
                    long least = long.MaxValue;
                    for (int round = 0; round < 5 && least != 0; round++)
                    {
                        long before = global::System.GC.GetAllocatedBytesForCurrentThread();
                        for (int i = 0; i < count; i++) {{cls}}.Run(input, output);
                        least = global::System.Math.Min(least, global::System.GC.GetAllocatedBytesForCurrentThread() - before);
                    }
                    return least;
                }

                public static void RunMany(float[] inputs, float[] outputs, int count)
                {
                    for (int i = 0; i < count; i++)
                        {{cls}}.Run(global::System.MemoryExtensions.AsSpan(inputs, i * {{cls}}.InputLength, {{cls}}.InputLength), global::System.MemoryExtensions.AsSpan(outputs, i * {{cls}}.OutputLength, {{cls}}.OutputLength));
                }
              """
            : "";
        string predict = Generator.Emit.ModelEmitter.HasPredict(m) && m.Inputs.Count == 1 && m.Tensors[m.Inputs[0].Tensor].Element != TensorElement.Int64 ? $"public static int Predict(float[] input) => {cls}.Predict(input);" : "";
        return $$"""
            namespace TestHarness
            {
                public static class {{HarnessName(m)}}
                {
                    public static void Run(object[] inputs, object[] outputs) => {{cls}}.Run({{string.Join(", ", ins.Concat(outs))}});
                    {{single}}
                    {{predict}}
                }
            }
            """;
    }

    static readonly Lazy<MetadataReference[]> References = new(() =>
        [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Select(p => MetadataReference.CreateFromFile(p))]);

    sealed class InMemoryAdditionalText(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }
}
