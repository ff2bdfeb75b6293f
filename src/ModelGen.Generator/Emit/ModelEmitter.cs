using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Artifact → C# source of the model's class. The one place that writes C#: the source generator
/// and <c>modelgen compile</c> both call <see cref="Emit"/>, so their outputs are byte-identical.
/// The user's partial class holds the public API, each method one call into the implementation, which lives in
/// a namespace of ModelGen's own per model (<see cref="ImplementationNamespace"/>), so any number of models
/// compile together and the implementation can use short type names.
/// </summary>
public static class ModelEmitter
{
    public const string Version = "0.1.0";

    /// <summary>"1 element", "784 elements".</summary>
    static string Elements(long count) => CodeWriter.N(count) + (count == 1 ? " element" : " elements");

    /// <summary>The file name the CLI writes and the hint name the generator uses.</summary>
    public static string FileName(ModelArtifact model) => model.ClassName + ".g.cs";

    /// <summary>Whether the class gets a Predict method: one output holding one sample's class scores.</summary>
    public static bool HasPredict(ModelArtifact model) =>
        model.Outputs.Count == 1 && model.Tensors[model.Outputs[0].Tensor].Element != TensorElement.Int64 && Emitter.IsClassifierOutput(model.Tensors[model.Outputs[0].Tensor].Shape);

    public static string Emit(ModelArtifact model) => Emit(model, profile: false);

    /// <summary>The namespace below the model's own that a model's generated implementation is in.</summary>
    public const string ImplementationScope = "ModelGenKernels";

    /// <summary>
    /// Where the implementation of a model lives: <c>{Namespace}.ModelGenKernels.{ClassName}</c>. Inside it the using
    /// directives (written with global::, so a user namespace named System cannot capture them) come before any
    /// user type in name lookup: C# looks in the namespace itself (ModelGen's types only), then at its usings,
    /// and only then at the enclosing namespaces, where the user's types are. So the kernels say <c>Vector256</c>,
    /// <c>Unsafe.Add</c> and <c>Span&lt;float&gt;</c> (as the .NET Regex generator does in its own namespace),
    /// and a user type of the same name in the model's namespace changes nothing. A namespace rather than a class
    /// named after the model: a model class named, say, Math would otherwise hide System.Math from its own kernels.
    /// Below the model's namespace rather than beside it: the user's class reaches it by a short name. No user
    /// type is named ModelGenKernels (the compiler refuses it as a class name: it would collide with the namespace).
    /// </summary>
    public static string ImplementationNamespace(ModelArtifact model) => model.Namespace + "." + ImplementationScope + "." + model.ClassName;

    /// <summary>Weight bytes as the C# string literal the class embeds (for tests).</summary>
    internal static string WeightLiteral(byte[] data) => Emitter.StringLiteral(data);

    /// <summary>Whether a weight literal carries this UTF-16 unit as itself rather than as a \uXXXX escape.</summary>
    internal static bool IsPlainInWeightLiteral(int c) => Emitter.IsPlainInLiteral(c);

    /// <summary>
    /// With <paramref name="profile"/>, the class also gets <c>RunProfiled</c>, which adds each kernel's
    /// Stopwatch ticks to a span: for <c>modelgen bench</c>, never in a user's build.
    /// </summary>
    public static string Emit(ModelArtifact model, bool profile)
    {
        if (!Identifiers.IsValid(model.ClassName)) throw new FormatException($"class name '{model.ClassName}' is not an identifier");
        if (!Identifiers.IsNamespace(model.Namespace)) throw new FormatException($"namespace '{model.Namespace}' is not a dotted identifier");
        foreach (var b in model.Inputs.Concat(model.Outputs))
            if (!Identifiers.IsValid(b.Parameter)) throw new FormatException($"parameter '{b.Parameter}' is not an identifier");
        return new Emitter(model, profile).Run();
    }

    sealed class Emitter
    {
        readonly ModelArtifact _m;
        readonly CodeWriter _w = new CodeWriter();
        readonly Dictionary<int, string> _weightNames = new Dictionary<int, string>();
        readonly HashSet<string> _members = new HashSet<string>(StringComparer.Ordinal)
        {
            "Run", "RunProfiled", "Predict", "InputLength", "OutputLength", "WeightBytes", "ScratchBytes", "SimdLevel", "Weights", "Kernels", "ThreadScratch", "t_scratch", "ThrowLength",
            ImplementationScope,
        };
        readonly HashSet<string> _helpers = new HashSet<string>(StringComparer.Ordinal);
        /// <summary>float32 weights some kernel reads in 64-byte-aligned loads: emitted padded, with their phase.</summary>
        readonly HashSet<int> _aligned = new HashSet<int>();

        readonly bool _profile;
        readonly IReadOnlyList<string> _kernelNames;

        public Emitter(ModelArtifact model, bool profile)
        {
            _m = model;
            _profile = profile;
            _kernelNames = KernelNames.Of(model);
        }

        ArtifactTensor T(int id) => _m.Tensors[id];

        bool Single => _m.Inputs.Count == 1 && _m.Outputs.Count == 1;

        long WeightBytes => _m.Tensors.Where(t => t.Storage == TensorStorage.Weight && _weightNames.ContainsKey(t.Id)).Sum(t => (long)(t.Data?.Length ?? 0));

        public string Run()
        {
            int k = 0;
            foreach (var t in _m.Tensors.Where(t => t.Storage == TensorStorage.Weight && t.Data != null))
                if (!_weightNames.ContainsKey(t.Id)) _weightNames[t.Id] = "W" + CodeWriter.N(k++);
            foreach (var node in _m.Nodes)
            {
                int input = KernelEmitter.AlignedWeightInput(node);
                if (input < 0) continue;
                var t = T(node.Inputs[input]);
                if (t.Storage == TensorStorage.Weight && t.Data != null && t.CSharpType == "float") _aligned.Add(t.Id);
            }

            _w.Line("// <auto-generated/>");
            _w.Line($"// Generated by ModelGen {Version} from {CodeWriter.Comment(_m.SourceFile)} (SHA-256 {_m.SourceSha256}).");
            _w.Line("// Do not edit: change the model or its CompressedModel item, and rebuild.");
            _w.Line("#nullable enable");
            _w.Line();
            using (_w.Block($"namespace {_m.Namespace}"))
            {
                ClassDoc();
                _w.Line(GeneratedCode);
                using (_w.Block($"public static partial class {_m.ClassName}"))
                {
                    Constants();
                    PublicMethods();
                }
            }
            _w.Line();
            _w.Line($"// {_m.ClassName}'s implementation: the schedule, the kernels and the weights, in a namespace of ModelGen's own.");
            using (_w.Block($"namespace {ImplementationNamespace(_m)}"))
            {
                Usings();
                _w.Line();
                Implementation();
                _w.Line();
                Kernels();
                _w.Line();
                Weights();
            }
            return _w.ToString();
        }

        string GeneratedCode => $"[global::System.CodeDom.Compiler.GeneratedCode(\"ModelGen\", \"{Version}\")]";

        /// <summary>From the user's class: the implementation's class, by the short name the class sees first.</summary>
        string Implemented => $"{ImplementationScope}.{_m.ClassName}.Implementation";

        /// <summary>The namespaces the implementation names types from, and an alias for one type of a namespace it needs no more of.</summary>
        void Usings()
        {
            _w.Line("using global::System;");
            _w.Line("using global::System.Runtime.CompilerServices;");
            _w.Line("using global::System.Runtime.InteropServices;");
            _w.Line("using global::System.Runtime.Intrinsics;");
            _w.Line("using global::System.Runtime.Intrinsics.Arm;");
            _w.Line("using global::System.Runtime.Intrinsics.X86;");
            if (_profile) _w.Line("using Stopwatch = global::System.Diagnostics.Stopwatch;");
        }

        void ClassDoc()
        {
            _w.Line("/// <summary>");
            _w.Line($"/// The ONNX model <c>{CodeWriter.Xml(_m.SourceFile)}</c> compiled to C# by ModelGen ({(_m.Compression == "none" ? "float32, uncompressed" : "compression " + CodeWriter.Xml(_m.Compression))}). Call <see cref=\"{RunCref()}\"/>: it allocates nothing and is safe from any thread.");
            if (_m.Measured.Length > 0) _w.Line($"/// Measured at build time against the original model: {CodeWriter.Xml(_m.Measured)}.");
            _w.Line("/// </summary>");
            _w.Line("/// <remarks>");
            _w.Line($"/// <para>Source: {CodeWriter.Xml(_m.SourceFile)}, SHA-256 {_m.SourceSha256}; producer {CodeWriter.Xml(_m.Producer.Length > 0 ? _m.Producer : "unknown")}; ONNX opset {CodeWriter.N(_m.Opset)}.</para>");
            foreach (var b in _m.Inputs) _w.Line($"/// <para>Input <c>{CodeWriter.Xml(b.Name)}</c> (<c>{b.Parameter}</c>): {(T(b.Tensor).Element == TensorElement.Int64 ? "int64" : "float32")} {CodeWriter.Shape(T(b.Tensor).Shape)}.</para>");
            foreach (var b in _m.Outputs) _w.Line($"/// <para>Output <c>{CodeWriter.Xml(b.Name)}</c> (<c>{b.Parameter}</c>): {(T(b.Tensor).Element == TensorElement.Int64 ? "int64" : "float32")} {CodeWriter.Shape(T(b.Tensor).Shape)}.</para>");
            _w.Line($"/// <para>Weights: {CodeWriter.N(WeightBytes)} bytes embedded; scratch: {CodeWriter.N(_m.ScratchBytes)} bytes; {CodeWriter.N(_m.Nodes.Count)} kernels.</para>");
            _w.Line("/// </remarks>");
        }

        void Constants()
        {
            if (Single)
            {
                _w.Line($"/// <summary>Elements of the input <c>{_m.Inputs[0].Parameter}</c>: {CodeWriter.N(T(_m.Inputs[0].Tensor).ElementCount)}.</summary>");
                _w.Line($"public const int InputLength = {CodeWriter.N(T(_m.Inputs[0].Tensor).ElementCount)};");
                _w.Line();
                _w.Line($"/// <summary>Elements of the output <c>{_m.Outputs[0].Parameter}</c>: {CodeWriter.N(T(_m.Outputs[0].Tensor).ElementCount)}.</summary>");
                _w.Line($"public const int OutputLength = {CodeWriter.N(T(_m.Outputs[0].Tensor).ElementCount)};");
                _w.Line();
            }
            foreach (var (b, kind) in _m.Inputs.Select(b => (b, "input")).Concat(_m.Outputs.Select(b => (b, "output"))))
            {
                string name = Identifiers.Unique(Identifiers.Pascal(b.Parameter) + "Shape", _members);
                _w.Line($"/// <summary>Shape of the {kind} <c>{CodeWriter.Xml(b.Name)}</c>: {CodeWriter.Shape(T(b.Tensor).Shape)}.</summary>");
                _w.Line($"public static global::System.ReadOnlySpan<int> {name} => new int[] {{ {string.Join(", ", T(b.Tensor).Shape)} }};");
                _w.Line();
            }
            _w.Line("/// <summary>Bytes of parameters embedded in the assembly.</summary>");
            _w.Line($"public const int WeightBytes = {CodeWriter.N(WeightBytes)};");
            _w.Line();
            _w.Line("/// <summary>Bytes of scratch memory one call needs (the caller's buffer for <c>Run(…, scratch)</c>).</summary>");
            _w.Line($"public const int ScratchBytes = {CodeWriter.N(_m.ScratchBytes)};");
            _w.Line();
            SimdLevel();
        }

        /// <summary>The kernel method of node <paramref name="i"/>: named after the node.</summary>
        string KernelName(int i) => _kernelNames[i];

        /// <summary>
        /// SimdLevel: the widest vectors the kernels take in this process, by the same IsHardwareAccelerated
        /// checks as the kernels' dispatch (folded by the JIT, and by NativeAOT for its instruction set).
        /// </summary>
        void SimdLevel()
        {
            _w.Line("/// <summary>");
            _w.Line($"/// The SIMD level the kernels run at in this process: <c>vector512</c>, <c>vector256</c>, <c>vector128</c> or <c>none</c> (scalar); at most the Simd level the model was compiled with (<c>{CodeWriter.Xml(_m.Simd.ToText())}</c>), and what the processor and, under NativeAOT, the instruction set the binary was compiled for accelerate.");
            _w.Line("/// </summary>");
            _w.Line($"public static string SimdLevel => {Implemented}.SimdLevel;");
        }

        /// <summary>The implementation's SimdLevel: one line per level, by the kernels' own IsHardwareAccelerated checks.</summary>
        void ImplementationSimdLevel()
        {
            var levels = SimdLadder.Widths(_m.Simd);
            if (levels.Count == 0)
            {
                _w.Line("internal static string SimdLevel => \"none\";");
                return;
            }
            _w.Line("internal static string SimdLevel =>");
            _w.Indent();
            foreach (var level in levels) _w.Line($"Vector{level.Bits}.IsHardwareAccelerated ? \"vector{level.Bits}\" :");
            _w.Line("\"none\";");
            _w.Outdent();
        }

        string Element(ArtifactBinding b) => T(b.Tensor).Element == TensorElement.Int64 ? "long" : "float";
        /// <summary>Where type names are written in full (the user's namespace) or short (the implementation's, under its usings).</summary>
        const string FullNames = "global::System.", ShortNames = "";

        string InParams(string prefix = FullNames) => string.Join(", ", _m.Inputs.Select(b => $"{prefix}ReadOnlySpan<{Element(b)}> " + b.Parameter));
        string OutParams(string prefix = FullNames) => string.Join(", ", _m.Outputs.Select(b => $"{prefix}Span<{Element(b)}> " + b.Parameter));
        string AllArgs() => string.Join(", ", _m.Inputs.Concat(_m.Outputs).Select(b => b.Parameter));

        /// <summary>The Run overload without scratch, exactly: a bare cref="Run" is ambiguous (CS0419) where the consumer generates documentation.</summary>
        string RunCref() => "Run(" + string.Join(", ", _m.Inputs.Select(b => $"global::System.ReadOnlySpan{{{Element(b)}}}")
            .Concat(_m.Outputs.Select(b => $"global::System.Span{{{Element(b)}}}"))) + ")";

        void ParamDocs()
        {
            foreach (var b in _m.Inputs)
                _w.Line($"/// <param name=\"{b.Parameter}\">Input <c>{CodeWriter.Xml(b.Name)}</c>, {(T(b.Tensor).Element == TensorElement.Int64 ? "int64" : "float32")} {CodeWriter.Shape(T(b.Tensor).Shape)} row-major: exactly {Elements(T(b.Tensor).ElementCount)}.</param>");
            foreach (var b in _m.Outputs)
                _w.Line($"/// <param name=\"{b.Parameter}\">Receives output <c>{CodeWriter.Xml(b.Name)}</c>, {(T(b.Tensor).Element == TensorElement.Int64 ? "int64" : "float32")} {CodeWriter.Shape(T(b.Tensor).Shape)} row-major: exactly {Elements(T(b.Tensor).ElementCount)}.</param>");
        }

        /// <summary>Run, RunProfiled and Predict: documented here, each one call into the implementation.</summary>
        void PublicMethods()
        {
            string parameters = string.Join(", ", new[] { InParams(), OutParams() }.Where(p => p.Length > 0));
            _w.Line();
            _w.Line("/// <summary>Runs the model on one input, using a scratch buffer kept per thread (allocated once per thread).</summary>");
            ParamDocs();
            _w.Line("/// <exception cref=\"global::System.ArgumentException\">A span does not have exactly the elements its tensor needs.</exception>");
            Forward($"public static void Run({parameters})", $"Run({AllArgs()})");
            _w.Line();

            _w.Line("/// <summary>Runs the model on one input with the caller's scratch memory (for static allocation on small devices).</summary>");
            ParamDocs();
            _w.Line("/// <param name=\"scratch\">At least <see cref=\"ScratchBytes\"/> bytes; its contents are overwritten.</param>");
            _w.Line("/// <exception cref=\"global::System.ArgumentException\">A span does not have exactly the elements its tensor needs, or scratch is too small.</exception>");
            Forward($"public static void Run({parameters}, global::System.Span<byte> scratch)", $"Run({AllArgs()}, scratch)");

            if (_profile)
            {
                _w.Line();
                _w.Line("/// <summary>Runs like Run, adding each kernel's elapsed Stopwatch ticks to ticks[kernel] (for modelgen bench).</summary>");
                Forward($"public static void RunProfiled({parameters}, global::System.Span<long> ticks)", $"RunProfiled({AllArgs()}, ticks)");
            }

            if (HasPredict(_m))
            {
                _w.Line();
                _w.Line("/// <summary>Runs the model and returns the index of the largest output (the predicted class).</summary>");
                foreach (var b in _m.Inputs)
                    _w.Line($"/// <param name=\"{b.Parameter}\">Input <c>{CodeWriter.Xml(b.Name)}</c>, float32 {CodeWriter.Shape(T(b.Tensor).Shape)}: exactly {Elements(T(b.Tensor).ElementCount)}.</param>");
                Forward($"public static int Predict({InParams()})", $"Predict({string.Join(", ", _m.Inputs.Select(b => b.Parameter))})");
            }
        }

        /// <summary>A public method whose body is one call of the implementation's method of the same name.</summary>
        void Forward(string declaration, string call)
        {
            _w.Line(declaration + " =>");
            _w.Indent();
            _w.Line($"{Implemented}.{call};");
            _w.Outdent();
        }

        /// <summary>The class the public methods call: argument checks, the schedule of kernels, the scratch kept per thread.</summary>
        void Implementation()
        {
            string parameters = string.Join(", ", new[] { InParams(ShortNames), OutParams(ShortNames) }.Where(p => p.Length > 0));
            _w.Line($"/// <summary>What <see cref=\"global::{_m.Namespace}.{_m.ClassName}\"/>'s methods do: the kernels in schedule order on the caller's spans, the weights and one scratch arena.</summary>");
            _w.Line(GeneratedCode);
            using (_w.Block("static class Implementation"))
            {
                _w.Line($"internal const int ScratchBytes = {CodeWriter.N(_m.ScratchBytes)};");
                _w.Line();
                ImplementationSimdLevel();
                _w.Line();
                _w.Line($"internal static void Run({parameters}) => Run({AllArgs()}, ThreadScratch());");
                _w.Line();
                using (_w.Block($"internal static void Run({parameters}, Span<byte> scratch)"))
                {
                    foreach (var b in _m.Inputs.Concat(_m.Outputs))
                    {
                        string count = CodeWriter.N(T(b.Tensor).ElementCount);
                        _w.Line($"if ({b.Parameter}.Length != {count}) ThrowLength(nameof({b.Parameter}), {count}, {b.Parameter}.Length);");
                    }
                    _w.Line("if (scratch.Length < ScratchBytes)");
                    _w.Line("    throw new ArgumentException($\"scratch must hold at least {ScratchBytes} bytes; it holds {scratch.Length}.\", nameof(scratch));");
                    _w.Line("// The weights are little-endian bytes; the JIT folds this check away.");
                    _w.Line("if (!BitConverter.IsLittleEndian)");
                    _w.Line("    throw new PlatformNotSupportedException(\"ModelGen's embedded weights need a little-endian processor.\");");
                    _w.Line("Span<float> arena = MemoryMarshal.Cast<byte, float>(scratch);");
                    for (int i = 0; i < _m.Nodes.Count; i++)
                    {
                        _w.Line($"// {CodeWriter.Comment(_m.Nodes[i].OnnxOp)} '{CodeWriter.Comment(_m.Nodes[i].Name)}'");
                        KernelCall(i);
                    }
                }
                _w.Line();

                if (_profile)
                {
                    using (_w.Block($"internal static void RunProfiled({parameters}, Span<long> ticks)"))
                    {
                        _w.Line($"if (ticks.Length < {CodeWriter.N(_m.Nodes.Count)}) throw new ArgumentException(\"one tick counter per kernel\", nameof(ticks));");
                        _w.Line("Span<float> arena = MemoryMarshal.Cast<byte, float>(ThreadScratch());");
                        _w.Line("long start = Stopwatch.GetTimestamp(), now;");
                        for (int i = 0; i < _m.Nodes.Count; i++)
                        {
                            KernelCall(i);
                            _w.Line($"now = Stopwatch.GetTimestamp(); ticks[{CodeWriter.N(i)}] += now - start; start = now;");
                        }
                    }
                    _w.Line();
                }

                Predict();

                using (_w.Block("static void ThrowLength(string parameter, int expected, int actual)"))
                    _w.Line("throw new ArgumentException($\"{parameter} must have exactly {expected} elements; it has {actual}.\", parameter);");
                _w.Line();
                _w.Line("[ThreadStatic]");
                _w.Line("static byte[]? t_scratch;");
                _w.Line();
                _w.Line("static Span<byte> ThreadScratch() => t_scratch ??= new byte[ScratchBytes];");
            }
        }

        /// <summary>The call of kernel <paramref name="i"/> on its tensors' spans, its arguments one a line where they make a long line.</summary>
        void KernelCall(int i)
        {
            var n = _m.Nodes[i];
            int aligned = KernelEmitter.AlignedWeightInput(n);
            var args = n.Inputs.Select((id, k) => k == aligned && _aligned.Contains(id) ? $"Weights.{_weightNames[id]}Padded" : Span(id)).Concat(n.Outputs.Select(Span));
            if (aligned >= 0) args = args.Append(_aligned.Contains(n.Inputs[aligned]) ? $"Weights.{_weightNames[n.Inputs[aligned]]}Phase" : "-1");
            _w.Call($"Kernels.{KernelName(i)}(", args.ToList(), ");");
        }

        string Span(int id)
        {
            var t = T(id);
            switch (t.Storage)
            {
                case TensorStorage.Input: return _m.Inputs[t.Index].Parameter;
                case TensorStorage.Output: return _m.Outputs[t.Index].Parameter;
                case TensorStorage.Weight: return "Weights." + _weightNames[t.Id];
                default:
                    if (t.Offset % 4 != 0) throw new FormatException($"tensor {t.Id} has an unaligned arena offset");
                    // uint8 activations (one int8 layer's output for the next) are bytes within whole floats of the arena.
                    if (t.Element == TensorElement.UInt8) return $"MemoryMarshal.AsBytes(arena.Slice({CodeWriter.N(t.Offset / 4)}, {CodeWriter.N(t.ArenaBytes / 4)})).Slice(0, {CodeWriter.N(t.ElementCount)})";
                    return $"arena.Slice({CodeWriter.N(t.Offset / 4)}, {CodeWriter.N(t.ElementCount)})";
            }
        }

        void Predict()
        {
            if (!HasPredict(_m)) return;
            var output = T(_m.Outputs[0].Tensor);
            using (_w.Block($"internal static int Predict({InParams(ShortNames)})"))
            {
                long count = output.ElementCount;
                _w.Line(count <= 1024
                    ? $"Span<float> predicted = stackalloc float[{CodeWriter.N(count)}];"
                    : $"Span<float> predicted = new float[{CodeWriter.N(count)}];");
                _w.Line($"Run({string.Join(", ", _m.Inputs.Select(b => b.Parameter).Append("predicted"))});");
                _w.Line("int best = 0;");
                _w.Line("for (int i = 1; i < predicted.Length; i++) if (predicted[i] > predicted[best]) best = i;");
                _w.Line("return best;");
            }
            _w.Line();
        }

        /// <summary>Scores of one sample: [C] or [1, C], C ≥ 2. Anything else has no single arg-max.</summary>
        internal static bool IsClassifierOutput(int[] shape) =>
            (shape.Length == 1 && shape[0] >= 2) || (shape.Length == 2 && shape[0] == 1 && shape[1] >= 2);

        void Kernels()
        {
            _w.Line(KernelSharing.Applies(_m)
                ? "/// <summary>One method per node, in schedule order: specialised to its node's shapes, or calling the method its int8 kernel shares with nodes of the same structure (Shared…) with its numbers.</summary>"
                : "/// <summary>One method per kernel, in schedule order, each specialised to its node's shapes and named after its node.</summary>");
            _w.Line(GeneratedCode);
            using var kernelClass = _w.Block("static class Kernels");
            // Each node's method written alone first, so KernelSharing can find nodes whose kernels differ only in numbers.
            var kernels = new List<string>(_m.Nodes.Count);
            for (int i = 0; i < _m.Nodes.Count; i++)
            {
                // Copied into namespace and class: two levels in.
                var node = new CodeWriter(margin: 2);
                KernelEmitter.Emit(node, _m, _m.Nodes[i], i, _helpers);
                kernels.Add(node.ToString());
            }
            KernelSharing.Write(_w, _m, kernels);
            KernelEmitter.EmitHelpers(_w, _helpers, _m.Simd);
        }

        void Weights()
        {
            _w.Line("/// <summary>");
            _w.Line("/// Embedded parameters: little-endian bytes carried in UTF-16 string literals and viewed");
            _w.Line("/// in place (zero-copy; far cheaper to compile than array initializers). Two bytes a character:");
            _w.Line("/// the CJK, Hangul and private-use characters below are those bytes, not text.");
            _w.Line("/// </summary>");
            _w.Line(GeneratedCode);
            using var weightClass = _w.Block("static class Weights");
            bool first = true;
            foreach (var t in _m.Tensors.Where(t => t.Storage == TensorStorage.Weight && _weightNames.ContainsKey(t.Id)))
            {
                if (!first) _w.Line();
                first = false;
                _w.Line($"/// <summary>Initializer <c>{CodeWriter.Xml(t.Name)}</c>: {(t.Name.EndsWith(".sparse_indices", StringComparison.Ordinal) ? "bytes (sparse weights' packed indices)" : t.Name.EndsWith(".sparse_counts", StringComparison.Ordinal) ? (t.Element == TensorElement.UInt8 ? "bytes" : "int16") + " (sparse weights' entries per row)" : t.Name.EndsWith(".sparse_codes", StringComparison.Ordinal) ? "bytes (sparse weights' codebook codes, packed)" : t.Element == TensorElement.Int64 ? "int64" : t.Element == TensorElement.Int8 ? "int8 (quantized)" : t.Element == TensorElement.UInt8 ? "bytes (int4 packed two per byte)" : t.Element == TensorElement.Int32 ? "int32 (bias in accumulator units)" : t.Element == TensorElement.Int16 ? "int16 (bias in accumulator units)" : t.Element == TensorElement.Float16 ? "float16 (per-channel multipliers over the layer's)" : "float32")} {CodeWriter.Shape(t.Shape)}.</summary>");
                string type = t.CSharpType;
                if (_aligned.Contains(t.Id))
                {
                    AlignedWeight(t);
                    continue;
                }
                // int8: an odd byte count is padded to whole UTF-16 units; the slice drops the pad.
                string slice = (t.Element == TensorElement.Int8 || t.Element == TensorElement.UInt8) && t.ElementCount % 2 != 0 ? $".Slice(0, {CodeWriter.N(t.ElementCount)})" : "";
                _w.Line($"public static ReadOnlySpan<{type}> {_weightNames[t.Id]} => MemoryMarshal.Cast<char, {type}>(MemoryExtensions.AsSpan({StringLiteral(t.Data!)})){slice};");
            }
        }

        /// <summary>
        /// A float32 weight read in 64-byte-aligned loads. A literal lands wherever the runtime puts it (its
        /// characters 4 bytes past an 8-byte boundary), so it carries <see cref="GemvEmitter.AlignPad"/> zero
        /// floats on each side, and the phase, how far the data start past a 64-byte boundary, is read once:
        /// the literal is pinned for the life of the process (it is never collected anyway) and its address
        /// taken. The padding is not counted in WeightBytes.
        /// </summary>
        void AlignedWeight(ArtifactTensor t)
        {
            string name = _weightNames[t.Id];
            int pad = GemvEmitter.AlignPad * 4;
            var padded = new byte[t.Data!.Length + 2 * pad];
            Array.Copy(t.Data, 0, padded, pad, t.Data.Length);
            _w.Line($"static readonly string s_{name} = {StringLiteral(padded)};");
            _w.Line($"/// <summary>{CodeWriter.N(GemvEmitter.AlignPad)} zero floats, <see cref=\"{name}\"/>, {CodeWriter.N(GemvEmitter.AlignPad)} zero floats.</summary>");
            _w.Line($"public static ReadOnlySpan<float> {name}Padded => MemoryMarshal.Cast<char, float>(MemoryExtensions.AsSpan(s_{name}));");
            _w.Line($"public static ReadOnlySpan<float> {name} => {name}Padded.Slice({CodeWriter.N(GemvEmitter.AlignPad)}, {CodeWriter.N(t.ElementCount)});");
            _w.Line($"/// <summary>Floats from the last 64-byte boundary to the start of <see cref=\"{name}\"/>; -1 if not a whole number.</summary>");
            _w.Line($"public static readonly int {name}Phase = Phase(s_{name});");
            if (_phaseHelper) return;
            _phaseHelper = true;
            _w.Line();
            _w.Line("/// <summary>Pins a literal for good and returns where its data start past a 64-byte boundary, in floats (after the padding).</summary>");
            using (_w.Block("static int Phase(string literal)"))
            {
                _w.Line("var handle = GCHandle.Alloc(literal, GCHandleType.Pinned);");
                _w.Line("long address = (long)handle.AddrOfPinnedObject();");
                _w.Line("return address % 4 == 0 ? (int)(address / 4 % 16) : -1;");
            }
        }

        bool _phaseHelper;

        /// <summary>
        /// UTF-16 units a literal carries as themselves: printable ASCII but the quote and the backslash, CJK Unified
        /// Ideographs and Extension A, Hangul syllables, and the Private Use Area. Fixed ranges, not a Unicode category
        /// lookup, so every host (the CLI, Visual Studio's generator host) writes the same bytes. None is a line break, a
        /// control, a format or bidirectional control character (no text can be made to display other than it compiles), a
        /// surrogate (no lone half in a UTF-8 file), a combining mark, or a character NFC normalization would change.
        /// </summary>
        internal static bool IsPlainInLiteral(int c) =>
            (c >= 0x20 && c <= 0x7E && c != '"' && c != '\\')
            || (c >= 0x3400 && c <= 0x4DBF)
            || (c >= 0x4E00 && c <= 0x9FFF)
            || (c >= 0xAC00 && c <= 0xD7A3)
            || (c >= 0xE000 && c <= 0xF8FF);

        /// <summary>
        /// Bytes as a C# string literal, two bytes per UTF-16 unit (little-endian). A unit in <see cref="IsPlainInLiteral"/>
        /// is written as itself, anything else as a \uXXXX escape: a float32 weight's high half (sign, exponent) falls in the
        /// CJK (positive) and Hangul (negative) blocks for any magnitude from about 1e-7 to 1e8, its low half (uniform) in one of the
        /// ranges about two times in three, so most units take 3 bytes of UTF-8 instead of 6, and
        /// Roslyn lexes a plain character faster than an escape (LeNet-5's 1.7 MB of weights: 3.0 MB of text instead of
        /// 5.2 MB).
        /// </summary>
        internal static string StringLiteral(byte[] data)
        {
            var sb = new StringBuilder(data.Length * 2 + 2);
            sb.Append('"');
            for (int i = 0; i < data.Length; i += 2)
            {
                int c = data[i] | (i + 1 < data.Length ? data[i + 1] << 8 : 0);
                if (IsPlainInLiteral(c)) sb.Append((char)c);
                else sb.Append("\\u").Append(c.ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
            }
            sb.Append('"');
            return sb.ToString();
        }
    }
}
