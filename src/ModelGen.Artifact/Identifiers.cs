using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace ModelGen.Artifact;

/// <summary>
/// Turns untrusted names (ONNX value names, file names) into C# identifiers. The result is always
/// a valid identifier: letters, digits and '_' only, never starting with a digit, never a keyword.
/// </summary>
public static class Identifiers
{
    /// <summary>Keywords C# never takes as a name without '@'.</summary>
    static readonly HashSet<string> Reserved = new HashSet<string>(System.StringComparer.Ordinal)
    {
        "abstract","as","base","bool","break","byte","case","catch","char","checked","class","const","continue",
        "decimal","default","delegate","do","double","else","enum","event","explicit","extern","false","finally",
        "fixed","float","for","foreach","goto","if","implicit","in","int","interface","internal","is","lock","long",
        "namespace","new","null","object","operator","out","override","params","private","protected","public",
        "readonly","ref","return","sbyte","sealed","short","sizeof","stackalloc","static","string","struct","switch",
        "this","throw","true","try","typeof","uint","ulong","unchecked","unsafe","ushort","using","virtual","void",
        "volatile","while",
    };

    // Contextual keywords that break code in some positions: avoided everywhere in derived names for simplicity.
    static readonly HashSet<string> Keywords = new HashSet<string>(Reserved, System.StringComparer.Ordinal)
    {
        "var","dynamic","value","nameof","async","await","record","file","scoped","required","global","partial","field",
    };

    /// <summary>PascalCase identifier (class names, members), e.g. "lenet-5.onnx" → "Lenet5Onnx".</summary>
    public static string Pascal(string name, string fallback = "Model")
    {
        var sb = new StringBuilder();
        bool upperNext = true;
        foreach (char c in name)
        {
            if (IsAsciiLetterOrDigit(c))
            {
                sb.Append(upperNext ? char.ToUpperInvariant(c) : c);
                upperNext = false;
            }
            else upperNext = true;
        }
        string s = sb.Length == 0 ? fallback : sb.ToString();
        if (char.IsDigit(s[0])) s = "_" + s;
        // C# refuses names over 512 characters (CS7013); a hash of the whole name keeps long names apart.
        if (s.Length > MaxLength) s = s.Substring(0, MaxLength - 9) + "_" + Hash(name);
        return Keywords.Contains(s) ? "_" + s : s;
    }

    /// <summary>Longest identifier derived from a name.</summary>
    public const int MaxLength = 100;

    /// <summary>FNV-1a of the name, 8 hex digits: the same on every machine and run.</summary>
    static string Hash(string name)
    {
        uint h = 2166136261;
        foreach (char c in name) h = (h ^ c) * 16777619;
        return h.ToString("x8", CultureInfo.InvariantCulture);
    }

    /// <summary>camelCase identifier (parameters), e.g. "input.1" → "input1", "class" → "class_".</summary>
    public static string Camel(string name, string fallback = "value")
    {
        string p = Pascal(name, fallback);
        if (p[0] == '_') return Keywords.Contains(p.Substring(1).ToLowerInvariant()) ? p.Substring(1).ToLowerInvariant() + "_" : "_" + p.Substring(1);
        string c = char.ToLowerInvariant(p[0]) + p.Substring(1);
        return Keywords.Contains(c) ? c + "_" : c;
    }

    /// <summary>
    /// Whether <paramref name="name"/> is a dotted namespace of C# identifiers (letters of any script, as
    /// the MSBuild task takes a project's RootNamespace; no format characters such as bidi controls). A
    /// reserved keyword is a part only written with '@' (My.@class), and so is global (global::). The
    /// user's code refers to the namespace, so it is refused, never rewritten.
    /// </summary>
    public static bool IsNamespace(string name)
    {
        foreach (string part in name.Split('.'))
        {
            string p = part.StartsWith("@", System.StringComparison.Ordinal) ? part.Substring(1) : part;
            if (p.Length == 0 || !(char.IsLetter(p[0]) || p[0] == '_') || (p == part && (Reserved.Contains(p) || p == "global"))) return false;
            foreach (char c in p)
                if (!(char.IsLetterOrDigit(c) || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.ConnectorPunctuation
                    or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark)) return false;
        }
        return true;
    }

    /// <summary>Makes <paramref name="candidate"/> unique within <paramref name="taken"/> by numbering it.</summary>
    public static string Unique(string candidate, ISet<string> taken)
    {
        string name = candidate;
        for (int i = 2; !taken.Add(name); i++) name = candidate + i.ToString(CultureInfo.InvariantCulture);
        return name;
    }

    public static bool IsValid(string s)
    {
        if (s.Length == 0 || char.IsDigit(s[0]) || Keywords.Contains(s)) return false;
        foreach (char c in s) if (!(IsAsciiLetterOrDigit(c) || c == '_')) return false;
        return true;
    }

    static bool IsAsciiLetterOrDigit(char c) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
