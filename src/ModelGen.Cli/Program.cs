using System.CommandLine;
using System.Runtime.InteropServices;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Generator.Emit;
using ModelGen.Onnx;

namespace ModelGen.Cli;

/// <summary>
/// <c>modelgen</c>: the same engine the MSBuild task runs. Errors go to stderr in MSBuild's canonical
/// form (<c>file: error MGnnnn: message</c>) and the exit code is 1, so the task reports them as-is.
/// Every command keeps that contract through <see cref="Guarded"/>.
/// </summary>
public static class Program
{
    internal static readonly Option<bool> Verbose = new("--verbose") { Description = "On an internal error (MG9000), also print the stack trace.", Recursive = true };

    public static int Main(string[] args)
    {
        var root = new RootCommand("ModelGen: compiles ONNX models into dependency-free C# at build time.");
        root.Options.Add(Verbose);
        root.Subcommands.Add(CompileCommand());
        root.Subcommands.Add(InspectCommand());
        root.Subcommands.Add(Bench.BenchCommand.Create());
        var parse = root.Parse(args);
        // A value that does not parse (--samples x) is a bad option like any other: one canonical line each.
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) Console.Error.WriteLine($"modelgen: error {ErrorCodes.BadOption}: {error.Message} (modelgen --help lists the commands and their options)");
            return 1;
        }
        // Ctrl+C (SIGINT) and SIGTERM cancel the work that watches for it (training stops within a batch, and the command
        // says so and writes nothing); anything still running a second later is ended as before (outputs are written to
        // a .tmp file and renamed, so an ended process leaves none half-written).
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
        return parse.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }

    static readonly CancellationTokenSource Cancel = new();

    /// <summary>Cancelled by Ctrl+C or SIGTERM: long work (training) stops and nothing is written.</summary>
    internal static CancellationToken Cancellation => Cancel.Token;

    static void Interrupt(PosixSignalContext context)
    {
        context.Cancel = true;
        Cancel.Cancel();
        new Thread(() => { Thread.Sleep(1000); Environment.Exit(130); }) { IsBackground = true }.Start();
    }

    /// <summary>
    /// Runs a command under the error contract: a <see cref="ModelGenException"/> is its canonical line; any other
    /// exception is a defect of ModelGen, MG9000 with its message, and its stack trace only with --verbose. Exit code 1.
    /// </summary>
    public static int Guarded(string file, bool verbose, Func<int> command)
    {
        try
        {
            return command();
        }
        catch (ModelGenException e)
        {
            Console.Error.WriteLine(e.Canonical);
            return 1;
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C (or the build cancelled): outputs are written last, so none was.
            Console.Error.WriteLine($"modelgen: {Path.GetFileName(file)}: cancelled; nothing was written");
            return 130;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"{file}: error {ErrorCodes.Internal}: ModelGen failed on this model ({e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}); please report it with the model");
            if (verbose) Console.Error.WriteLine(e);
            return 1;
        }
    }

    static Command CompileCommand()
    {
        var model = new Argument<FileInfo>("model") { Description = "The ONNX model file." };
        var className = new Option<string?>("--class") { Description = "Class name (item metadata ClassName). Default: from the file name." };
        var ns = new Option<string>("--namespace") { Description = "Namespace (item metadata Namespace).", DefaultValueFactory = _ => "ModelGen.Models" };
        var batch = new Option<int>("--batch-size") { Description = "Size given to a symbolic batch dimension (item metadata BatchSize).", DefaultValueFactory = _ => 1 };
        var inputShape = InputShapeOption();
        var simd = new Option<string>("--simd") { Description = "SIMD level of the emitted code: auto, vector128 or none (item metadata Simd).", DefaultValueFactory = _ => "auto" };
        var compression = new Option<string>("--compression") { Description = "none, int8 (fully connected layers in int8 arithmetic; needs --calibration), int8-weights, int4-weights (reconstructed on the calibration data) mixed-weights (each fully connected layer int4, int8 or float32, the fewest bytes within the budget) or mixed (each convolution and fully connected layer int8 arithmetic or float32, the most int8 within the budget) (item metadata Compression).", DefaultValueFactory = _ => "none" };
        var calibration = new Option<FileInfo?>("--calibration") { Description = "Calibration data (.npy, .npz, .pb or a folder of .pb; item metadata Calibration): the compressed model is compared with the original on it and a report written beside the artifact." };
        var labels = new Option<FileInfo?>("--labels") { Description = "Class labels of the calibration samples (.npy; item metadata Labels): the report gives accuracy too." };
        var budget = new Option<string?>("--accuracy-budget") { Description = "Most top-1 may drop (\"0.5%\") or largest output error (\"0.01\") (item metadata AccuracyBudget); a miss is error MG3001 and no artifact." };
        var emitOnnx = new Option<FileInfo?>("--emit-onnx") { Description = "Also write the compressed model as ONNX that ONNX Runtime runs: the graph the code is generated from (pruned, fine-tuned), int8 and int4 weights as uint8 + 128 initializers and DequantizeLinear, int8 arithmetic as QDQ." };
        var measure = new Option<string?>("--measure") { Description = "How the compressed model's output is compared with the original's (item metadata Measure): classification (top-1), binary or binary:<threshold> (decisions above the threshold, default 0.5), regression (output error, also relative to the original outputs' range). Default: from the model's first output (2 or more values: classification; one value: binary when a Sigmoid computes it, else regression)." };
        var calibrationScale = new Option<float>("--calibration-scale") { Description = "Divisor for uint8 calibration data (255 maps 0..255 to 0..1).", DefaultValueFactory = _ => 1f };
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "Folder to write <Class>.g.cs into." };
        var artifact = new Option<FileInfo?>("--artifact") { Description = "Path of the .mgen artifact to write (what the MSBuild task passes)." };
        var training = new TrainingOptions();
        var command = new Command("compile", "Compile an ONNX model to C# (and/or to the artifact the source generator reads).")
        {
            model, className, ns, batch, inputShape, simd, compression, calibration, labels, budget, measure, calibrationScale, emitOnnx, outDir, artifact,
        };
        training.AddTo(command);
        command.SetAction(parse =>
        {
            var modelFile = parse.GetValue(model)!;
            return Guarded(modelFile.FullName, parse.GetValue(Verbose), () =>
            {
                var options = new CompileOptions
                {
                    ModelPath = modelFile.FullName,
                    ClassName = parse.GetValue(className),
                    Namespace = parse.GetValue(ns)!,
                    BatchSize = parse.GetValue(batch),
                    InputShape = InputShapeValue(parse, inputShape),
                    Simd = parse.GetValue(simd)!,
                    Compression = parse.GetValue(compression)!,
                    CalibrationUint8Scale = parse.GetValue(calibrationScale),
                    CalibrationPath = parse.GetValue(calibration)?.FullName,
                    Measure = string.IsNullOrWhiteSpace(parse.GetValue(measure)) ? null : parse.GetValue(measure),
                    Cancellation = Cancel.Token,
                    Progress = new ConsoleProgress(),
                };
                options = training.Apply(parse, options);
                if (options.Measure is not null) Compiler.Compress.OutputMeasure.Parse(options.Measure, modelFile.FullName); // MG0007 before any work
                string? accuracyBudget = string.IsNullOrWhiteSpace(parse.GetValue(budget)) ? null : parse.GetValue(budget);
                if (accuracyBudget is not null) Compiler.Compress.CompressionReport.ParseBudget(accuracyBudget, modelFile.FullName); // out of range: MG0007 before any work
                string kind = options.Compression.ToLowerInvariant();
                Compiler.Ir.Graph? searched = null;
                if (kind is "mixed-weights" or "mixed")
                {
                    if (options.CalibrationPath is null || accuracyBudget is null)
                        throw new ModelGenException(ErrorCodes.BadOption, modelFile.FullName, $"Compression {kind} needs Calibration and AccuracyBudget: it chooses each layer's precision against the budget");
                    // Each layer's precision, the fewest bytes that meet the budget; the choices go to the build log.
                    // The search returns the plan it chose and the graph that plan prepares (the model imported once).
                    // The search compares precisions without training (it prepares the model many times); the chosen
                    // precisions are then fine-tuned for once, when FineTune asks.
                    var search = Compiler.Compress.MixedPrecision.Search(options with { FineTune = false }, accuracyBudget, parse.GetValue(labels)?.FullName);
                    options = options with { LayerPrecisions = search.Plan.LayerPrecisions };
                    searched = options.FineTune ? null : search.Prepared;
                    foreach (var c in search.Choices)
                        Console.WriteLine(FormattableString.Invariant($"modelgen: {kind}: {c.Node}: {c.Precision} ({(double.IsNaN(c.Sensitivity) ? $"every layer in {(kind == "mixed" ? "int8" : "int4")} meets the budget" : $"loss with it alone in {(kind == "mixed" ? "int8" : "int4")}: {c.Sensitivity:G3}")})"));
                }
                // Outputs that are devices (/dev/full) fail before any work, and before reports are written beside them.
                foreach (var output in new[] { parse.GetValue(artifact), parse.GetValue(emitOnnx) })
                    if (output is not null) OutputFile.RequireRegular(output.FullName, modelFile.FullName);
                // With calibration data a report follows: the pipeline keeps the graph after each stage for it to evaluate.
                searched ??= options.CalibrationPath is null ? null : ModelCompiler.Prepare(options, Compiler.Compress.CompressionPlan.Parse(options) with { KeepStageGraphs = true });
                var compiled = ModelCompiler.Compile(options, searched, out var prepared);
                foreach (var stage in prepared.CompressionStages)
                    if (stage.Training is { } trained) Console.WriteLine($"modelgen: {modelFile.Name}: {stage.Name}: {Compiler.Training.TrainingSummary.Summary(trained)}");
                // Through the text form, exactly as the generator sees it, so both emit the same bytes.
                string text = ArtifactText.Write(compiled);
                var readBack = ArtifactText.Read(text);
                // Emitted here as the generator will emit it: what a build would compile is checked against its budget.
                string source = ModelEmitter.Emit(readBack);
                ModelCompiler.CheckEmittedSize(source.Length, compiled, prepared);
                var artifactFile = parse.GetValue(artifact);
                var dir = parse.GetValue(outDir);
                if (artifactFile is null && dir is null)
                    throw new ModelGenException(ErrorCodes.BadOption, modelFile.FullName, "nothing to write: give --out <folder> and/or --artifact <file.mgen>");
                var calibrationFile = parse.GetValue(calibration);
                if (calibrationFile is null && (accuracyBudget is not null || parse.GetValue(labels) is not null))
                    throw new ModelGenException(ErrorCodes.BadOption, modelFile.FullName, "an accuracy budget or labels need calibration data: give --calibration (item metadata Calibration)");
                if (calibrationFile is not null)
                {
                    // The report beside the artifact (or the generated file), in the build log, and the budget check.
                    var report = Compiler.Compress.CompressionReport.Create(options, compiled, calibrationFile.FullName, parse.GetValue(labels)?.FullName, accuracyBudget, prepared);
                    string stem = artifactFile is not null ? artifactFile.FullName : Path.Combine(dir!.FullName, readBack.ClassName);
                    Directory.CreateDirectory(Path.GetDirectoryName(stem)!);
                    report.Code = Compiler.Compress.EmittedCode.Of(source, readBack);
                    WriteIfChanged(stem + ".report.md", report.Markdown(), modelFile.FullName);
                    WriteIfChanged(stem + ".report.json", report.Json(), modelFile.FullName);
                    Console.WriteLine($"modelgen: {report.Summary()}; report: {stem}.report.md");
                    foreach (var note in report.Notes) Console.WriteLine($"modelgen: {note}");
                    // Canonical warnings: the MSBuild task makes build warnings of them.
                    foreach (var warning in report.Warnings) Console.Error.WriteLine($"{calibrationFile.FullName}: warning {ErrorCodes.DataRangeSuspect}: {warning}");
                    if (report.Distillation?.Warning is { } low) Console.Error.WriteLine($"{modelFile.FullName}: warning {ErrorCodes.DistillationAgreementLow}: {low}");
                    if (report.BudgetMet == false)
                    {
                        if (artifactFile is not null && File.Exists(artifactFile.FullName)) File.Delete(artifactFile.FullName);
                        throw new ModelGenException(ErrorCodes.AccuracyBudgetMissed, modelFile.FullName,
                            $"the compressed model misses the accuracy budget {accuracyBudget}: {report.Summary()}; see {stem}.report.md, and loosen the budget or use less compression");
                    }
                    // The generated class's documentation states what was measured.
                    compiled.Measured = report.Summary();
                    text = ArtifactText.Write(compiled);
                    readBack = ArtifactText.Read(text);
                    source = ModelEmitter.Emit(readBack);
                    // The report states the code as finally emitted (its documentation now carries the summary).
                    report.Code = Compiler.Compress.EmittedCode.Of(source, readBack);
                    WriteIfChanged(stem + ".report.md", report.Markdown(), modelFile.FullName);
                    WriteIfChanged(stem + ".report.json", report.Json(), modelFile.FullName);
                }
                // Code size beside the weights and the arena, for every model (issue 19), at normal verbosity in a build.
                long weightBytes = readBack.Tensors.Where(t => t.Storage == TensorStorage.Weight).Sum(t => (long)(t.Data?.Length ?? 0));
                Console.WriteLine(FormattableString.Invariant($"modelgen: {modelFile.Name}: code {Compiler.Compress.EmittedCode.Of(source, readBack).Describe()}; weights {weightBytes:N0} bytes"));
                if (artifactFile is not null) WriteIfChanged(artifactFile.FullName, text, modelFile.FullName);
                if (parse.GetValue(emitOnnx) is { } onnxOut)
                {
                    // The graph the code was generated from: pruned, restructured and fine-tuned as it is.
                    foreach (var note in Compiler.Compress.OnnxExport.Write(prepared, onnxOut.FullName)) Console.WriteLine($"modelgen: {note}");
                    Console.WriteLine($"modelgen: wrote {onnxOut.FullName}");
                }
                if (dir is not null)
                {
                    string path = Path.Combine(dir.FullName, ModelEmitter.FileName(readBack));
                    WriteIfChanged(path, source, modelFile.FullName);
                    Console.WriteLine($"modelgen: wrote {path}");
                }
                return 0;
            });
        });
        return command;
    }

    /// <summary>--input-shape, the same in compile, inspect and bench: repeatable, or entries separated by ';'.</summary>
    internal static Option<string[]> InputShapeOption() => new("--input-shape")
    {
        Description = "The whole shape of an input, fixing its symbolic sizes: name:dims with the dims separated by 'x' (--input-shape audio:1x16000); repeat it, or separate entries by ';', for several inputs; bare dims (1x16000) for a model with one input (item metadata InputShape).",
    };

    internal static string? InputShapeValue(ParseResult parse, Option<string[]> option) =>
        parse.GetValue(option) is { Length: > 0 } values ? string.Join(";", values) : null;

    static Command InspectCommand()
    {
        var model = new Argument<FileInfo>("model") { Description = "The ONNX model file." };
        var batch = new Option<int>("--batch-size") { Description = "Size given to a symbolic batch dimension.", DefaultValueFactory = _ => 1 };
        var inputShape = InputShapeOption();
        var command = new Command("inspect", "List a model's operators (and which ModelGen supports), its parameter count, its input and output shapes, and every blocker that keeps it from compiling with what would lift it (exit code 2 when there is one).") { model, batch, inputShape };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(model)!;
            return Guarded(file.FullName, parse.GetValue(Verbose), () =>
            {
                var r = ModelInspector.Inspect(file.FullName, parse.GetValue(batch), InputShapeValue(parse, inputShape));
                static string Shape(int[]? s) => s is null ? "[?]" : "[" + string.Join(", ", s) + "]";
                Console.WriteLine($"model      {r.File}");
                Console.WriteLine($"producer   {(r.Producer.Length > 0 ? r.Producer : "unknown")}, ONNX opset {r.Opset}");
                Console.WriteLine($"parameters {r.Parameters:N0} ({r.Parameters * 4:N0} bytes as float32)");
                foreach (var (name, shape) in r.Inputs)
                    Console.WriteLine(shape is null && r.Declared.TryGetValue(name, out var declared) ? $"input      {name} {declared} (not fixed)" : $"input      {name} float32 {Shape(shape)}");
                foreach (var (name, shape) in r.Outputs) Console.WriteLine($"output     {name} float32 {Shape(shape)}");
                Console.WriteLine("operators");
                foreach (var (op, count, supported) in r.Operators)
                    Console.WriteLine($"  {op,-24} {count,5}  {(supported ? "supported" : "NOT SUPPORTED")}");
                if (r.Blockers.Count == 0)
                {
                    Console.WriteLine("ModelGen can compile this model.");
                    return 0;
                }
                // Every blocker, each with what lifts it; nodes after a failing one are not checked, so more may follow.
                Console.WriteLine($"ModelGen cannot compile this model yet: {r.Blockers.Count} {(r.Blockers.Count == 1 ? "blocker" : "blockers")}");
                foreach (var b in r.Blockers) Console.WriteLine($"  {b.Code} {b.Message}");
                if (r.Unchecked > 0)
                    Console.WriteLine($"{r.Unchecked} {(r.Unchecked == 1 ? "node reads" : "nodes read")} what these leave unknown and {(r.Unchecked == 1 ? "was" : "were")} not checked: inspect again once they are lifted.");
                return 2;
            });
        });
        return command;
    }

    /// <summary>Writes UTF-8 (no BOM) only when the content differs, so unchanged outputs keep their timestamps.</summary>
    static void WriteIfChanged(string path, string content, string modelPath) =>
        OutputFile.WriteIfChanged(path, new System.Text.UTF8Encoding(false).GetBytes(content), modelPath);
}
