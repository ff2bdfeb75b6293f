using System.Globalization;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Integer index expressions for emitted code, written as a person would: a term that is zero or a factor that
/// is one is left out (no <c>+ 0</c>, <c>* 1</c>, <c>- 0</c>), literals are folded, and an operand is put in
/// parentheses only where precedence needs it. The compilers fold the same constants, so what runs is unchanged.
/// </summary>
internal static class Expr
{
    /// <summary><paramref name="a"/> + <paramref name="b"/>.</summary>
    public static string Plus(string a, string b)
    {
        if (IsZero(b)) return a;
        if (IsZero(a)) return b;
        if (TryInt(a, out long x) && TryInt(b, out long y) && Fits(x + y)) return N(x + y);
        if (TryInt(b, out long z) && z < 0) return Wrap(a, Additive) + " - " + N(-z);
        return Wrap(a, Additive) + " + " + Wrap(b, Additive);
    }

    public static string Plus(string a, long b) => Plus(a, N(b));

    /// <summary>The terms added left to right (zeros left out; "0" if nothing is left).</summary>
    public static string Sum(params string[] terms)
    {
        string s = "0";
        foreach (var t in terms) s = Plus(s, t);
        return s;
    }

    /// <summary><paramref name="a"/> − <paramref name="b"/>.</summary>
    public static string Minus(string a, string b)
    {
        if (IsZero(b)) return a;
        if (TryInt(a, out long x) && TryInt(b, out long y) && Fits(x - y)) return N(x - y);
        if (TryInt(b, out long z) && z < 0) return Wrap(a, Additive) + " + " + N(-z);
        return Wrap(a, Additive) + " - " + Wrap(b, Multiplicative);
    }

    public static string Minus(string a, long b) => Minus(a, N(b));

    /// <summary><paramref name="a"/> · <paramref name="b"/>.</summary>
    public static string Times(string a, string b)
    {
        if (IsZero(a) || IsZero(b)) return "0";
        if (IsOne(b)) return a;
        if (IsOne(a)) return b;
        if (TryInt(a, out long x) && TryInt(b, out long y) && Fits(x * y)) return N(x * y);
        return Wrap(a, Multiplicative) + " * " + Wrap(b, Atom);
    }

    public static string Times(string a, long b) => Times(a, N(b));

    // Precedence of an expression's loosest top-level operator: higher binds tighter.
    const int Lower = 0, Additive = 1, Multiplicative = 2, Atom = 3;

    /// <summary><paramref name="e"/>, in parentheses unless its loosest top-level operator binds at least as tightly as <paramref name="least"/>.</summary>
    static string Wrap(string e, int least) => Loosest(e) >= least ? e : "(" + e + ")";

    /// <summary>The precedence of the loosest binary operator outside parentheses and brackets (a binary operator stands between spaces).</summary>
    static int Loosest(string e)
    {
        int depth = 0, loosest = Atom;
        for (int i = 0; i < e.Length; i++)
        {
            char c = e[i];
            if (c is '(' or '[') depth++;
            else if (c is ')' or ']') depth--;
            else if (depth == 0 && c == ' ')
            {
                int end = e.IndexOf(' ', i + 1);
                if (end < 0) break;
                string token = e.Substring(i + 1, end - i - 1);
                if (token.Length > 0 && token.Trim("+-*/%<>=!&|^?:".ToCharArray()).Length == 0)
                {
                    int p = token is "*" or "/" or "%" ? Multiplicative : token is "+" or "-" ? Additive : Lower;
                    if (p < loosest) loosest = p;
                    i = end - 1;
                }
            }
        }
        return loosest;
    }

    static bool IsZero(string e) => e == "0";
    static bool IsOne(string e) => e == "1";

    static bool TryInt(string e, out long v) => long.TryParse(e, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v);

    /// <summary>Folded only within int: a constant C# would have refused (out of int) stays as the product it was.</summary>
    static bool Fits(long v) => v >= int.MinValue && v <= int.MaxValue;

    static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
}
