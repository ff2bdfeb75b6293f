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

    /// <summary>Text from the model made safe for a // comment: no line breaks or control characters survive.</summary>
    public static string Comment(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
            sb.Append(c < 0x20 || c == 0x7F || c == '\u0085' || c == '\u2028' || c == '\u2029' ? '?' : c);
        return sb.ToString();
    }

    /// <summary>Text from the model made safe for an XML doc comment: a comment, with XML escaped.</summary>
    public static string Xml(string s) => Comment(s).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    public static string Shape(int[] shape) => "[" + string.Join(", ", shape) + "]";
}
