using System;
using System.Collections.Generic;
using System.Text;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// The kernel method of each node is named after the node, as a reader of a stack trace or a profile finds it
/// in the ONNX graph: the operator, then the node's name with every run of other characters made one '_'
/// (ONNX '/c1/Conv', a Conv, is <c>Conv_c1_Conv</c>), numbered where two would be the same. A name always holds
/// an '_' after the operator, so it never is a keyword nor a type the kernels name (Vector256, Unsafe…), nor one
/// of the helpers beside it, none of which holds one.
/// </summary>
internal static class KernelNames
{
    /// <summary>The method names of the model's kernels, by node index.</summary>
    public static IReadOnlyList<string> Of(ModelArtifact model)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var names = new string[model.Nodes.Count];
        for (int i = 0; i < names.Length; i++)
        {
            var node = model.Nodes[i];
            string op = Words(node.OnnxOp, "");
            if (op.Length == 0 || char.IsDigit(op[0])) op = "Node" + op;
            string name = Words(node.Name, "_");
            if (name.Length == 0) name = CodeWriter.N(i);
            string candidate = op + "_" + name;
            // C# takes names up to 512 characters; a reader wants far fewer.
            if (candidate.Length > Identifiers.MaxLength) candidate = candidate.Substring(0, Identifiers.MaxLength);
            names[i] = Identifiers.Unique(candidate, taken);
        }
        return names;
    }

    /// <summary>The ASCII letters and digits of <paramref name="text"/>, each run of anything else one <paramref name="separator"/> (none at the ends).</summary>
    static string Words(string text, string separator)
    {
        var sb = new StringBuilder();
        bool gap = false;
        foreach (char c in text)
        {
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            {
                if (gap && sb.Length > 0) sb.Append(separator);
                sb.Append(c);
                gap = false;
            }
            else gap = true;
        }
        return sb.ToString();
    }
}
