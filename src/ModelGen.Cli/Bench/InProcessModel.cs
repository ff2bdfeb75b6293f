using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using ModelGen.Artifact;
using ModelGen.Generator.Emit;

namespace ModelGen.Cli.Bench;

/// <summary>
/// The C# ModelGen emits for an artifact, compiled with Roslyn (Release) and loaded into this process,
/// with a small harness whose timing loop calls the generated Run directly (no reflection per call).
/// </summary>
public sealed class InProcessModel
{
    readonly Func<object[], object[], int, long> _ticks;
    readonly Func<object[], object[], int, long> _allocated;
    readonly Action<object[], object[]> _run;
    readonly Action<object[], object[], int, long[]> _profile;

    InProcessModel(Assembly assembly)
    {
        var harness = assembly.GetType("ModelGenBench.Harness")!;
        _run = harness.GetMethod("Run")!.CreateDelegate<Action<object[], object[]>>();
        _ticks = harness.GetMethod("Ticks")!.CreateDelegate<Func<object[], object[], int, long>>();
        _allocated = harness.GetMethod("Allocated")!.CreateDelegate<Func<object[], object[], int, long>>();
        _profile = harness.GetMethod("Profile")!.CreateDelegate<Action<object[], object[], int, long[]>>();
    }

    /// <summary>Emits, compiles and loads <paramref name="artifact"/>; compile errors are a defect of ModelGen.</summary>
    public static InProcessModel Load(ModelArtifact artifact)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var compilation = CSharpCompilation.Create(
            "ModelGenBench" + Guid.NewGuid().ToString("N"),
            [CSharpSyntaxTree.ParseText(ModelEmitter.Emit(artifact, profile: true), parse), CSharpSyntaxTree.ParseText(Harness(artifact), parse)],
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, optimizationLevel: OptimizationLevel.Release, nullableContextOptions: NullableContextOptions.Enable));
        using var stream = new MemoryStream();
        var emit = compilation.Emit(stream);
        if (!emit.Success)
            throw new InvalidOperationException("the generated code did not compile: " + string.Join("; ", emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(5)));
        stream.Position = 0;
        // Not collectible: unloading an assembly with [ThreadStatic] fields can crash the runtime (dotnet/runtime#110837).
        return new InProcessModel(new AssemblyLoadContext(null, isCollectible: false).LoadFromStream(stream));
    }

    /// <summary>One inference: inputs and outputs (float[] or long[]) in ONNX order.</summary>
    public void Run(object[] inputs, object[] outputs) => _run(inputs, outputs);

    /// <summary>Stopwatch ticks for <paramref name="count"/> inferences in a row.</summary>
    public long Ticks(object[] inputs, object[] outputs, int count) => _ticks(inputs, outputs, count);

    /// <summary>Adds each kernel's Stopwatch ticks over <paramref name="count"/> inferences to <paramref name="ticks"/>.</summary>
    public void Profile(object[] inputs, object[] outputs, int count, long[] ticks) => _profile(inputs, outputs, count, ticks);

    /// <summary>Bytes this thread allocates over <paramref name="count"/> inferences (after a first one).</summary>
    public long Allocated(object[] inputs, object[] outputs, int count) => _allocated(inputs, outputs, count);

    static string Harness(ModelArtifact m)
    {
        string cls = $"global::{m.Namespace}.{m.ClassName}";
        string Type(ArtifactBinding b) => m.Tensors[b.Tensor].Element == TensorElement.Int64 ? "long" : "float";
        var locals = m.Inputs.Select((b, i) => $"var i{i} = ({Type(b)}[])inputs[{i}];")
            .Concat(m.Outputs.Select((b, i) => $"var o{i} = ({Type(b)}[])outputs[{i}];"));
        string call = $"{cls}.Run({string.Join(", ", m.Inputs.Select((_, i) => $"i{i}").Concat(m.Outputs.Select((_, i) => $"o{i}")))});";
        string body = string.Join(" ", locals);
        string profiled = $"{cls}.RunProfiled({string.Join(", ", m.Inputs.Select((_, i) => $"i{i}").Concat(m.Outputs.Select((_, i) => $"o{i}")))}, ticks);";
        return $$"""
            namespace ModelGenBench
            {
                public static class Harness
                {
                    public static void Run(object[] inputs, object[] outputs) { {{body}} {{call}} }

                    public static long Ticks(object[] inputs, object[] outputs, int count)
                    {
                        {{body}}
                        long start = global::System.Diagnostics.Stopwatch.GetTimestamp();
                        for (int n = 0; n < count; n++) {{call}}
                        return global::System.Diagnostics.Stopwatch.GetTimestamp() - start;
                    }

                    public static void Profile(object[] inputs, object[] outputs, int count, long[] ticks)
                    {
                        {{body}}
                        for (int n = 0; n < count; n++) {{profiled}}
                    }

                    public static long Allocated(object[] inputs, object[] outputs, int count)
                    {
                        {{body}}
                        {{call}}
                        long before = global::System.GC.GetAllocatedBytesForCurrentThread();
                        for (int n = 0; n < count; n++) {{call}}
                        return global::System.GC.GetAllocatedBytesForCurrentThread() - before;
                    }
                }
            }
            """;
    }

    static readonly Lazy<MetadataReference[]> References = new(() =>
        [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Select(p => MetadataReference.CreateFromFile(p))]);
}
