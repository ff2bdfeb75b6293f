using System.Globalization;

namespace ModelGen.Compiler.Import;

/// <summary>One entry of <c>InputShape</c> (<c>--input-shape</c>): an input's whole shape; Name is null for the bare form.</summary>
public sealed record InputShapeSpec(string? Name, int[] Shape, string Text);

/// <summary>
/// <c>InputShape="audio:1x16000;mask:1x50"</c> (CLI <c>--input-shape</c>): the whole shape of each input named, which fixes
/// its symbolic dimensions (the sample count of an audio front end, a sequence length). A bare <c>1x16000</c> is the
/// shape of the model's only input. Each size is a whole number from 1 to 2^28; syntax errors are MG0007, shapes that do not
/// fit the model MG1008.
/// </summary>
public static class InputShapes
{
    public const string Usage = "InputShape (--input-shape) is 'name:dims' with the dims separated by 'x', several separated by ';' (audio:1x16000;mask:1x50), or bare dims ('1x16000') for a model with one input";

    public static IReadOnlyList<InputShapeSpec> Parse(string? spec, string modelPath)
    {
        var result = new List<InputShapeSpec>();
        if (string.IsNullOrWhiteSpace(spec)) return result;
        foreach (string raw in spec.Split(';'))
        {
            string part = raw.Trim();
            if (part.Length == 0) continue; // a trailing ';'
            // The last ':' separates the name: TensorFlow's names carry one ('input:0:1x16000').
            int colon = part.LastIndexOf(':');
            string? name = colon < 0 ? null : part[..colon].Trim();
            string dims = colon < 0 ? part : part[(colon + 1)..].Trim();
            if (name is { Length: 0 })
                throw Bad(modelPath, $"'{part}' has no input name before ':'");
            if (dims.Length == 0)
                throw Bad(modelPath, $"'{part}' gives no dimensions after ':'");
            var shape = new List<int>();
            foreach (string d in dims.Split('x', 'X'))
            {
                string t = d.Trim();
                if (t.Length == 0 || !t.All(char.IsAsciiDigit))
                    throw Bad(modelPath, $"'{part}': '{t}' is not a size; each dimension is a whole number from 1 to {OnnxImporter.MaxElements}");
                if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long size) || size < 1 || size > OnnxImporter.MaxElements)
                    throw Bad(modelPath, $"'{part}': size {t} is out of range; each dimension is a whole number from 1 to {OnnxImporter.MaxElements}");
                shape.Add((int)size);
            }
            if (result.Any(r => r.Name == name))
                throw Bad(modelPath, name is null ? $"'{part}': only one bare shape may be given" : $"input '{name}' is given twice");
            result.Add(new InputShapeSpec(name, [.. shape], part));
        }
        if (result.Count > 1 && result.Any(r => r.Name is null))
            throw Bad(modelPath, $"'{result.First(r => r.Name is null).Text}' names no input; with several shapes, name each input (name:dims)");
        return result;
    }

    static ModelGenException Bad(string modelPath, string what) =>
        new(ErrorCodes.BadOption, modelPath, $"InputShape (--input-shape) {what}. {Usage}");

    /// <summary>The shape an input is written with in messages: [batch, samples] (symbolic sizes by name, '?' when unnamed).</summary>
    public static string Declared(Onnx.Proto.TypeProto.Types.Tensor tt) =>
        "[" + string.Join(", ", tt.Shape.Dim.Select(d =>
            d.ValueCase == Onnx.Proto.TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue.ToString(CultureInfo.InvariantCulture)
            : d.DimParam.Length > 0 ? d.DimParam : "?")) + "]";

    /// <summary>
    /// What InputShape would fix an input with symbolic sizes: its fixed sizes as they are, a symbolic first dimension as
    /// the batch size, every other one as &lt;name&gt; for the user to fill in.
    /// </summary>
    public static string Suggestion(string input, Onnx.Proto.TypeProto.Types.Tensor tt, int batchSize) =>
        input + ":" + string.Join("x", tt.Shape.Dim.Select((d, i) =>
            d.ValueCase == Onnx.Proto.TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue >= 0 ? d.DimValue.ToString(CultureInfo.InvariantCulture)
            : i == 0 ? batchSize.ToString(CultureInfo.InvariantCulture)
            : "<" + (d.DimParam.Length > 0 ? d.DimParam : $"dim{i}") + ">"));
}
