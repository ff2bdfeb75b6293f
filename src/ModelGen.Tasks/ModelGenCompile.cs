using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text.RegularExpressions;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace ModelGen.Tasks
{
    /// <summary>
    /// Compiles one ONNX model into a <c>.mgen</c> artifact by running <c>modelgen compile</c> under the
    /// running dotnet host, out of MSBuild's process. Out of process because the compiler loads ONNX
    /// Runtime (native code that would stay loaded, and keep files locked, in a long-lived MSBuild node)
    /// and may run for a long time; a crash of the compiler then fails the build instead of MSBuild.
    /// </summary>
    /// <remarks>
    /// The command line is
    /// <c>"$(DOTNET_HOST_PATH)" "&lt;ToolAssembly&gt;" compile "&lt;ModelFile&gt;" --artifact "&lt;ArtifactFile&gt;"
    /// [--class &lt;ClassName&gt;] [--namespace &lt;Namespace&gt;] [--batch-size &lt;BatchSize&gt;] [--input-shape &lt;InputShape&gt;] [--simd &lt;Simd&gt;] …</c>.
    /// The program prints its diagnostics in MSBuild's canonical form (<c>file: error MG0001: text</c>),
    /// which <see cref="ToolTask"/> turns into build errors and warnings with their code and file.
    /// Codes MG0100–MG0199 belong to this task; docs/msbuild.md lists them.
    /// </remarks>
    public sealed class ModelGenCompile : ToolTask
    {
        // Codes this task reports itself. The compiler's own codes arrive through the tool's output.
        internal const string ModelNotFound = "MG0100";
        internal const string ToolNotFound = "MG0101";
        internal const string InvalidBatchSize = "MG0102";
        internal const string InvalidSimd = "MG0103";
        internal const string InvalidClassName = "MG0104";
        internal const string InvalidNamespace = "MG0105";
        internal const string MissingArtifactPath = "MG0106";
        internal const string ToolFailed = "MG0107";
        internal const string ArtifactNotWritten = "MG0108";
        internal const string HostNotFound = "MG0109";
        internal const string InvalidInputShape = "MG0112";
        internal const string InvalidFineTune = "MG0117";

        // modelgen's codes for a bad option value (MG0007) and an InputShape that does not fit the model (MG1008): both
        // are fixed in the item's metadata, so they point at the item in the project file, not at the model.
        private static readonly string[] MetadataCodes = { "MG0007", "MG1008" };

        private static readonly Regex ToolDiagnostic = new Regex(
            @"^(?<file>.+?): (?<kind>error|warning) (?<code>MG\d{4}): (?<message>.*)$", RegexOptions.CultureInvariant);

        // name:dims or bare dims, sizes separated by 'x' (the compiler checks names and sizes against the model).
        private static readonly Regex InputShapeEntry = new Regex(
            @"^\s*(?:(?<name>[^;]*\S)\s*:)?\s*(?<dims>\d+(?:\s*[xX]\s*\d+)*)\s*$", RegexOptions.CultureInvariant);

        private static readonly string[] SimdLevels = { "auto", "vector128", "none" };

        // A canonical diagnostic as MSBuild's CanonicalError parser recognises it; only used to tell
        // whether the tool explained its own failure. The parser itself does the conversion.
        private static readonly Regex CanonicalDiagnostic = new Regex(
            @"(^|\s)(error|warning)\s+[A-Za-z]+\d+\s*:", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

        private string? _lastUnexplainedErrorLine;

        /// <summary>The ONNX model to compile (the <c>CompressedModel</c> item). Maps to the positional
        /// <c>&lt;model.onnx&gt;</c> argument. Required; must exist (MG0100).</summary>
        [Required]
        public string ModelFile { get; set; } = "";

        /// <summary>Where the <c>.mgen</c> artifact is written; its folder is created. Maps to
        /// <c>--artifact</c>. Required (MG0106).</summary>
        [Required]
        public string ArtifactFile { get; set; } = "";

        /// <summary><c>modelgen.dll</c>, the command-line program the package carries under
        /// <c>tools/net10.0/</c>. Required; must exist (MG0101).</summary>
        [Required]
        public string ToolAssembly { get; set; } = "";

        /// <summary>Name of the generated class. Maps to <c>--class</c>; empty lets the program derive it
        /// from the model's file name. Must be a C# identifier when given (MG0104).</summary>
        public string? ClassName { get; set; }

        /// <summary>Namespace of the generated class. Maps to <c>--namespace</c>; empty lets the program
        /// use its default (<c>ModelGen.Models</c>). Must be a dotted list of C# identifiers (MG0105).</summary>
        public string? Namespace { get; set; }

        /// <summary>Batch size compiled into the code. Maps to <c>--batch-size</c>; a positive integer
        /// (MG0102). Empty means the program's default (1).</summary>
        public string? BatchSize { get; set; }

        /// <summary>SIMD level of the emitted kernels: <c>auto</c>, <c>vector128</c> or <c>none</c>
        /// (case-insensitive, MG0103). Maps to <c>--simd</c>; empty means <c>auto</c>.</summary>
        public string? Simd { get; set; }

        /// <summary>Compression: <c>none</c>, <c>int8</c>, <c>int8-weights</c>, <c>int4-weights</c>, <c>mixed-weights</c> or <c>mixed</c>. Maps to <c>--compression</c>; the
        /// compiler checks the value (MG0007). Empty means <c>none</c>.</summary>
        public string? Compression { get; set; }

        /// <summary>Calibration data (<c>--calibration</c>), relative to the project folder.</summary>
        public string? Calibration { get; set; }

        /// <summary>Labels of the calibration samples (<c>--labels</c>), relative to the project folder.</summary>
        public string? Labels { get; set; }

        /// <summary>Accuracy budget (<c>--accuracy-budget</c>): "0.5%" or an output error bound.</summary>
        public string? AccuracyBudget { get; set; }

        /// <summary>Divisor of uint8 calibration data (<c>--calibration-scale</c>): 255 maps images stored as 0..255
        /// to the 0..1 a model trained on scaled pixels saw. The compiler checks the value (MG0007).</summary>
        public string? CalibrationScale { get; set; }

        /// <summary>The whole shape of each input named, fixing its symbolic sizes (<c>--input-shape</c>):
        /// <c>audio:1x16000</c>, several separated by ';' (MG0112 when it does not parse; the compiler checks it against the model).</summary>
        public string? InputShape { get; set; }

        /// <summary>The item as the project writes it (<c>%(Identity)</c>), named in diagnostics about its metadata.</summary>
        public string? ItemSpec { get; set; }

        /// <summary>The file that defines the item (<c>%(DefiningProjectFullPath)</c>), where diagnostics about its metadata
        /// point, at the item's line when the file names it once. Empty: the project of this task.</summary>
        public string? ItemFile { get; set; }

        /// <summary>How outputs are compared (<c>--measure</c>): classification, binary, binary:&lt;threshold&gt; or
        /// regression; empty: chosen from the model's output. The compiler checks the value (MG0007).</summary>
        public string? Measure { get; set; }

        /// <summary>Unstructured pruning (<c>--pruning</c>): the share of weights removed; the compiler checks the value (MG0007).</summary>
        public string? Pruning { get; set; }

        /// <summary>How pruning chooses the weights it removes (<c>--pruning-kind</c>): unstructured, unstructured-sensitive, 2:4, 1:4, 4:8; the compiler checks the value (MG0007).</summary>
        public string? PruningKind { get; set; }

        /// <summary>Low-rank factorization (<c>--low-rank</c>): <c>0.9</c> keeps that share of each fully connected layer's and convolution's energy, <c>bytes:0.5</c> a size budget, <c>rank:8</c> a fixed rank; the compiler checks the value (MG0007).</summary>
        public string? LowRank { get; set; }

        /// <summary>Weight sharing (<c>--weight-sharing</c>): the bits of each layer's codebook index, 2 to 8; the compiler checks the value (MG0007).</summary>
        public string? WeightSharing { get; set; }
        /// <summary>Sharing across layers (<c>--weight-sharing-ties</c>): groups of layers tied to one shared weight, "fc1,fc2;conv2,conv3"; the compiler checks the value (MG0007).</summary>
        public string? WeightSharingTies { get; set; }

        /// <summary>Fine-tune for the chosen compression (<c>--fine-tune</c>): "true" or "false" (empty: false).</summary>
        public string? FineTune { get; set; }

        /// <summary>Training samples (<c>--training-data</c>), relative to the project folder.</summary>
        public string? TrainingData { get; set; }

        /// <summary>Labels of the training samples (<c>--training-labels</c>), relative to the project folder.</summary>
        public string? TrainingLabels { get; set; }

        /// <summary>Most passes over the training data (<c>--epochs</c>); the compiler checks the value (MG0007).</summary>
        public string? Epochs { get; set; }

        /// <summary>The optimizer's learning rate (<c>--learning-rate</c>); the compiler checks the value (MG0007).</summary>
        public string? LearningRate { get; set; }

        /// <summary>The training seed (<c>--seed</c>).</summary>
        public string? Seed { get; set; }

        /// <summary>Most time training may take (<c>--training-time-limit</c>): 90s, 10m, 1h.</summary>
        public string? TrainingTimeLimit { get; set; }

        /// <summary>Training augmentation (<c>--augment</c>): shift:2, noise:0.05 or both separated by ','.</summary>
        public string? TrainingAugmentation { get; set; }

        /// <summary>Distillation (<c>--student</c>): a student ONNX file (made absolute against the project) or a derived spec such as "width:0.25"; the compiler checks the value (MG0007).</summary>
        public string? Student { get; set; }

        /// <summary>Where the student's weights start (<c>--student-init</c>): own or fresh; the compiler checks the value (MG0007).</summary>
        public string? StudentInit { get; set; }

        /// <summary>The distillation temperature (<c>--distillation-temperature</c>); the compiler checks the value (MG0007).</summary>
        public string? DistillationTemperature { get; set; }

        /// <summary>With labels, the cross-entropy's share of the distillation loss (<c>--distillation-label-weight</c>); the compiler checks the value (MG0007).</summary>
        public string? DistillationLabelWeight { get; set; }

        /// <summary>The dotnet executable that runs <see cref="ToolAssembly"/>. Empty means the host
        /// running this build (<c>DOTNET_HOST_PATH</c>, set by the .NET SDK), else <c>dotnet</c> on PATH.
        /// <see cref="ToolTask.ToolPath"/>/<see cref="ToolTask.ToolExe"/> still override it.</summary>
        public string? DotnetHostPath { get; set; }

        /// <inheritdoc />
        protected override string ToolName =>
            Environment.OSVersion.Platform == PlatformID.Win32NT ? "dotnet.exe" : "dotnet";

        // Diagnostics from the tool go to stderr; keep the rest of its chatter out of normal verbosity.
        /// <inheritdoc />
        protected override MessageImportance StandardOutputLoggingImportance => MessageImportance.Low;

        /// <inheritdoc />
        protected override MessageImportance StandardErrorLoggingImportance => MessageImportance.Normal;

        /// <inheritdoc />
        protected override string GenerateFullPathToTool()
        {
            string? host = !string.IsNullOrEmpty(DotnetHostPath)
                ? DotnetHostPath
                : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(host) && File.Exists(host))
            {
                return Path.GetFullPath(host);
            }

            string? onPath = FindOnPath(ToolName);
            if (onPath != null)
            {
                return onPath;
            }

            Log.LogError(null, HostNotFound, null, null, 0, 0, 0, 0,
                "Cannot find the dotnet host that runs modelgen: DOTNET_HOST_PATH is {0} and '{1}' is not on PATH. Build with the dotnet CLI or set the DotnetHostPath parameter.",
                string.IsNullOrEmpty(host) ? "not set" : "'" + host + "' (missing)", ToolName);
            return "";
        }

        /// <inheritdoc />
        protected override string GenerateCommandLineCommands()
        {
            var builder = new CommandLineBuilder(quoteHyphensOnCommandLine: false, useNewLineSeparator: false);
            builder.AppendFileNameIfNotNull(Path.GetFullPath(ToolAssembly));
            builder.AppendSwitch("compile");
            builder.AppendFileNameIfNotNull(Path.GetFullPath(ModelFile));
            builder.AppendSwitchIfNotNull("--class ", NullIfEmpty(ClassName));
            builder.AppendSwitchIfNotNull("--namespace ", NullIfEmpty(Namespace));
            builder.AppendSwitchIfNotNull("--batch-size ", NullIfEmpty(BatchSize));
            builder.AppendSwitchIfNotNull("--input-shape ", NullIfEmpty(InputShape?.Trim()));
            builder.AppendSwitchIfNotNull("--simd ", NullIfEmpty(Simd)?.ToLowerInvariant());
            builder.AppendSwitchIfNotNull("--compression ", NullIfEmpty(Compression)?.ToLowerInvariant());
            builder.AppendSwitchIfNotNull("--calibration ", NullIfEmpty(Calibration) is string c ? Path.GetFullPath(c) : null);
            builder.AppendSwitchIfNotNull("--labels ", NullIfEmpty(Labels) is string l ? Path.GetFullPath(l) : null);
            builder.AppendSwitchIfNotNull("--accuracy-budget ", NullIfEmpty(AccuracyBudget));
            builder.AppendSwitchIfNotNull("--calibration-scale ", NullIfEmpty(CalibrationScale));
            builder.AppendSwitchIfNotNull("--measure ", NullIfEmpty(Measure));
            builder.AppendSwitchIfNotNull("--pruning ", NullIfEmpty(Pruning?.Trim()));
            builder.AppendSwitchIfNotNull("--pruning-kind ", NullIfEmpty(PruningKind?.Trim())?.ToLowerInvariant());
            builder.AppendSwitchIfNotNull("--low-rank ", NullIfEmpty(LowRank?.Trim()));
            builder.AppendSwitchIfNotNull("--weight-sharing ", NullIfEmpty(WeightSharing?.Trim()));
            builder.AppendSwitchIfNotNull("--weight-sharing-ties ", NullIfEmpty(WeightSharingTies?.Trim()));
            if (string.Equals(NullIfEmpty(FineTune?.Trim()), "true", StringComparison.OrdinalIgnoreCase)) builder.AppendSwitch("--fine-tune");
            builder.AppendSwitchIfNotNull("--training-data ", NullIfEmpty(TrainingData) is string td ? Path.GetFullPath(td) : null);
            builder.AppendSwitchIfNotNull("--training-labels ", NullIfEmpty(TrainingLabels) is string tl ? Path.GetFullPath(tl) : null);
            builder.AppendSwitchIfNotNull("--epochs ", NullIfEmpty(Epochs?.Trim()));
            builder.AppendSwitchIfNotNull("--learning-rate ", NullIfEmpty(LearningRate?.Trim()));
            builder.AppendSwitchIfNotNull("--seed ", NullIfEmpty(Seed?.Trim()));
            builder.AppendSwitchIfNotNull("--training-time-limit ", NullIfEmpty(TrainingTimeLimit?.Trim()));
            builder.AppendSwitchIfNotNull("--augment ", NullIfEmpty(TrainingAugmentation?.Trim()));
            // A student file is relative to the project, as the data files are; a derived spec ("width:0.25") goes as it is.
            builder.AppendSwitchIfNotNull("--student ", NullIfEmpty(Student?.Trim()) is string st
                ? st.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || st.IndexOfAny(new[] { '/', '\\' }) >= 0 ? Path.GetFullPath(st) : st : null);
            builder.AppendSwitchIfNotNull("--student-init ", NullIfEmpty(StudentInit?.Trim()));
            builder.AppendSwitchIfNotNull("--distillation-temperature ", NullIfEmpty(DistillationTemperature?.Trim()));
            builder.AppendSwitchIfNotNull("--distillation-label-weight ", NullIfEmpty(DistillationLabelWeight?.Trim()));
            builder.AppendSwitchIfNotNull("--artifact ", Path.GetFullPath(ArtifactFile));
            return builder.ToString();
        }

        // The arguments after the host, for tests with a fake build engine.
        internal string CommandLineForTests => GenerateCommandLineCommands();

        /// <summary>Checks every parameter and logs each problem found, so one build shows them all.</summary>
        protected override bool ValidateParameters()
        {
            bool ok = true;

            if (string.IsNullOrWhiteSpace(ModelFile))
            {
                LogItemError(ModelNotFound, "No model file was given: the CompressedModel item has an empty Include.");
                ok = false;
            }
            else if (!File.Exists(ModelFile))
            {
                LogItemError(ModelNotFound,
                    "The model file '{0}' does not exist. Check the Include of the CompressedModel item (relative paths start at the project folder).",
                    ModelFile);
                ok = false;
            }

            if (string.IsNullOrWhiteSpace(ArtifactFile))
            {
                LogTaskError(MissingArtifactPath, ModelFile, "No artifact path was given for this model (ModelGen_OutputPath is empty?).");
                ok = false;
            }

            if (string.IsNullOrWhiteSpace(ToolAssembly) || !File.Exists(ToolAssembly))
            {
                LogTaskError(ToolNotFound, ModelFile,
                    "The modelgen program '{0}' does not exist. The ModelGen package may be damaged (restore it again), or ModelGen_ToolAssembly points to the wrong file.",
                    ToolAssembly);
                ok = false;
            }

            if (!string.IsNullOrEmpty(BatchSize) &&
                (!int.TryParse(BatchSize, NumberStyles.None, CultureInfo.InvariantCulture, out int batch) || batch < 1))
            {
                LogItemError(InvalidBatchSize,
                    "BatchSize '{0}' is not a positive integer. Set the BatchSize metadata of the CompressedModel item to 1 or more.",
                    BatchSize);
                ok = false;
            }

            if (!string.IsNullOrEmpty(Simd) && Array.IndexOf(SimdLevels, Simd!.ToLowerInvariant()) < 0)
            {
                LogItemError(InvalidSimd,
                    "Simd '{0}' is not a SIMD level. Use one of: {1}.", Simd, string.Join(", ", SimdLevels));
                ok = false;
            }

            if (!string.IsNullOrEmpty(ClassName) && !IsIdentifier(ClassName!))
            {
                LogItemError(InvalidClassName,
                    "ClassName '{0}' is not a C# identifier. Use letters, digits and '_', not starting with a digit, and not a C# keyword.",
                    ClassName);
                ok = false;
            }

            if (!string.IsNullOrEmpty(Namespace) && !IsNamespace(Namespace!))
            {
                LogItemError(InvalidNamespace,
                    "Namespace '{0}' is not a C# namespace. Use identifiers separated by '.', or set the Namespace metadata of the CompressedModel item.",
                    Namespace);
                ok = false;
            }

            if (!string.IsNullOrWhiteSpace(InputShape) && BadInputShapeEntry(InputShape!) is string bad)
            {
                LogItemError(InvalidInputShape,
                    "InputShape '{0}': '{1}' is not name:dims with each size a whole number from 1 to 268435456. Write the whole shape of each input whose sizes you fix, dims separated by 'x', entries by ';' (InputShape=\"audio:1x16000\"), or bare dims (\"1x16000\") for a model with one input.",
                    InputShape, bad);
                ok = false;
            }

            if (!string.IsNullOrWhiteSpace(FineTune) && !bool.TryParse(FineTune!.Trim(), out _))
            {
                LogItemError(InvalidFineTune,
                    "FineTune '{0}' is not true or false. Set FineTune=\"true\" to fine-tune the model on TrainingData for its Compression.",
                    FineTune);
                ok = false;
            }

            return ok;
        }

        /// <summary>The first entry of an InputShape value that does not parse, or null.</summary>
        internal static string? BadInputShapeEntry(string value)
        {
            foreach (string entry in value.Split(';'))
            {
                if (entry.Trim().Length == 0)
                {
                    continue;
                }

                Match m = InputShapeEntry.Match(entry);
                if (!m.Success)
                {
                    return entry.Trim();
                }

                foreach (string size in m.Groups["dims"].Value.Split('x', 'X'))
                {
                    if (!long.TryParse(size.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < 1 || n > 1 << 28)
                    {
                        return entry.Trim();
                    }
                }
            }

            return null;
        }

        /// <inheritdoc />
        protected override bool SkipTaskExecution()
        {
            // The folder must exist whatever the program does with it; relative paths resolve against
            // the project folder, which is MSBuild's current directory for tasks.
            string artifact = Path.GetFullPath(ArtifactFile);
            string? folder = Path.GetDirectoryName(artifact);
            if (!string.IsNullOrEmpty(folder))
            {
                Directory.CreateDirectory(folder);
            }

            // A failed run must not leave an older (or half-written) artifact that is newer than the
            // inputs: the next build would take it as up to date.
            if (File.Exists(artifact))
            {
                File.Delete(artifact);
            }

            return base.SkipTaskExecution();
        }

        /// <inheritdoc />
        public override bool Execute()
        {
            bool ok = base.Execute();
            if (!ok && !Log.HasLoggedErrors)
            {
                // ToolTask stops a tool that outlives Timeout with only a warning (MSB5002); a failed
                // task must explain itself with an error.
                LogTaskError(ToolFailed, ModelFile, Timeout != System.Threading.Timeout.Infinite
                        ? "modelgen did not finish within {0} ms and was stopped. Raise ModelGen_Timeout, or leave it empty for no limit."
                        : "modelgen was stopped before it finished (exit code {1}).",
                    Timeout.ToString(CultureInfo.InvariantCulture), ExitCode.ToString(CultureInfo.InvariantCulture));
            }
            else if (ok && !Log.HasLoggedErrors && !File.Exists(ArtifactFile))
            {
                LogTaskError(ArtifactNotWritten, ModelFile,
                    "modelgen reported success but did not write '{0}'.", ArtifactFile);
                ok = false;
            }

            return ok && !Log.HasLoggedErrors;
        }

        /// <inheritdoc />
        protected override void LogEventsFromTextOutput(string singleLine, MessageImportance messageImportance)
        {
            // Canonical lines become errors and warnings with code and file; any other line is a message.
            // A crash (an unhandled exception's stack trace) is not canonical, so remember its first
            // line to explain the failure below.
            if (!string.IsNullOrWhiteSpace(singleLine) &&
                !CanonicalDiagnostic.IsMatch(singleLine) &&
                _lastUnexplainedErrorLine == null &&
                messageImportance == StandardErrorLoggingImportance)
            {
                _lastUnexplainedErrorLine = singleLine.Trim();
            }

            // modelgen's own report lines (the compression summary, the layers the mixed searches chose) show
            // at normal verbosity: a compression that took minutes says what it did. Its other output stays low.
            if (messageImportance == StandardOutputLoggingImportance && singleLine.StartsWith(ReportPrefix, StringComparison.Ordinal))
            {
                messageImportance = MessageImportance.High;
            }

            // An option modelgen refuses came from the item's metadata: point at the item, not the model.
            Match d = ToolDiagnostic.Match(singleLine);
            if (d.Success && Array.IndexOf(MetadataCodes, d.Groups["code"].Value) >= 0 && SameFile(d.Groups["file"].Value, ModelFile))
            {
                var (file, line, column) = ItemPosition();
                string message = $"CompressedModel '{Item}': {d.Groups["message"].Value}";
                if (d.Groups["kind"].Value == "error")
                {
                    Log.LogError(null, d.Groups["code"].Value, null, file, line, column, 0, 0, "{0}", message);
                }
                else
                {
                    Log.LogWarning(null, d.Groups["code"].Value, null, file, line, column, 0, 0, "{0}", message);
                }

                return;
            }

            base.LogEventsFromTextOutput(singleLine, messageImportance);
        }

        private string Item => string.IsNullOrEmpty(ItemSpec) ? ModelFile : ItemSpec!;

        private (string? File, int Line, int Column) ItemPosition()
        {
            string? file = string.IsNullOrEmpty(ItemFile) ? BuildEngine?.ProjectFileOfTaskNode : ItemFile;
            var (line, column) = ItemLocation.Find(file, Item);
            return (file, line, column);
        }

        private static bool SameFile(string a, string b)
        {
            try
            {
                return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
            }
            catch (Exception e) when (e is ArgumentException || e is NotSupportedException || e is PathTooLongException)
            {
                return false;
            }
        }

        /// <summary>An error about the item's metadata or Include: at the item in the project file, naming it.</summary>
        private void LogItemError(string code, string message, params object?[] args)
        {
            var (file, line, column) = ItemPosition();
            Log.LogError(subcategory: null, errorCode: code, helpKeyword: null, file: file,
                lineNumber: line, columnNumber: column, endLineNumber: 0, endColumnNumber: 0,
                message: "{0}", messageArgs: "CompressedModel '" + Item + "': " + string.Format(CultureInfo.InvariantCulture, message, args));
        }

        /// <summary>What modelgen puts before a line meant for the build log at normal verbosity.</summary>
        internal const string ReportPrefix = "modelgen: ";

        /// <inheritdoc />
        protected override bool HandleTaskExecutionErrors()
        {
            if (Log.HasLoggedErrors)
            {
                // The program explained itself (canonical errors); MSBuild's generic MSB6006 would only
                // repeat it.
                return false;
            }

            LogTaskError(ToolFailed, ModelFile,
                "modelgen exited with code {0} without reporting an error{1}. Run the build with -v:d to see its whole output.",
                ExitCode.ToString(CultureInfo.InvariantCulture),
                _lastUnexplainedErrorLine == null ? "" : ": " + _lastUnexplainedErrorLine);
            return false;
        }

        private void LogTaskError(string code, string? file, string message, params object?[] args)
        {
            Log.LogError(subcategory: null, errorCode: code, helpKeyword: null, file: file,
                lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0,
                message: message, messageArgs: args);
        }

        private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

        private static string? FindOnPath(string fileName)
        {
            string? path = Environment.GetEnvironmentVariable("PATH");
            if (string.IsNullOrEmpty(path))
            {
                return null;
            }

            foreach (string folder in path!.Split(Path.PathSeparator))
            {
                if (folder.Length == 0)
                {
                    continue;
                }

                try
                {
                    string candidate = Path.Combine(folder.Trim('"'), fileName);
                    if (File.Exists(candidate))
                    {
                        return candidate;
                    }
                }
                catch (ArgumentException)
                {
                    // A malformed PATH entry is not our problem; skip it.
                }
            }

            return null;
        }

        /// <summary>The compiler's own rule (ModelGen.Artifact's Identifiers): a keyword part only as @keyword, no format characters.</summary>
        internal static bool IsNamespace(string value) => ModelGen.Artifact.Identifiers.IsNamespace(value);

        internal static bool IsIdentifier(string value)
        {
            if (value.Length == 0 || value.Length > ModelGen.Artifact.Identifiers.MaxLength || Keywords.Contains(value))
            {
                return false;
            }

            for (int i = 0; i < value.Length; i++)
            {
                char c = value[i];
                bool letter = char.IsLetter(c) || c == '_';
                bool ok = i == 0
                    ? letter
                    : letter || char.IsDigit(c) || CharUnicodeInfo.GetUnicodeCategory(c) is
                        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or
                        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.Format;
                if (!ok)
                {
                    return false;
                }
            }

            return true;
        }

        // Reserved C# keywords (contextual keywords are valid identifiers).
        private static readonly HashSet<string> Keywords = new HashSet<string>(StringComparer.Ordinal)
        {
            "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class",
            "const", "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event",
            "explicit", "extern", "false", "finally", "fixed", "float", "for", "foreach", "goto", "if",
            "implicit", "in", "int", "interface", "internal", "is", "lock", "long", "namespace", "new", "null",
            "object", "operator", "out", "override", "params", "private", "protected", "public", "readonly",
            "ref", "return", "sbyte", "sealed", "short", "sizeof", "stackalloc", "static", "string", "struct",
            "switch", "this", "throw", "true", "try", "typeof", "uint", "ulong", "unchecked", "unsafe", "ushort",
            "using", "virtual", "void", "volatile", "while",
        };
    }
}
