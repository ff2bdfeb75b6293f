using System;
using System.Collections.Generic;
using System.IO;
using System.Xml;

namespace ModelGen.Tasks
{
    /// <summary>
    /// Where a <c>CompressedModel</c> item is written, so a diagnostic about its metadata points at that line of the project
    /// file (MSBuild gives a task only its own line, <c>LineNumberOfTaskNode</c>, which is in ModelGen's targets). The file
    /// is the item's <c>DefiningProjectFullPath</c> (a Directory.Build.props included); the line is found by reading that
    /// file for the element whose <c>Include</c> names the item. An item that comes from a wildcard, a property or a
    /// transform, or that two elements name, gets line 0: the file alone, and the message names the item.
    /// </summary>
    internal static class ItemLocation
    {
        public const string ItemType = "CompressedModel";

        /// <summary>The 1-based line and column of the element, or (0, 0).</summary>
        public static (int Line, int Column) Find(string? projectFile, string? itemSpec)
        {
            if (string.IsNullOrEmpty(projectFile) || string.IsNullOrEmpty(itemSpec) || !File.Exists(projectFile))
            {
                return (0, 0);
            }

            try
            {
                var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, IgnoreComments = true };
                var found = new List<(int, int)>();
                using (var reader = XmlReader.Create(projectFile!, settings))
                {
                    var info = (IXmlLineInfo)reader;
                    while (reader.Read())
                    {
                        if (reader.NodeType != XmlNodeType.Element || reader.LocalName != ItemType)
                        {
                            continue;
                        }

                        string? include = reader.GetAttribute("Include");
                        if (include == null)
                        {
                            continue;
                        }

                        foreach (string part in include.Split(';'))
                        {
                            if (SamePath(part.Trim(), itemSpec!))
                            {
                                found.Add((info.LineNumber, info.LinePosition));
                                break;
                            }
                        }
                    }
                }

                return found.Count == 1 ? found[0] : (0, 0);
            }
            catch (Exception e) when (e is XmlException || e is IOException || e is UnauthorizedAccessException)
            {
                return (0, 0); // the file alone is still a pointer
            }
        }

        private static bool SamePath(string a, string b) =>
            string.Equals(a.Replace('\\', '/'), b.Replace('\\', '/'), StringComparison.OrdinalIgnoreCase);
    }
}
