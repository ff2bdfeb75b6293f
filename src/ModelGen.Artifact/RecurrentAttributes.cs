using System;
using System.Collections.Generic;
using System.Globalization;

namespace ModelGen.Artifact;

/// <summary>
/// An <see cref="KernelKind.LSTM"/> or <see cref="KernelKind.GRU"/> kernel: <c>dims</c> (steps, batch, input, hidden,
/// directions), <c>reverse</c> and <c>layout</c> (0/1), the gate functions <c>f0</c>… (3 per direction for LSTM, 2 for
/// GRU, Activations' text form), <c>clip</c> (absent: none), <c>inputforget</c> (LSTM) and <c>linearbeforereset</c>
/// (GRU), present when set, and the sequence <c>lengths</c> per batch entry.
/// </summary>
public sealed class RecurrentAttributes
{
    public RecurrentAttributes(int steps, int batch, int input, int hidden, int directions, bool reverse, bool layout1,
        FusedActivation[] functions, float? clip, bool inputForget, bool linearBeforeReset, int[] lengths)
    {
        if (steps < 0 || batch < 0 || input < 0 || hidden < 1 || directions is not (1 or 2)) throw new FormatException("a recurrent layer's dims are steps, batch, input, hidden (positive), directions (1 or 2)");
        if (functions.Length % directions != 0) throw new FormatException("a recurrent layer has as many functions per direction");
        if (lengths.Length != batch) throw new FormatException($"a recurrent layer has a sequence length per batch entry ({batch})");
        Steps = steps; Batch = batch; Input = input; Hidden = hidden; Directions = directions; Reverse = reverse; Layout1 = layout1;
        Functions = functions; Clip = clip; InputForget = inputForget; LinearBeforeReset = linearBeforeReset; Lengths = lengths;
    }

    public int Steps { get; }
    public int Batch { get; }
    public int Input { get; }
    public int Hidden { get; }
    public int Directions { get; }
    public bool Reverse { get; }
    /// <summary>Batch-major tensors (ONNX layout=1).</summary>
    public bool Layout1 { get; }
    /// <summary>The gate functions, direction by direction.</summary>
    public FusedActivation[] Functions { get; }
    /// <summary>The cell clip bound; null: none.</summary>
    public float? Clip { get; }
    public bool InputForget { get; }
    public bool LinearBeforeReset { get; }
    public int[] Lengths { get; }

    public static bool Has(KernelKind kind) => kind is KernelKind.LSTM or KernelKind.GRU;

    static string FunctionKey(int i) => "f" + i.ToString(CultureInfo.InvariantCulture);

    internal static RecurrentAttributes Read(KernelKind kind, IDictionary<string, string> attributes)
    {
        int[] dims = attributes.Ints("dims");
        if (dims.Length != 5) throw new FormatException("dims must be steps,batch,input,hidden,directions");
        int count = dims[4] * (kind == KernelKind.LSTM ? 3 : 2);
        if (count is < 0 or > 6) throw new FormatException("directions must be 1 or 2");
        var functions = new FusedActivation[count];
        for (int i = 0; i < count; i++) functions[i] = FusedActivation.Parse(attributes.Text(FunctionKey(i)));
        return new RecurrentAttributes(dims[0], dims[1], dims[2], dims[3], dims[4], attributes.Flag("reverse"), attributes.Flag("layout"), functions,
            attributes.OptionalFloat("clip"), attributes.ContainsKey("inputforget"), attributes.ContainsKey("linearbeforereset"), attributes.Ints("lengths"));
    }

    internal void WriteTo(IDictionary<string, string> attributes)
    {
        attributes["dims"] = ArtifactText.Ints(new[] { Steps, Batch, Input, Hidden, Directions });
        attributes["reverse"] = AttributeReading.Flag(Reverse);
        attributes["layout"] = AttributeReading.Flag(Layout1);
        for (int i = 0; i < Functions.Length; i++) Functions[i].WriteTo(attributes, FunctionKey(i));
        if (Clip is { } clip) attributes["clip"] = ArtifactText.Float(clip);
        if (InputForget) attributes["inputforget"] = "1";
        if (LinearBeforeReset) attributes["linearbeforereset"] = "1";
        attributes["lengths"] = ArtifactText.Ints(Lengths);
    }
}
