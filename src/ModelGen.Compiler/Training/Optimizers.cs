namespace ModelGen.Compiler.Training;

/// <summary>The optimizers <see cref="TrainingOptions.Optimizer"/> names.</summary>
public enum OptimizerKind { Sgd, Adam, AdamW }

/// <summary>
/// Updates the float32 master weights (<see cref="Parameter.Values"/>) in place from their gradients, with
/// PyTorch's definitions (torch.optim, 1.13 and later). Element by element, each element's arithmetic a fixed
/// sequence of IEEE operations, so the result does not depend on the processor; powers of β are kept as running
/// products in double (Math.Pow is the platform's libm), square roots are IEEE-exact.
/// </summary>
public abstract class Optimizer
{
    /// <summary>Steps taken so far (PyTorch's per-parameter "step", the same for all here).</summary>
    public int Steps { get; private set; }

    /// <summary>One step at <paramref name="learningRate"/>: every parameter that has a gradient in <paramref name="gradients"/>.</summary>
    public void Step(IReadOnlyList<Parameter> parameters, IReadOnlyDictionary<string, Tensor<float>> gradients, double learningRate)
    {
        Steps++;
        BeginStep();
        foreach (var p in parameters)
            if (gradients.TryGetValue(p.Name, out var g)) Update(p, g.Data, (float)learningRate);
    }

    protected virtual void BeginStep() { }
    protected abstract void Update(Parameter parameter, float[] gradient, float learningRate);

    public static Optimizer Create(OptimizerKind kind, double weightDecay, double momentum = 0.9, bool nesterov = false) => kind switch
    {
        OptimizerKind.Sgd => new Sgd(momentum, weightDecay, nesterov),
        OptimizerKind.Adam => new Adam(weightDecay: weightDecay),
        OptimizerKind.AdamW => new Adam(weightDecay: weightDecay, decoupled: true),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}

/// <summary>
/// Stochastic gradient descent with momentum (torch.optim.SGD, dampening 0): g ← g + λθ; b ← g on the first step,
/// then μb + g; g ← g + μb (Nesterov) or b; θ ← θ − η g.
/// </summary>
public sealed class Sgd(double momentum = 0, double weightDecay = 0, bool nesterov = false) : Optimizer
{
    readonly Dictionary<string, float[]> _buffers = new(StringComparer.Ordinal);
    readonly float _momentum = (float)momentum, _decay = (float)weightDecay;

    protected override void Update(Parameter parameter, float[] gradient, float learningRate)
    {
        var theta = parameter.Values;
        float[]? buffer = null;
        bool first = false;
        if (_momentum != 0 && !_buffers.TryGetValue(parameter.Name, out buffer))
        {
            _buffers[parameter.Name] = buffer = new float[theta.Length];
            first = true;
        }
        for (int i = 0; i < theta.Length; i++)
        {
            float g = _decay != 0 ? MathF.FusedMultiplyAdd(_decay, theta[i], gradient[i]) : gradient[i];
            if (buffer is not null)
            {
                float b = buffer[i] = first ? g : MathF.FusedMultiplyAdd(_momentum, buffer[i], g);
                g = nesterov ? MathF.FusedMultiplyAdd(_momentum, b, g) : b;
            }
            theta[i] = MathF.FusedMultiplyAdd(-learningRate, g, theta[i]);
        }
    }
}

/// <summary>
/// Adam (torch.optim.Adam) and, with <paramref name="decoupled"/>, AdamW (torch.optim.AdamW):
/// AdamW first shrinks θ ← θ(1 − ηλ), Adam instead adds λθ to the gradient; then m ← β₁m + (1 − β₁)g,
/// v ← β₂v + (1 − β₂)g², θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε), in PyTorch's order of operations.
/// </summary>
public sealed class Adam(double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0, bool decoupled = false) : Optimizer
{
    readonly Dictionary<string, (float[] M, float[] V)> _moments = new(StringComparer.Ordinal);
    readonly float _beta1 = (float)beta1, _beta2 = (float)beta2, _epsilon = (float)epsilon, _decay = (float)weightDecay;
    double _beta1Power = 1, _beta2Power = 1;
    float _correction1, _correction2Sqrt;

    protected override void BeginStep()
    {
        _beta1Power *= beta1;
        _beta2Power *= beta2;
        _correction1 = (float)(1 - _beta1Power);
        _correction2Sqrt = (float)Math.Sqrt(1 - _beta2Power);
    }

    protected override void Update(Parameter parameter, float[] gradient, float learningRate)
    {
        var theta = parameter.Values;
        if (!_moments.TryGetValue(parameter.Name, out var state))
            _moments[parameter.Name] = state = (new float[theta.Length], new float[theta.Length]);
        var (m, v) = state;
        float stepSize = learningRate / _correction1, shrink = 1 - learningRate * _decay;
        float oneMinusBeta1 = 1 - _beta1, oneMinusBeta2 = 1 - _beta2;
        for (int i = 0; i < theta.Length; i++)
        {
            float g = gradient[i];
            if (_decay != 0)
            {
                if (decoupled) theta[i] *= shrink;
                else g = MathF.FusedMultiplyAdd(_decay, theta[i], g);
            }
            m[i] = MathF.FusedMultiplyAdd(_beta1, m[i], oneMinusBeta1 * g);
            v[i] = MathF.FusedMultiplyAdd(_beta2, v[i], oneMinusBeta2 * g * g);
            float denominator = MathF.Sqrt(v[i]) / _correction2Sqrt + _epsilon;
            theta[i] -= stepSize * (m[i] / denominator);
        }
    }
}
