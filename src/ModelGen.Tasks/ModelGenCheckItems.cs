using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace ModelGen.Tasks
{
    /// <summary>
    /// Warns (MG0111) about metadata on a <c>CompressedModel</c> item that ModelGen does not know, naming
    /// the closest known name: <c>Compresion="int8"</c> would otherwise build float32 without a word. Runs
    /// on every build, before any model is compiled, and never fails it.
    /// </summary>
    public sealed class ModelGenCheckItems : Task
    {
        internal const string UnknownMetadata = "MG0111";

        /// <summary>The metadata ModelGen reads (docs/msbuild.md lists each one).</summary>
        internal static readonly string[] Known =
        {
            "ClassName", "Namespace", "BatchSize", "Simd", "Compression", "Calibration", "Labels", "AccuracyBudget", "CalibrationScale", "InputShape", "Measure", "AdditionalInputs",
            "Pruning", "PruningKind", "LowRank", "WeightSharing", "WeightSharingTies", "FineTune", "TrainingData", "TrainingLabels", "Epochs", "LearningRate", "Seed", "TrainingTimeLimit", "TrainingAugmentation",
            "Student", "StudentInit", "DistillationTemperature", "DistillationLabelWeight",
        };

        /// <summary>Metadata that IDEs, NuGet and the SDK put on any item: never a misspelling of ours.</summary>
        private static readonly HashSet<string> Common = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "Link", "Visible", "DependentUpon", "SubType", "Generator", "LastGenOutput", "CustomToolNamespace", "DesignTime",
            "AutoGen", "CopyToOutputDirectory", "CopyToPublishDirectory", "Pack", "PackagePath", "PackageCopyToOutput",
            "ExcludeFromSingleFile", "TargetPath", "IsImplicitlyDefined", "DefiningProjectFullPath", "DefiningProjectDirectory",
            "DefiningProjectName", "DefiningProjectExtension", "OriginalItemSpec", "MSBuildSourceProjectFile", "MSBuildSourceTargetName",
        };

        /// <summary>The <c>CompressedModel</c> items.</summary>
        [Required]
        public ITaskItem[] Items { get; set; } = Array.Empty<ITaskItem>();

        /// <summary>The project file, where the warnings point when an item does not say which file defines it.</summary>
        public string? ProjectFile { get; set; }

        /// <inheritdoc />
        public override bool Execute()
        {
            foreach (var item in Items)
            {
                // The warning points at the item's own element: the file that defines it, and its line when that file names it once.
                string? file = ItemFile(item, ProjectFile ?? BuildEngine?.ProjectFileOfTaskNode);
                var (line, column) = ItemLocation.Find(file, item.ItemSpec);
                foreach (string name in item.MetadataNames.Cast<string>().Where(IsUnknown).OrderBy(n => n, StringComparer.Ordinal))
                {
                    string? closest = Closest(name);
                    Log.LogWarning(null, UnknownMetadata, null, file, line, column, 0, 0,
                        "CompressedModel '{0}' has metadata '{1}', which ModelGen does not read{2}. The metadata ModelGen reads: {3}.",
                        item.ItemSpec, name, closest is null ? "" : $"; did you mean '{closest}'?", string.Join(", ", Known));
                }
            }
            return true;
        }

        /// <summary>The file whose element defines the item (a Directory.Build.props, an imported file), else the project.</summary>
        internal static string? ItemFile(ITaskItem item, string? project)
        {
            string defining = item.GetMetadata("DefiningProjectFullPath");
            return string.IsNullOrEmpty(defining) ? project : defining;
        }

        /// <summary>Neither ours, nor MSBuild's well-known metadata (FullPath, Filename…), nor common IDE metadata.</summary>
        internal static bool IsUnknown(string name) =>
            !Known.Contains(name, StringComparer.OrdinalIgnoreCase) // MSBuild's metadata names ignore case
            && !FileUtilitiesWellKnown.Contains(name)
            && !Common.Contains(name)
            && !name.StartsWith("_", StringComparison.Ordinal);

        private static readonly HashSet<string> FileUtilitiesWellKnown = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "FullPath", "RootDir", "Filename", "Extension", "RelativeDir", "Directory", "RecursiveDir", "Identity",
            "ModifiedTime", "CreatedTime", "AccessedTime",
        };

        /// <summary>The known name at the smallest edit distance (case ignored), if it is close: at most a third of its length.</summary>
        internal static string? Closest(string name)
        {
            string? best = null;
            int bestDistance = int.MaxValue;
            foreach (string known in Known)
            {
                int d = Distance(name.ToLowerInvariant(), known.ToLowerInvariant());
                if (d < bestDistance) { best = known; bestDistance = d; }
            }
            return best != null && bestDistance <= Math.Max(2, best.Length / 3) ? best : null;
        }

        /// <summary>Levenshtein distance, two rows.</summary>
        private static int Distance(string a, string b)
        {
            var previous = new int[b.Length + 1];
            var current = new int[b.Length + 1];
            for (int j = 0; j <= b.Length; j++) previous[j] = j;
            for (int i = 1; i <= a.Length; i++)
            {
                current[0] = i;
                for (int j = 1; j <= b.Length; j++)
                    current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                (previous, current) = (current, previous);
            }
            return previous[b.Length];
        }
    }
}
