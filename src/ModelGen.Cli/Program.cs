using System.CommandLine;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Generator.Emit;
using ModelGen.Onnx;

namespace ModelGen.Cli;

/// <summary>
/// <c>modelgen</c>: the same engine the MSBuild task runs. Errors go to stderr in MSBuild's canonical
/// form (<c>file: error MGnnnn: message</c>) and the exit code is 1, so the task reports them as-is.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("ModelGen: compiles ONNX models into dependency-free C# at build time.");
        root.Subcommands.Add(CompileCommand());
        root.Subcommands.Add(InspectCommand());
        root.Subcommands.Add(Bench.BenchCommand.Create());
        return root.Parse(args).Invoke();
    }

    static Command CompileCommand()
    {
        var model = new Argument<FileInfo>("model") { Description = "The ONNX model file." };
        var className = new Option<string?>("--class") { Description = "Class name (item metadata ClassName). Default: from the file name." };
        var ns = new Option<string>("--namespace") { Description = "Namespace (item metadata Namespace).", DefaultValueFactory = _ => "ModelGen.Models" };
        var batch = new Option<int>("--batch-size") { Description = "Size given to a symbolic batch dimension (item metadata BatchSize).", DefaultValueFactory = _ => 1 };
        var simd = new Option<string>("--simd") { Description = "SIMD level of the emitted code: auto, vector128 or none (item metadata Simd).", DefaultValueFactory = _ => "auto" };
        var compression = new Option<string>("--compression") { Description = "none, or int8-weights: fully connected weights in int8 (item metadata Compression).", DefaultValueFactory = _ => "none" };
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "Folder to write <Class>.g.cs into." };
        var artifact = new Option<FileInfo?>("--artifact") { Description = "Path of the .mgen artifact to write (what the MSBuild task passes)." };
        var command = new Command("compile", "Compile an ONNX model to C# (and/or to the artifact the source generator reads).")
        {
            model, className, ns, batch, simd, compression, outDir, artifact,
        };
        command.SetAction(parse =>
        {
            var modelFile = parse.GetValue(model)!;
            try
            {
                var compiled = ModelCompiler.Compile(new CompileOptions
                {
                    ModelPath = modelFile.FullName,
                    ClassName = parse.GetValue(className),
                    Namespace = parse.GetValue(ns)!,
                    BatchSize = parse.GetValue(batch),
                    Simd = parse.GetValue(simd)!,
                    Compression = parse.GetValue(compression)!,
                });
                // Through the text form, exactly as the generator sees it, so both emit the same bytes.
                string text = ArtifactText.Write(compiled);
                var readBack = ArtifactText.Read(text);
                var artifactFile = parse.GetValue(artifact);
                var dir = parse.GetValue(outDir);
                if (artifactFile is null && dir is null)
                    throw new ModelGenException(ErrorCodes.BadOption, modelFile.FullName, "nothing to write: give --out <folder> and/or --artifact <file.mgen>");
                if (artifactFile is not null) WriteIfChanged(artifactFile.FullName, text, modelFile.FullName);
                if (dir is not null)
                {
                    string path = Path.Combine(dir.FullName, ModelEmitter.FileName(readBack));
                    WriteIfChanged(path, ModelEmitter.Emit(readBack), modelFile.FullName);
                    Console.WriteLine($"modelgen: wrote {path}");
                }
                return 0;
            }
            catch (ModelGenException e)
            {
                Console.Error.WriteLine(e.Canonical);
                return 1;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A defect of ModelGen, not of the model: still one clear line for the build log.
                Console.Error.WriteLine($"{modelFile.FullName}: error {ErrorCodes.Internal}: ModelGen failed on this model ({e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}); please report it with the model");
                Console.Error.WriteLine(e.ToString().Replace(Environment.NewLine, " | "));
                return 1;
            }
        });
        return command;
    }

    static Command InspectCommand()
    {
        var model = new Argument<FileInfo>("model") { Description = "The ONNX model file." };
        var batch = new Option<int>("--batch-size") { Description = "Size given to a symbolic batch dimension.", DefaultValueFactory = _ => 1 };
        var command = new Command("inspect", "List a model's operators (and which ModelGen supports), its parameter count and its input and output shapes.") { model, batch };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(model)!;
            try
            {
                var r = ModelInspector.Inspect(file.FullName, parse.GetValue(batch));
                static string Shape(int[]? s) => s is null ? "[?]" : "[" + string.Join(", ", s) + "]";
                Console.WriteLine($"model      {r.File}");
                Console.WriteLine($"producer   {(r.Producer.Length > 0 ? r.Producer : "unknown")}, ONNX opset {r.Opset}");
                Console.WriteLine($"parameters {r.Parameters:N0} ({r.Parameters * 4:N0} bytes as float32)");
                foreach (var (name, shape) in r.Inputs) Console.WriteLine($"input      {name} float32 {Shape(shape)}");
                foreach (var (name, shape) in r.Outputs) Console.WriteLine($"output     {name} float32 {Shape(shape)}");
                Console.WriteLine("operators");
                foreach (var (op, count, supported) in r.Operators)
                    Console.WriteLine($"  {op,-24} {count,5}  {(supported ? "supported" : "NOT SUPPORTED")}");
                bool ok = r.Problem is null && r.Operators.All(o => o.Supported);
                Console.WriteLine(ok ? "ModelGen can compile this model." : $"ModelGen cannot compile this model yet{(r.Problem is null ? "" : ": " + r.Problem)}");
                return ok ? 0 : 2;
            }
            catch (ModelGenException e)
            {
                Console.Error.WriteLine(e.Canonical);
                return 1;
            }
        });
        return command;
    }

    /// <summary>Writes UTF-8 (no BOM) only when the content differs, so unchanged outputs keep their timestamps.</summary>
    static void WriteIfChanged(string path, string content, string modelPath)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var bytes = new System.Text.UTF8Encoding(false).GetBytes(content);
            if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes))
            {
                File.SetLastWriteTimeUtc(path, DateTime.UtcNow); // up to date for MSBuild's timestamp check
                return;
            }
            string temp = path + ".tmp";
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelGenException(ErrorCodes.WriteFailed, modelPath, $"cannot write '{path}': {e.Message}");
        }
    }
}
