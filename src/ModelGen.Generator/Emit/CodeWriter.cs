using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace ModelGen.Generator.Emit;

/// <summary>An indenting text writer that always ends lines with '\n' (identical output on every OS).</summary>
internal sealed class CodeWriter
{
    readonly StringBuilder _sb = new StringBuilder();
    int _indent;
    /// <summary>Levels of indentation the text will get where it is copied to (a kernel written apart): counted in widths, not written.</summary>
    readonly int _margin;

    public CodeWriter(int margin = 0) => _margin = margin;

    /// <summary>The column the next line starts at, where the text ends up.</summary>
    int Column => (_margin + _indent) * 4;

    /// <summary>
    /// A comment or a call longer than this many columns is broken into lines of at most <see cref="Width"/> (the text
    /// as the emitters wrote it stays as it is below: a comment the source broke by hand reads as it did).
    /// </summary>
    public const int LongLine = 150, Width = 120;

    /// <summary>Helper source kept as C# text (a verbatim string in the emitter), one line at a time, at the current indent.</summary>
    public void Source(string text)
    {
        foreach (var line in text.Split('\n')) Line(line.TrimEnd('\r'));
    }

    public void Line(string text = "")
    {
        // Text copied in with indentation of its own (a helper's source) is left as written.
        if (Column + text.Length > LongLine && text.Length > 0 && text[0] is not ('#' or ' '))
        {
            var parts = text.StartsWith("//", System.StringComparison.Ordinal) ? Wrap(text, Width - Column) : Break(text, Column);
            foreach (var part in parts) Write(part);
            return;
        }
        Write(text);
    }

    /// <summary>
    /// A line of code too long to read, broken where C# takes any whitespace, each piece broken again while it is too
    /// long: statements one a line; a control statement's header above its body; after the <c>=</c> of a long target;
    /// else the outermost call's arguments one a line below it. Only whitespace changes: the compiled code is the same.
    /// A line with a comment, or that none of these shortens, stays as it is.
    /// </summary>
    static List<string> Break(string code, int column)
    {
        var whole = new List<string> { code };
        if (column + code.Length <= LongLine) return whole;
        var depth = Depths(code);
        if (depth is null) return whole;
        List<string> Indented(string piece) => Break(piece, column + 4).Select(l => "    " + l).ToList();

        var statements = SplitTopLevel(code, depth, "; ", keep: ";");
        if (statements.Count > 1) return statements.SelectMany(x => Break(x, column)).ToList();

        bool block = code.StartsWith("{", StringComparison.Ordinal) && code.EndsWith("}", StringComparison.Ordinal) && depth[0] == 0 && depth[code.Length - 1] == 0;
        int header = block ? 0 : ControlHeaderEnd(code, depth);
        if (block || (header > 0 && header < code.Length))
        {
            string body = code.Substring(header).TrimStart();
            var lines = header == 0 ? new List<string>() : Break(code.Substring(0, header).TrimEnd(), column);
            if (body.StartsWith("{", StringComparison.Ordinal) && body.EndsWith("}", StringComparison.Ordinal))
            {
                string inner = body.Substring(1, body.Length - 2).Trim();
                lines.Add("{");
                var innerDepth = Depths(inner);
                if (innerDepth is null) return whole;
                foreach (var statement in SplitTopLevel(inner, innerDepth, "; ", keep: ";")) lines.AddRange(Indented(statement));
                lines.Add("}");
            }
            else lines.AddRange(Indented(body));
            return lines;
        }

        int assign = code.IndexOf(" = ", StringComparison.Ordinal);
        while (assign >= 0 && depth[assign] != 0) assign = code.IndexOf(" = ", assign + 1, StringComparison.Ordinal);
        if (assign > 40)
            return new List<string> { code.Substring(0, assign) + " =" }.Concat(Indented(code.Substring(assign + 3))).ToList();

        for (int open = code.IndexOf('('); open > 0; open = code.IndexOf('(', open + 1))
        {
            if (depth[open] != 0 || !(char.IsLetterOrDigit(code[open - 1]) || code[open - 1] is '_' or '>')) continue;
            int close = open + 1;
            while (close < code.Length && !(code[close] == ')' && depth[close] == 0)) close++;
            if (close >= code.Length || close == open + 1) break;
            string inner = code.Substring(open + 1, close - open - 1);
            var innerDepth = Depths(inner);
            if (innerDepth is null) break;
            var arguments = SplitTopLevel(inner, innerDepth, ", ", keep: ",");
            // As many arguments to a line as fit in Width; one too long for a line alone is broken in turn.
            var lines = new List<string> { code.Substring(0, open + 1) };
            string pending = "";
            for (int i = 0; i < arguments.Count; i++)
            {
                string argument = i + 1 < arguments.Count ? arguments[i] : arguments[i] + code.Substring(close);
                if (pending.Length > 0 && column + 4 + pending.Length + 1 + argument.Length <= Width)
                {
                    pending += " " + argument;
                    continue;
                }
                if (pending.Length > 0) lines.AddRange(Indented(pending));
                pending = argument;
            }
            lines.AddRange(Indented(pending));
            return lines;
        }
        return BreakAtOperators(code, depth, column) ?? whole;
    }

    /// <summary>Binary operators from the loosest to the tightest, each level a list: a long expression breaks before those of the loosest it has.</summary>
    static readonly string[][] Operators =
    [
        [" ? ", " : "], [" || "], [" && "], [" | "], [" ^ "], [" & "], [" == ", " != "], [" < ", " > ", " <= ", " >= "],
        [" << ", " >> "], [" + ", " - "], [" * ", " / ", " % "],
    ];

    /// <summary>
    /// The expression broken before its loosest binary operators, at the least depth that has any (inside a call's
    /// parentheses when the line is one call), the operator starting each line after the first; null if it has none.
    /// </summary>
    static List<string>? BreakAtOperators(string code, int[] depth, int column)
    {
        int least = int.MaxValue;
        var found = new List<(int At, int Level, int Length)>();
        for (int level = 0; level < Operators.Length; level++)
            foreach (var op in Operators[level])
                for (int i = code.IndexOf(op, StringComparison.Ordinal); i > 0; i = code.IndexOf(op, i + 1, StringComparison.Ordinal))
                    if (depth[i] >= 0)
                    {
                        found.Add((i, level, op.Length));
                        least = Math.Min(least, depth[i]);
                    }
        var atLeast = found.Where(f => depth[f.At] == least).ToList();
        if (atLeast.Count == 0) return null;
        int loosest = atLeast.Min(f => f.Level);
        var cuts = atLeast.Where(f => f.Level == loosest).Select(f => f.At).OrderBy(i => i).ToList();
        var lines = new List<string>();
        int start = 0;
        foreach (int cut in cuts)
        {
            string piece = code.Substring(start, cut - start);
            lines.AddRange(start == 0 ? Break(piece, column) : Break(piece, column + 4).Select(l => "    " + l));
            start = cut + 1;
        }
        lines.AddRange(Break(code.Substring(start), column + 4).Select(l => "    " + l));
        return lines;
    }

    /// <summary>
    /// The nesting depth (parentheses, brackets, braces, generic angle brackets) at each character: -1 inside a string or
    /// character literal, -2 at a closing bracket of a line above (the last argument of a call broken before); null where
    /// the line holds a comment.
    /// </summary>
    static int[]? Depths(string code)
    {
        var depth = new int[code.Length];
        var angles = new Stack<int>();
        int d = 0;
        for (int i = 0; i < code.Length; i++)
        {
            char c = code[i];
            if (c is '"' or '\'')
            {
                // An interpolated or verbatim string can hold quotes and braces of its own: such a line stays as it is.
                if (c == '"' && i > 0 && code[i - 1] is '$' or '@') return null;
                int j = i + 1;
                while (j < code.Length && code[j] != c) j += code[j] == '\\' ? 2 : 1;
                // A weight's literal is data, not a line to read: such a line stays as it is.
                if (j >= code.Length || j - i > LongLine) return null;
                for (int k = i; k <= j; k++) depth[k] = -1;
                i = j;
                continue;
            }
            if (c == '/' && i + 1 < code.Length && code[i + 1] is '/' or '*') return null;
            // A generic's angle bracket follows a name with no space (As<sbyte, byte>); a comparison or shift has spaces.
            bool genericOpen = c == '<' && i > 0 && (char.IsLetterOrDigit(code[i - 1]) || code[i - 1] == '_') && i + 1 < code.Length && char.IsLetter(code[i + 1]);
            bool genericClose = c == '>' && angles.Count > 0 && angles.Peek() == d - 1;
            if (c is '(' or '[' or '{' || genericOpen)
            {
                if (genericOpen) angles.Push(d);
                depth[i] = d++;
            }
            else if (c is ')' or ']' or '}' || genericClose)
            {
                if (d == 0) { depth[i] = -2; continue; }
                if (genericClose) angles.Pop();
                depth[i] = --d;
            }
            else depth[i] = d;
        }
        // Brackets left open are those of a line below (an expression broken before an operator inside them).
        return depth;
    }

    /// <summary>The pieces of <paramref name="code"/> between top-level separators, each ending in <paramref name="keep"/>, the last as it was.</summary>
    static List<string> SplitTopLevel(string code, int[] depth, string separator, string keep)
    {
        var pieces = new List<string>();
        int start = 0;
        for (int i = code.IndexOf(separator, StringComparison.Ordinal); i >= 0; i = code.IndexOf(separator, i + 1, StringComparison.Ordinal))
        {
            if (depth[i] != 0) continue;
            pieces.Add(code.Substring(start, i - start) + keep);
            start = i + separator.Length;
        }
        pieces.Add(code.Substring(start));
        return pieces;
    }

    /// <summary>Where the header of an if, else, for, foreach or while statement ends (after its parenthesis), or 0.</summary>
    static int ControlHeaderEnd(string code, int[] depth)
    {
        if (code.StartsWith("else ", StringComparison.Ordinal)) return 4;
        foreach (var keyword in new[] { "if (", "for (", "foreach (", "while (" })
        {
            if (!code.StartsWith(keyword, StringComparison.Ordinal)) continue;
            for (int i = keyword.Length; i < code.Length; i++)
                if (code[i] == ')' && depth[i] == 0) return i + 1;
        }
        return 0;
    }

    void Write(string text)
    {
        // Preprocessor lines start at the margin, as people write them.
        if (text.Length > 0 && text[0] != '#') _sb.Append(' ', _indent * 4);
        _sb.Append(text);
        _sb.Append('\n');
    }

    /// <summary>
    /// A // or /// comment in lines of at most <paramref name="width"/> characters where its words allow, each with the
    /// comment's prefix; never broken inside an XML tag (a cref's parameter list has spaces).
    /// </summary>
    static IEnumerable<string> Wrap(string comment, int width)
    {
        string prefix = comment.StartsWith("/// ", System.StringComparison.Ordinal) ? "/// " : "// ";
        string rest = comment.Substring(Math.Min(prefix.Length, comment.Length));
        var line = new StringBuilder(prefix);
        int depth = 0, wordStart = 0;
        for (int i = 0; i <= rest.Length; i++)
        {
            char c = i < rest.Length ? rest[i] : ' ';
            if (c == '<') depth++;
            else if (c == '>' && depth > 0) depth--;
            if (c != ' ' || depth > 0) continue;
            string word = rest.Substring(wordStart, i - wordStart);
            wordStart = i + 1;
            if (word.Length == 0) continue;
            if (line.Length > prefix.Length && line.Length + 1 + word.Length > width)
            {
                yield return line.ToString();
                line.Clear().Append(prefix);
            }
            if (line.Length > prefix.Length) line.Append(' ');
            line.Append(word);
        }
        yield return line.ToString();
    }

    /// <summary>
    /// <paramref name="head"/>, the items separated by commas, and <paramref name="tail"/> on one line where it fits in
    /// <see cref="Width"/>; else the items on lines of their own below the head, indented, as many to a line as fit.
    /// </summary>
    public void Call(string head, IReadOnlyList<string> items, string tail)
    {
        string single = head + string.Join(", ", items) + tail;
        if (Column + single.Length <= LongLine)
        {
            Write(single);
            return;
        }
        Write(head);
        _indent++;
        var line = new StringBuilder();
        for (int i = 0; i < items.Count; i++)
        {
            string item = items[i] + (i + 1 < items.Count ? "," : tail);
            if (line.Length > 0 && Column + line.Length + 1 + item.Length > Width)
            {
                Write(line.ToString());
                line.Clear();
            }
            if (line.Length > 0) line.Append(' ');
            line.Append(item);
        }
        Write(line.ToString());
        _indent--;
    }

    // Braces are opened and closed only through a Scope (Block, BlockIf, For, Nest), so every one the emitters open is
    // closed where its using ends: no count of closing calls to keep right.
    void Open(string text)
    {
        Line(text);
        Line("{");
        _indent++;
    }

    void OpenBlock()
    {
        Line("{");
        _indent++;
    }

    void Close(string suffix)
    {
        _indent--;
        Line("}" + suffix);
    }

    /// <summary>
    /// <c>{head} = {condition} ? {then} : {otherwise};</c> on one line where it fits in <see cref="LongLine"/>, else with
    /// the two arms on lines of their own below the head.
    /// </summary>
    public void Ternary(string head, string condition, string then, string otherwise)
    {
        string single = $"{head} = {condition} ? {then} : {otherwise};";
        if (Column + single.Length <= LongLine)
        {
            Write(single);
            return;
        }
        Write($"{head} = {condition}");
        Write($"    ? {then}");
        Write($"    : {otherwise};");
    }

    /// <summary>
    /// An int index for the lines below: <paramref name="expression"/> itself where it is a name or a number, else a local
    /// <paramref name="name"/> declared to it (written once, read by name).
    /// </summary>
    public string IntLocal(string name, string expression)
    {
        if (expression.IndexOf(' ') < 0) return expression;
        Line($"int {name} = {expression};");
        return name;
    }

    /// <summary>
    /// Writes <paramref name="header"/> and an opening brace, and returns the scope whose Dispose writes the closing
    /// brace (and <paramref name="suffix"/>, say ";"): <c>using (w.Block("for (…)")) { … }</c> closes what it opens.
    /// </summary>
    public Scope Block(string header, string suffix = "")
    {
        Open(header);
        return new Scope(this, suffix, true);
    }

    /// <summary>As <see cref="Block(string, string)"/> where <paramref name="open"/>; else nothing is written, and the body stands alone.</summary>
    public Scope BlockIf(bool open, string header) => open ? Block(header) : new Scope(this, "", false);

    /// <summary>A bare block, for locals that end with it: <c>using (w.Block()) { … }</c>.</summary>
    public Scope Block()
    {
        OpenBlock();
        return new Scope(this, "", true);
    }

    /// <summary>
    /// A counted loop <c>for (int {index} = 0; {index} &lt; {count}; {index}++)</c>; one of a single trip is not
    /// written at all: its body stands alone and <paramref name="at"/> is "0", the index's only value, for the
    /// body's expressions (through <see cref="Expr"/>, which then drop the terms it zeroes). The JIT removes such a
    /// loop itself; the reader need not.
    /// </summary>
    public Scope For(string index, long count, out string at)
    {
        if (count == 1)
        {
            at = "0";
            return new Scope(this, "", false);
        }
        at = index;
        return Block($"for (int {index} = 0; {index} < {N(count)}; {index}++)");
    }

    /// <summary>
    /// Blocks opened one inside another by a loop of the emitter (a loop per axis of a tensor), all closed on
    /// Dispose, innermost first: <c>using (var axes = w.Nest()) { for (…) axes.For(…); … }</c>.
    /// </summary>
    public Nested Nest() => new Nested(this);

    /// <summary>See <see cref="Nest"/>.</summary>
    public sealed class Nested : System.IDisposable
    {
        readonly CodeWriter _w;
        readonly Stack<Scope> _open = new Stack<Scope>();

        internal Nested(CodeWriter w) => _w = w;

        public void Block(string header) => _open.Push(_w.Block(header));

        /// <summary>As <see cref="CodeWriter.For"/>, inside the blocks opened before.</summary>
        public void For(string index, long count, out string at) => _open.Push(_w.For(index, count, out at));

        public void Dispose()
        {
            while (_open.Count > 0) _open.Pop().Dispose();
        }
    }

    /// <summary>What <see cref="Block(string, string)"/> opened, closed on Dispose.</summary>
    public readonly struct Scope : System.IDisposable
    {
        readonly CodeWriter _w;
        readonly string _suffix;
        readonly bool _opened;

        internal Scope(CodeWriter w, string suffix, bool opened)
        {
            _w = w;
            _suffix = suffix;
            _opened = opened;
        }

        public void Dispose()
        {
            if (_opened) _w.Close(_suffix);
        }
    }

    public void Indent() => _indent++;
    public void Outdent() => _indent--;

    public override string ToString() => _sb.ToString();

    public static string N(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Text from the model made safe for a // comment: line breaks, control and format characters (bidi
    /// overrides such as U+202E, zero-width characters) and lone surrogates become \uXXXX text, so no
    /// model can end the comment or make an editor show code other than what compiles.
    /// </summary>
    public static string Comment(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsSurrogatePair(s, i)) { sb.Append(c).Append(s[++i]); continue; }
            var category = CharUnicodeInfo.GetUnicodeCategory(c);
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate)
                sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Text from the model made safe for an XML doc comment: a comment, with XML escaped.</summary>
    public static string Xml(string s) => Comment(s).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    public static string Shape(int[] shape) => "[" + string.Join(", ", shape) + "]";
}
