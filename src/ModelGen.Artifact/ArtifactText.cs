using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace ModelGen.Artifact;

/// <summary>
/// Reads and writes the .mgen text form: one record per line, <c>kind key=value …</c>; values are
/// bare tokens (numbers, comma lists, base64) or double-quoted strings with C-style escapes.
/// Same artifact in, same bytes out: keys are written in a fixed order, numbers invariantly.
/// </summary>
public static class ArtifactText
{
    public const string Magic = "mgen";

    public static string Write(ModelArtifact model)
    {
        var sb = new StringBuilder();
        sb.Append("# ModelGen artifact: the compiled model, read by ModelGen's source generator. Format: docs/artifact-format.md\n");
        sb.Append(Magic).Append(' ').Append(ModelArtifact.FormatVersion.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("model");
        Str(sb, "class", model.ClassName);
        Str(sb, "namespace", model.Namespace);
        Str(sb, "source", model.SourceFile);
        Bare(sb, "sha256", model.SourceSha256);
        Str(sb, "producer", model.Producer);
        Bare(sb, "opset", model.Opset.ToString(CultureInfo.InvariantCulture));
        Bare(sb, "simd", model.Simd.ToText());
        Bare(sb, "scratch", model.ScratchBytes.ToString(CultureInfo.InvariantCulture));
        Str(sb, "compression", model.Compression);
        if (model.Measured.Length > 0) Str(sb, "measured", model.Measured);
        sb.Append('\n');
        foreach (var b in model.Inputs) WriteBinding(sb, "input", b);
        foreach (var b in model.Outputs) WriteBinding(sb, "output", b);
        foreach (var t in model.Tensors)
        {
            sb.Append("tensor");
            Bare(sb, "id", t.Id.ToString(CultureInfo.InvariantCulture));
            Str(sb, "name", t.Name);
            Bare(sb, "storage", t.Storage.ToString().ToLowerInvariant());
            if (t.Storage == TensorStorage.Input || t.Storage == TensorStorage.Output)
                Bare(sb, "index", t.Index.ToString(CultureInfo.InvariantCulture));
            if (t.Storage == TensorStorage.Arena)
                Bare(sb, "offset", t.Offset.ToString(CultureInfo.InvariantCulture));
            Bare(sb, "shape", Ints(t.Shape));
            if (t.Element != TensorElement.Float32) Bare(sb, "type", t.Element.Text());
            if (t.Storage == TensorStorage.Weight)
                Bare(sb, "data", Convert.ToBase64String(t.Data ?? new byte[0]));
            sb.Append('\n');
        }
        foreach (var n in model.Nodes)
        {
            sb.Append("node");
            Bare(sb, "kernel", n.Kernel.ToString());
            Str(sb, "onnx", n.OnnxOp);
            Str(sb, "name", n.Name);
            Bare(sb, "in", Ints(n.Inputs));
            Bare(sb, "out", Ints(n.Outputs));
            foreach (var kv in n.Attributes) Bare(sb, "attr." + kv.Key, kv.Value);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Parses an artifact; throws <see cref="FormatException"/> with the line number on any defect.</summary>
    public static ModelArtifact Read(string text)
    {
        var model = new ModelArtifact();
        bool sawMagic = false;
        int lineNo = 0;
        foreach (string raw in text.Split('\n'))
        {
            lineNo++;
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#') continue;
            try
            {
                var (kind, fields) = ParseLine(line);
                if (!sawMagic)
                {
                    if (kind != Magic) throw new FormatException("not a ModelGen artifact (missing 'mgen' header)");
                    int version = int.Parse(line.Substring(Magic.Length).Trim(), CultureInfo.InvariantCulture);
                    if (version != ModelArtifact.FormatVersion)
                        throw new FormatException($"artifact format version {version}; this generator reads version {ModelArtifact.FormatVersion}: rebuild so the compiler writes it again");
                    sawMagic = true;
                    continue;
                }
                switch (kind)
                {
                    case "model":
                        model.ClassName = Get(fields, "class");
                        model.Namespace = Get(fields, "namespace");
                        model.SourceFile = Get(fields, "source");
                        model.SourceSha256 = Get(fields, "sha256");
                        model.Producer = Get(fields, "producer");
                        model.Opset = long.Parse(Get(fields, "opset"), CultureInfo.InvariantCulture);
                        model.Simd = SimdLevelText.TryParse(Get(fields, "simd"), out var simd) ? simd : throw new FormatException($"unknown SIMD level '{Get(fields, "simd")}'");
                        model.ScratchBytes = long.Parse(Get(fields, "scratch"), CultureInfo.InvariantCulture);
                        model.Compression = fields.TryGetValue("compression", out string? compression) ? compression : "none";
                        model.Measured = fields.TryGetValue("measured", out string? measured) ? measured : "";
                        break;
                    case "input":
                    case "output":
                        var binding = new ArtifactBinding
                        {
                            Tensor = int.Parse(Get(fields, "tensor"), CultureInfo.InvariantCulture),
                            Name = Get(fields, "name"),
                            Parameter = Get(fields, "param"),
                        };
                        (kind == "input" ? model.Inputs : model.Outputs).Add(binding);
                        break;
                    case "tensor":
                        var t = new ArtifactTensor
                        {
                            Id = int.Parse(Get(fields, "id"), CultureInfo.InvariantCulture),
                            Name = Get(fields, "name"),
                            Storage = ParseStorage(Get(fields, "storage")),
                            Shape = ParseInts(Get(fields, "shape")),
                        };
                        if (t.Id != model.Tensors.Count) throw new FormatException("tensor ids must count up from 0");
                        if (fields.TryGetValue("index", out string? index)) t.Index = int.Parse(index, CultureInfo.InvariantCulture);
                        if (fields.TryGetValue("offset", out string? offset)) t.Offset = long.Parse(offset, CultureInfo.InvariantCulture);
                        if (fields.TryGetValue("data", out string? data)) t.Data = Convert.FromBase64String(data);
                        if (fields.TryGetValue("type", out string? type))
                            t.Element = TensorElements.Parse(type) ?? throw new FormatException($"unknown element type '{type}'");
                        if (t.Element == TensorElement.Int64 && t.Storage == TensorStorage.Arena) throw new FormatException("int64 tensors are inputs, outputs or constants, never computed");
                        if (t.Element.IsCompressed() && t.Storage != TensorStorage.Weight && !(t.Element == TensorElement.UInt8 && t.Storage == TensorStorage.Arena))
                            throw new FormatException("int8, int16, int32 and float16 tensors are weights; uint8 ones weights or arena");
                        model.Tensors.Add(t);
                        break;
                    case "node":
                        var n = new ArtifactNode
                        {
                            Kernel = KernelKinds.Parse(Get(fields, "kernel")),
                            OnnxOp = Get(fields, "onnx"),
                            Name = Get(fields, "name"),
                            Inputs = ParseInts(Get(fields, "in")),
                            Outputs = ParseInts(Get(fields, "out")),
                        };
                        foreach (var kv in fields)
                            if (kv.Key.StartsWith("attr.", StringComparison.Ordinal)) n.Attributes[kv.Key.Substring(5)] = kv.Value;
                        n.ParseAttributes();
                        model.Nodes.Add(n);
                        break;
                    default:
                        throw new FormatException($"unknown record '{kind}'");
                }
            }
            catch (Exception e) when (e is FormatException || e is OverflowException || e is KeyNotFoundException)
            {
                throw new FormatException($"line {lineNo}: {e.Message}", e);
            }
        }
        if (!sawMagic) throw new FormatException("empty artifact");
        Validate(model);
        return model;
    }

    /// <summary>Cross-references must hold before any code is emitted from the artifact.</summary>
    static void Validate(ModelArtifact model)
    {
        int count = model.Tensors.Count;
        foreach (var b in model.Inputs.Concat(model.Outputs))
            if (b.Tensor < 0 || b.Tensor >= count) throw new FormatException($"binding '{b.Name}' names tensor {b.Tensor}, which does not exist");
        foreach (var n in model.Nodes)
            foreach (int id in n.Inputs.Concat(n.Outputs))
                if (id < 0 || id >= count) throw new FormatException($"node '{n.Name}' names tensor {id}, which does not exist");
        foreach (var t in model.Tensors)
        {
            if (t.Storage == TensorStorage.Weight && (t.Data == null || t.Data.LongLength != t.ElementCount * t.ElementBytes))
                throw new FormatException($"tensor {t.Id} holds {t.Data?.Length ?? 0} bytes, its shape needs {t.ElementCount * t.ElementBytes}");
            if (t.Storage == TensorStorage.Arena && (t.Offset < 0 || t.Offset + t.ArenaBytes > model.ScratchBytes))
                throw new FormatException($"tensor {t.Id} lies outside the scratch arena");
        }
    }

    static IEnumerable<T> Concat<T>(this IEnumerable<T> a, IEnumerable<T> b)
    {
        foreach (var x in a) yield return x;
        foreach (var x in b) yield return x;
    }

    static TensorStorage ParseStorage(string s) => s switch
    {
        "input" => TensorStorage.Input,
        "output" => TensorStorage.Output,
        "arena" => TensorStorage.Arena,
        "weight" => TensorStorage.Weight,
        _ => throw new FormatException($"unknown storage '{s}'"),
    };

    static string Get(Dictionary<string, string> fields, string key) =>
        fields.TryGetValue(key, out string? v) ? v : throw new FormatException($"missing field '{key}'");

    public static string Ints(int[] values)
    {
        var parts = new string[values.Length];
        for (int i = 0; i < values.Length; i++) parts[i] = values[i].ToString(CultureInfo.InvariantCulture);
        return string.Join(",", parts);
    }

    /// <summary>An integer attribute's text.</summary>
    public static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A float32 attribute's text: the shortest that reads back as the same float.</summary>
    public static string Float(float value) => value.ToString("R", CultureInfo.InvariantCulture);

    public static int ParseInt(string s) => int.Parse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    public static float ParseFloat(string s) => float.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);

    public static int[] ParseInts(string s)
    {
        if (s.Length == 0) return new int[0];
        string[] parts = s.Split(',');
        var result = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++) result[i] = int.Parse(parts[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        return result;
    }

    static void WriteBinding(StringBuilder sb, string kind, ArtifactBinding b)
    {
        sb.Append(kind);
        Bare(sb, "tensor", b.Tensor.ToString(CultureInfo.InvariantCulture));
        Str(sb, "name", b.Name);
        Str(sb, "param", b.Parameter);
        sb.Append('\n');
    }

    static void Bare(StringBuilder sb, string key, string value) => sb.Append(' ').Append(key).Append('=').Append(value);

    static void Str(StringBuilder sb, string key, string value)
    {
        sb.Append(' ').Append(key).Append("=\"");
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                default:
                    if (c < 0x20 || c > 0x7E) sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    static (string Kind, Dictionary<string, string> Fields) ParseLine(string line)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        int i = line.IndexOf(' ');
        string kind = i < 0 ? line : line.Substring(0, i);
        if (i < 0 || kind == Magic) return (kind, fields);
        while (i < line.Length)
        {
            while (i < line.Length && line[i] == ' ') i++;
            if (i >= line.Length) break;
            int eq = line.IndexOf('=', i);
            if (eq < 0) throw new FormatException("expected key=value");
            string key = line.Substring(i, eq - i);
            i = eq + 1;
            string value;
            if (i < line.Length && line[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= line.Length) throw new FormatException($"unterminated string in '{key}'");
                    char c = line[i++];
                    if (c == '"') break;
                    if (c != '\\') { sb.Append(c); continue; }
                    if (i >= line.Length) throw new FormatException($"bad escape in '{key}'");
                    char e = line[i++];
                    if (e == 'u')
                    {
                        if (i + 4 > line.Length) throw new FormatException($"bad escape in '{key}'");
                        sb.Append((char)int.Parse(line.Substring(i, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                        i += 4;
                    }
                    else sb.Append(e);
                }
                value = sb.ToString();
            }
            else
            {
                int end = line.IndexOf(' ', i);
                if (end < 0) end = line.Length;
                value = line.Substring(i, end - i);
                i = end;
            }
            if (fields.ContainsKey(key)) throw new FormatException($"field '{key}' given twice");
            fields[key] = value;
        }
        return (kind, fields);
    }
}
