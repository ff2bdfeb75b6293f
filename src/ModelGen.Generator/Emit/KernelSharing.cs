using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Issue 19: one method for the int8 kernels of one structure. Each node's kernel is written specialised (every
/// shape a literal); nodes whose methods differ only in their numeric literals (MobileNetV2's pointwise convolutions
/// with other channel counts, its depthwise convolutions with other planes) are then written once, as a method taking
/// the literals that differ as arguments, and each node's method calls it with its own. Literals equal across the
/// group stay literals (the compilers still fold them); comments equal across the group stay, the others (which
/// name one node's numbers) go, and each node keeps its own comment above its call. A kernel's instructions depend on
/// its structure (which paths, which unrolling), so sharing costs the folding of the numbers passed, not the SIMD.
/// Applied when <c>Simd</c> names one level (a size-first choice: docs/implementation-notes.md, Code size).
/// </summary>
internal static class KernelSharing
{
    /// <summary>The int8 kernels whose methods may be shared: their text is checked to be one method.</summary>
    static readonly HashSet<KernelKind> Shareable = [KernelKind.ConvInt8, KernelKind.DepthwiseInt8, KernelKind.DenseInt8, KernelKind.AddU8, KernelKind.MaxPoolU8, KernelKind.GlobalAveragePoolU8];

    public static bool Applies(ModelArtifact m) => m.Simd != SimdLevel.Auto;

    const string Attribute = "[MethodImpl(MethodImplOptions.AggressiveOptimization)]";

    /// <summary>A kernel split into its parts: the lines before the method, the parameter list, the body's tokens.</summary>
    sealed class Parsed
    {
        public int Index;
        public string Method = "";
        public string Kernel = "";
        public string Text = "";
        public List<string> Preamble = new();
        public string Signature = "";
        public List<Token> Body = new();
        public string Key = "";
        /// <summary>The signature of the shared method: <see cref="Signature"/> with the spans read as bytes declared so.</summary>
        public string Shared = "";
        public HashSet<string> Bytes = new(StringComparer.Ordinal);
    }

    /// <summary>A piece of a body: code text, a comment, or a numeric literal (Type: int, long, uint, float, double).</summary>
    readonly struct Token(string text, bool comment, string? type)
    {
        public string Text { get; } = text;
        public bool Comment { get; } = comment;
        public string? Type { get; } = type;
    }

    /// <summary>Writes the kernels (text per node, as KernelEmitter wrote them), sharing where it applies.</summary>
    public static void Write(CodeWriter w, ModelArtifact m, IReadOnlyList<string> kernels)
    {
        var parsed = new Parsed?[kernels.Count];
        var kernelNames = KernelNames.Of(m);
        if (Applies(m))
            for (int i = 0; i < kernels.Count; i++)
                if (Shareable.Contains(m.Nodes[i].Kernel)) parsed[i] = Parse(i, kernelNames[i], m.Nodes[i].Kernel.ToString(), kernels[i]);
        var groups = parsed.Where(p => p is not null).GroupBy(p => p!.Key, StringComparer.Ordinal)
            .Where(g => g.Count() > 1).Select(g => g.Select(p => p!).ToList()).ToList();
        var shared = new Dictionary<int, (string Name, List<string> Arguments)>();
        var methods = new List<string>();
        foreach (var group in groups)
        {
            string name = "Shared" + CodeWriter.N(methods.Count) + "_" + group[0].Kernel;
            var (method, arguments) = Share(name, group);
            methods.Add(method);
            for (int j = 0; j < group.Count; j++) shared[group[j].Index] = (name, arguments[j]);
        }
        for (int i = 0; i < kernels.Count; i++)
        {
            if (i > 0) w.Line();
            if (!shared.TryGetValue(i, out var call))
            {
                foreach (var line in Lines(kernels[i])) w.Line(line);
                continue;
            }
            var p = parsed[i]!;
            foreach (var line in p.Preamble) w.Line(line);
            w.Line($"// The structure {call.Name} computes, with this node's numbers.");
            string names = string.Join(", ", Parameters(p.Signature).Select(s => s.Substring(s.LastIndexOf(' ') + 1))
                .Select(n => p.Bytes.Contains(n) ? "MemoryMarshal.AsBytes(" + n + ")" : n));
            w.Line($"public static void {kernelNames[i]}({p.Signature}) => {call.Name}({names}{string.Concat(call.Arguments.Select(a => ", " + a))});");
        }
        foreach (var method in methods)
        {
            w.Line();
            foreach (var line in Lines(method)) w.Line(line);
        }
    }

    static IEnumerable<string> Lines(string text) => text.TrimEnd('\n').Split('\n');

    /// <summary>The kernel's parts, or null when its text is not the single method this class expects.</summary>
    static Parsed? Parse(int index, string method, string kernel, string text)
    {
        var lines = text.TrimEnd('\n').Split('\n');
        int attribute = Array.IndexOf(lines, Attribute);
        if (attribute < 0 || attribute + 2 >= lines.Length || lines.Count(l => l.StartsWith("public static ", StringComparison.Ordinal)) != 1) return null;
        // The header may be broken over lines (CodeWriter breaks a long parameter list): up to the body's brace.
        int brace = Array.IndexOf(lines, "{", attribute + 1);
        if (brace < 0) return null;
        string header = lines.Skip(attribute + 1).Take(brace - attribute - 1).Select(l => l.Trim())
            .Aggregate("", (joined, piece) => joined.Length == 0 || joined.EndsWith("(", StringComparison.Ordinal) ? joined + piece : joined + " " + piece);
        string prefix = $"public static void {method}(";
        if (!header.StartsWith(prefix, StringComparison.Ordinal) || !header.EndsWith(")", StringComparison.Ordinal) || lines[lines.Length - 1] != "}") return null;
        if (lines.Take(attribute).Any(l => !l.StartsWith("//", StringComparison.Ordinal))) return null;
        var body = Tokenize(string.Join("\n", lines.Skip(brace)) + "\n");
        if (body is null) return null;
        var p = new Parsed
        {
            Index = index, Method = method, Kernel = kernel, Text = text, Preamble = lines.Take(attribute).ToList(),
            Signature = header.Substring(prefix.Length, header.Length - prefix.Length - 1), Body = body,
        };
        // A span the body reads only as bytes (MemoryMarshal.AsBytes(name)) is passed as bytes: nodes storing it
        // as int16 or int32 (ConvInt8Kernel.Untyped) then share the method.
        string code = string.Concat(body.Where(t => !t.Comment).Select(t => t.Text));
        var declarations = Parameters(p.Signature);
        for (int j = 0; j < declarations.Count; j++)
        {
            string name = declarations[j].Substring(declarations[j].LastIndexOf(' ') + 1);
            int uses = Regex.Matches(code, @"\b" + Regex.Escape(name) + @"\b").Count;
            if (declarations[j].StartsWith("ReadOnlySpan<", StringComparison.Ordinal) && uses > 0
                && uses == Regex.Matches(code, @"MemoryMarshal\.AsBytes\(" + Regex.Escape(name) + @"\)").Count)
            {
                declarations[j] = "ReadOnlySpan<byte> " + name;
                p.Bytes.Add(name);
            }
        }
        p.Shared = string.Join(", ", declarations);
        var key = new StringBuilder(kernel).Append('\u0001').Append(p.Shared).Append('\u0001');
        foreach (var t in body)
            if (t.Type is not null) key.Append('\u0002').Append(t.Type).Append('\u0002');
            // Whitespace aside: a line broken at another place (a longer literal) is the same code.
            else if (!t.Comment) key.Append(Regex.Replace(t.Text, @"\s+", " "));
        p.Key = key.ToString();
        return p;
    }

    /// <summary>The shared method and, per member, the arguments its call passes.</summary>
    static (string Method, List<List<string>> Arguments) Share(string name, List<Parsed> group)
    {
        var first = group[0];
        var literals = group.Select(p => p.Body.Where(t => t.Type is not null).ToList()).ToList();
        var comments = group.Select(p => p.Body.Where(t => t.Comment).Select(t => t.Text).ToList()).ToList();
        bool keepComments = comments.All(c => c.Count == comments[0].Count);
        // Positions whose literal differs across the group become parameters; positions with the same values share one.
        var parameterOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var parameters = new List<(string Type, int Position)>();
        var replacement = new string?[literals[0].Count];
        for (int i = 0; i < literals[0].Count; i++)
        {
            if (literals.All(l => l[i].Text == literals[0][i].Text)) continue;
            string values = literals[0][i].Type + ":" + string.Join("|", literals.Select(l => l[i].Text));
            if (!parameterOf.TryGetValue(values, out int parameter))
            {
                parameter = parameters.Count;
                parameterOf[values] = parameter;
                parameters.Add((literals[0][i].Type!, i));
            }
            replacement[i] = "k_" + CodeWriter.N(parameter);
        }
        var body = new StringBuilder();
        int literal = 0, comment = 0;
        foreach (var t in first.Body)
        {
            if (t.Type is not null) { body.Append(replacement[literal] ?? t.Text); literal++; }
            else if (t.Comment)
            {
                if (keepComments && comments.All(c => c[comment] == t.Text)) body.Append(t.Text);
                comment++;
            }
            else body.Append(t.Text);
        }
        // Lines left empty or blank by a dropped comment go.
        var kept = body.ToString().Split('\n').Where(l => l.Trim().Length > 0);
        var method = new StringBuilder();
        method.Append($"// {first.Kernel} for {CodeWriter.N(group.Count)} nodes ({string.Join(", ", group.Select(p => p.Method))}): their kernels differ only in the numbers k_0..k_{CodeWriter.N(Math.Max(parameters.Count - 1, 0))}, which each node passes.\n");
        method.Append(Attribute).Append('\n');
        method.Append($"static void {name}({first.Shared}{string.Concat(parameters.Select((p, i) => $", {p.Type} k_{CodeWriter.N(i)}"))})\n");
        foreach (var line in kept) method.Append(line).Append('\n');
        var arguments = literals.Select(l => parameters.Select(p => l[p.Position].Text).ToList()).ToList();
        return (method.ToString(), arguments);
    }

    /// <summary>The parameter declarations of a signature ("ReadOnlySpan&lt;float&gt; x", …).</summary>
    static List<string> Parameters(string signature)
    {
        var result = new List<string>();
        int depth = 0, start = 0;
        for (int i = 0; i < signature.Length; i++)
        {
            char c = signature[i];
            if (c == '<') depth++;
            else if (c == '>') depth--;
            else if (c == ',' && depth == 0) { result.Add(signature.Substring(start, i - start).Trim()); start = i + 1; }
        }
        if (signature.Trim().Length > 0) result.Add(signature.Substring(start).Trim());
        return result;
    }

    /// <summary>
    /// C# text as code, comments and numeric literals; null for what this reader does not handle (verbatim or
    /// interpolated strings, block comments), so such a kernel is never shared.
    /// </summary>
    static List<Token>? Tokenize(string s)
    {
        var tokens = new List<Token>();
        var code = new StringBuilder();
        void Flush() { if (code.Length > 0) { tokens.Add(new Token(code.ToString(), false, null)); code.Clear(); } }
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '/' && i + 1 < s.Length && s[i + 1] == '/')
            {
                int end = s.IndexOf('\n', i);
                Flush();
                tokens.Add(new Token(s.Substring(i, end - i), true, null));
                i = end;
            }
            else if (c == '/' && i + 1 < s.Length && s[i + 1] == '*') return null;
            else if (c == '@' || c == '$') return null;
            else if (c == '"' || c == '\'')
            {
                int j = i + 1;
                while (j < s.Length && s[j] != c) j += s[j] == '\\' ? 2 : 1;
                if (j >= s.Length) return null;
                code.Append(s, i, j + 1 - i);
                i = j + 1;
            }
            else if (char.IsLetter(c) || c == '_')
            {
                int j = i;
                while (j < s.Length && (char.IsLetterOrDigit(s[j]) || s[j] == '_')) j++;
                code.Append(s, i, j - i);
                i = j;
            }
            else if (char.IsDigit(c) || (c == '.' && i + 1 < s.Length && char.IsDigit(s[i + 1])))
            {
                int j = i;
                if (c == '0' && i + 1 < s.Length && (s[i + 1] == 'x' || s[i + 1] == 'X'))
                {
                    j = i + 2;
                    while (j < s.Length && Uri.IsHexDigit(s[j])) j++;
                }
                else
                {
                    while (j < s.Length && (char.IsDigit(s[j]) || s[j] == '.' && j + 1 < s.Length && char.IsDigit(s[j + 1]))) j++;
                    if (j < s.Length && (s[j] == 'e' || s[j] == 'E'))
                    {
                        j++;
                        if (j < s.Length && (s[j] == '+' || s[j] == '-')) j++;
                        while (j < s.Length && char.IsDigit(s[j])) j++;
                    }
                }
                int digits = j;
                while (j < s.Length && char.IsLetter(s[j])) j++;
                string number = s.Substring(i, digits - i), suffix = s.Substring(digits, j - digits).ToLowerInvariant();
                bool real = number.IndexOfAny(new[] { '.', 'e', 'E' }) >= 0 && !number.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
                string? type = suffix switch
                {
                    "f" => "float",
                    "d" => "double",
                    "" when real => "double",
                    "" when number.StartsWith("0x", StringComparison.OrdinalIgnoreCase) => long.TryParse(number.Substring(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long h) && h <= int.MaxValue ? "int" : null,
                    "" => long.TryParse(number, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v <= int.MaxValue ? "int" : null,
                    "l" => "long",
                    "u" => "uint",
                    "ul" or "lu" => "ulong",
                    _ => null,
                };
                if (type is null) return null;
                Flush();
                tokens.Add(new Token(s.Substring(i, j - i), false, type));
                i = j;
            }
            else { code.Append(c); i++; }
        }
        Flush();
        return tokens;
    }
}
