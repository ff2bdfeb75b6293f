using System;
using System.Collections.Generic;
using System.Globalization;
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

    public void Line(string text = "")
    {
        if (text.StartsWith("//", System.StringComparison.Ordinal) && Column + text.Length > LongLine)
        {
            foreach (var part in Wrap(text, Width - Column)) Write(part);
            return;
        }
        Write(text);
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

    public void Open(string text)
    {
        Line(text);
        Line("{");
        _indent++;
    }

    /// <summary>A bare block, for locals that end with it.</summary>
    public void OpenBlock()
    {
        Line("{");
        _indent++;
    }

    public void Close(string suffix = "")
    {
        _indent--;
        Line("}" + suffix);
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
