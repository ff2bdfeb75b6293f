using ModelGen.Artifact;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;

namespace ModelGen.Tests.Support;

/// <summary>Generated code against the reference evaluator on random inputs, for models of one input [1, n] and one output.</summary>
public static class EvaluatorAgreement
{
    /// <summary>Inputs OnnxBuilder.Random(n, seed + trial) for each trial: the generated outputs within Tolerance of the evaluator's.</summary>
    public static void Assert(GeneratedModels models, ModelArtifact artifact, Graph prepared, int seed, int trials, string what)
    {
        int inputs = prepared[prepared.Inputs[0]].Shape![^1], outputs = (int)TensorData.Size(prepared[prepared.Outputs[0]].Shape!);
        for (int trial = 0; trial < trials; trial++)
        {
            var x = OnnxBuilder.Random(inputs, seed + trial);
            var y = new float[outputs];
            models.Run(artifact, [x], [y]);
            var evaluated = ReferenceEvaluator.Run(prepared, new Dictionary<string, TensorData> { [prepared.Inputs[0]] = new([1, inputs], x) })[prepared.Outputs[0]].Floats;
            Tolerance.AssertClose(evaluated, y, $"{what}, input {trial}: generated code against the evaluator");
        }
    }
}
