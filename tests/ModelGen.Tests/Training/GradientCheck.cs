using ModelGen.Compiler;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

/// <summary>
/// The oracle of every gradient rule: central finite differences in double. The loss is Σ R·y over every
/// output with a fixed random R, so its gradient for an output is R; the engine's gradients (computed in
/// double by the same rules that train in float32) must agree with (L(θ+h) − L(θ−h)) / 2h within 1e-3 relative.
/// </summary>
public static class GradientCheck
{
    /// <summary>Imports and normalizes a test model the way the compiler does before training.</summary>
    public static Graph Prepare(OnnxBuilder model, bool normalize = true)
    {
        var graph = ModelCompiler.Import(model.Save());
        if (normalize) Compiler.Normalize.Passes.Run(graph);
        return graph;
    }

    /// <summary>
    /// Checks every parameter's and input's gradient at up to <paramref name="probes"/> elements of each tensor.
    /// Returns the number of elements checked (so a test can assert that it checked something).
    /// </summary>
    public static int Run(Graph graph, int batch = 3, int seed = 1, int probes = 24, double h = 1e-5, Func<int, string, double>? input = null)
    {
        var model = TrainableModel.Build(graph);
        var random = new Random(seed);
        var inputs = new Dictionary<string, Tensor<double>>(StringComparer.Ordinal);
        foreach (var name in graph.Inputs)
        {
            var t = new Tensor<double>([batch, .. graph[name].Shape![1..]]);
            for (int i = 0; i < t.Count; i++) t.Data[i] = input?.Invoke(i, name) ?? random.NextDouble() * 2 - 1;
            inputs[name] = t;
        }
        var parameters = model.Parameters.ToDictionary(p => p.Name, p => Tensor<double>.From(p.Shape, p.Values), StringComparer.Ordinal);
        var weights = new Dictionary<string, Tensor<double>>(StringComparer.Ordinal);
        var pass = model.Forward(inputs, inputGradients: true, parameterValues: parameters);
        foreach (var o in graph.Outputs)
        {
            var r = new Tensor<double>(pass[o].Shape);
            for (int i = 0; i < r.Count; i++) r.Data[i] = random.NextDouble() * 2 - 1;
            weights[o] = r;
        }
        var grads = pass.Backward(weights);

        double Loss()
        {
            var p = model.Forward(inputs, parameterValues: parameters);
            double sum = 0;
            foreach (var (o, r) in weights)
                for (int i = 0; i < r.Count; i++) sum += r.Data[i] * p[o].Data[i];
            return sum;
        }

        int checkedCount = 0;
        // Integer inputs (indices) have no gradient: they are given as exact integers and not probed.
        foreach (var (name, tensor) in parameters.Concat(inputs.Where(i => graph[i.Key].Type == ElementType.Float32)))
        {
            var analytic = grads[name];
            double scale = analytic.Data.Length == 0 ? 0 : analytic.Data.Max(Math.Abs);
            var picks = Enumerable.Range(0, tensor.Count).OrderBy(_ => random.Next()).Take(probes).ToArray();
            foreach (int i in picks)
            {
                double keep = tensor.Data[i];
                tensor.Data[i] = keep + h; double up = Loss();
                tensor.Data[i] = keep - h; double down = Loss();
                tensor.Data[i] = keep;
                double numeric = (up - down) / (2 * h), a = analytic.Data[i];
                double tolerance = 1e-3 * Math.Max(Math.Abs(a), Math.Abs(numeric)) + 1e-6 * scale + 1e-9;
                Assert.True(Math.Abs(a - numeric) <= tolerance,
                    $"d loss / d {name}[{i}]: engine {a:R}, finite differences {numeric:R}");
                checkedCount++;
            }
        }
        return checkedCount;
    }
}
