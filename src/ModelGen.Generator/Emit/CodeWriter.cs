using System.Globalization;
using System.Text;

namespace ModelGen.Generator.Emit;

/// <summary>An indenting text writer that always ends lines with '\n' (identical output on every OS).</summary>
internal sealed class CodeWriter
{
    readonly StringBuilder _sb = new StringBuilder();
    int _indent;

    public void Line(string text = "")
    {
        // Preprocessor lines start at the margin, as people write them.
        if (text.Length > 0 && text[0] != '#') _sb.Append(' ', _indent * 4);
        _sb.Append(text);
        _sb.Append('\n');
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
