using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A fully connected layer's weights in int4: W[n, k] ≈ Scales[n]·(nibble − 8). Packed two per byte in
/// blocks of 32 along K: byte i of a block holds element i (low nibble) and element i + 16 (high
/// nibble), so a kernel unpacks 16 consecutive weights with one mask and one shift. Rows are
/// <see cref="PaddedK"/> long (zeros past K). The errors are the layer's output error on the
/// calibration activations, ‖(W − Ŵ)·X‖² / ‖W·X‖², with round-to-nearest and with the reconstruction.
/// </summary>
public sealed record QuantizedInt4(byte[] Packed, float[] Scales, int N, int K, int PaddedK, string Method, double RoundToNearestError, double ReconstructionError);

/// <summary>
/// Weight-only int4 (Compression int4-weights) for fully connected layers: symmetric, one scale per
/// output channel (max |w| / 7, values −7…7). With calibration data, GPTQ-style layer-wise
/// reconstruction: columns are quantized in order and each one's rounding error is spread over the
/// columns not yet quantized through the inverse Hessian H⁻¹ of the layer's inputs (H = 2·XᵀX/S),
/// so the layer's output on those inputs moves least; without data, round to nearest.
/// </summary>
public static class Int4Quantization
{
    /// <summary>The int4 form of a node's weights, if the pass quantized them (its form).</summary>
    public static QuantizedInt4? Of(Node node) => (node.Form as Int4WeightsForm)?.Weights;

    /// <summary>Most calibration samples whose activations enter the Hessians.</summary>
    public const int MaxSamples = 256;

    public static void QuantizeDenseWeights(Graph graph, DataSet? calibration, Func<Node, bool>? which = null, IProgress<CompileProgress>? progress = null)
    {
        var dense = graph.Nodes.Where(n => n.OpType == DenseOperator.Name && graph[n.Inputs[1]].Constant is { Shape.Length: 2 } && n.Int("transA", 0) == 0 && (which is null || which(n))).ToList();
        // Each Dense layer's inputs on the calibration samples, from the float model (before any layer is quantized).
        var activations = dense.ToDictionary(n => n, _ => new List<float[]>());
        if (calibration is not null)
        {
            int batch = Math.Max(1, calibration.Inputs[0].Shape.FirstOrDefault(1));
            int runs = Math.Min(calibration.Count / batch, Math.Max(1, MaxSamples / batch));
            for (int r = 0; r < runs; r++)
            {
                var feed = new Dictionary<string, TensorData>(StringComparer.Ordinal);
                for (int i = 0; i < calibration.Inputs.Count; i++)
                {
                    long length = calibration.SampleLength(i) * batch;
                    feed[calibration.Inputs[i].Name] = new TensorData(calibration.Inputs[i].Shape, calibration.Values[i].AsSpan((int)(r * length), (int)length).ToArray());
                }
                var values = ReferenceEvaluator.RunAll(graph, feed);
                progress?.Report(new CompileProgress("int4 activations", r + 1, runs));
                foreach (var node in dense)
                {
                    var x = values.TryGetValue(node.Inputs[0], out var v) ? v.Floats : graph[node.Inputs[0]].Constant!.Floats;
                    int k = graph[node.Inputs[1]].Constant!.Shape[1];
                    for (int row = 0; row + k <= x.Length; row += k) activations[node].Add(x[row..(row + k)]);
                }
            }
        }
        foreach (var node in dense)
        {
            var w = graph[node.Inputs[1]].Constant!;
            var q = Quantize(w.Floats, w.Shape[0], w.Shape[1], activations[node]);
            string name = node.Inputs[1] + ".int4";
            while (graph.Values.ContainsKey(name)) name += "_";
            var copy = graph.GetOrAdd(name);
            copy.Constant = new TensorData([q.N, q.K], Dequantize(q));
            copy.Shape = [q.N, q.K];
            copy.Type = ElementType.Float32;
            node.Inputs[1] = name;
            node.Form = new Int4WeightsForm(q);
            progress?.Report(new CompileProgress("int4 GPTQ", dense.IndexOf(node) + 1, dense.Count, node.Name));
        }
    }

    /// <summary>W [n, k] row-major to int4, by reconstruction when activations are given (also measuring round to nearest).</summary>
    public static QuantizedInt4 Quantize(float[] w, int n, int k, IReadOnlyList<float[]> activations)
    {
        // mixed-weights prepares the model once per set of int8 layers and once more to compile: a layer whose weights
        // and inputs did not change is reconstructed once (the result is a function of them alone).
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        hash.AppendData(BitConverter.GetBytes(((long)n << 32) | (uint)k));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()));
        foreach (var a in activations) hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
        string key = Convert.ToHexString(hash.GetHashAndReset());
        if (Reconstructed.TryGetValue(key, out var known)) return known;
        var q = Reconstruct(w, n, k, activations);
        if (Reconstructed.Count >= 64) Reconstructed.Clear(); // a bound for long-lived processes (tests)
        Reconstructed[key] = q;
        return q;
    }

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, QuantizedInt4> Reconstructed = new(StringComparer.Ordinal);

    internal static QuantizedInt4 Reconstruct(float[] w, int n, int k, IReadOnlyList<float[]> activations)
    {
        var scales = new float[n];
        for (int j = 0; j < n; j++)
        {
            float max = 0;
            for (int i = 0; i < k; i++) max = Math.Max(max, Math.Abs(w[(long)j * k + i]));
            scales[j] = max > 0 ? max / 7f : 1f;
        }
        var nearest = new sbyte[(long)n * k];
        for (long at = 0; at < nearest.LongLength; at++) nearest[at] = Round(w[at] / scales[at / k]);
        if (activations.Count == 0) return Pack(nearest, scales, n, k, "round to nearest", double.NaN, double.NaN);

        // H = 2·XᵀX / S, damped by 1% of its mean diagonal (as GPTQ does) so it is safely invertible.
        int samples = activations.Count;
        var xt = new double[(long)k * samples];
        for (int r = 0; r < samples; r++)
            for (int c = 0; c < k; c++) xt[(long)c * samples + r] = activations[r][c];
        var h = DenseMath.Gram(xt, k, samples);
        double factor = 2.0 / samples, diagonal = 0;
        for (long i = 0; i < h.LongLength; i++) h[i] *= factor;
        for (int i = 0; i < k; i++) diagonal += h[(long)i * k + i];
        double damp = 0.01 * (diagonal / k) + 1e-8;
        for (int i = 0; i < k; i++)
        {
            long at = (long)i * k + i;
            if (h[at] == 0) h[at] = 1; // an input always zero: its weights do not matter
            h[at] += damp;
        }
        // The upper Cholesky factor U of H⁻¹ (UᵀU = H⁻¹), stored as its transpose's rows: row col of U carries
        // column col's error to the later columns.
        var hInverse = DenseMath.InverseFromCholesky(DenseMath.Cholesky(h, k), k);
        var lower = DenseMath.Cholesky(hInverse, k);
        var u = new double[(long)k * k];
        for (int r = 0; r < k; r++)
            for (int c = 0; c <= r; c++) u[(long)c * k + r] = lower[(long)r * k + c];
        var reconstructed = new sbyte[(long)n * k];
        // Each output channel's row is reconstructed on its own (it reads only itself and U): rows in parallel.
        DenseMath.ParallelRows(0, n, j =>
        {
            var work = new double[k];
            for (int c = 0; c < k; c++) work[c] = w[(long)j * k + c];
            for (int col = 0; col < k; col++)
            {
                sbyte qv = Round((float)(work[col] / scales[j]));
                reconstructed[(long)j * k + col] = qv;
                double error = (work[col] - qv * scales[j]) / u[(long)col * k + col];
                DenseMath.SubtractScaled(work.AsSpan(col + 1), error, u.AsSpan(col * k + col + 1, k - col - 1));
            }
        }, (long)k * k);
        // ‖(W − Ŵ)·X‖ / ‖W·X‖ over the calibration activations, per row and sample in a fixed order.
        var x = new double[(long)samples * k];
        for (int r = 0; r < samples; r++)
            for (int c = 0; c < k; c++) x[(long)r * k + c] = activations[r][c];
        double Norm(Func<long, double> weight)
        {
            var rows = new double[n];
            DenseMath.ParallelRows(0, n, j =>
            {
                var row = new double[k];
                for (int c = 0; c < k; c++) row[c] = weight((long)j * k + c);
                double sum = 0;
                for (int r = 0; r < samples; r++) { double y = DenseMath.Dot(row, x.AsSpan(r * k, k)); sum += y * y; }
                rows[j] = sum;
            }, (long)k * samples);
            double total = 0;
            foreach (double v in rows) total += v;
            return Math.Sqrt(total);
        }
        double reference = Math.Max(1e-30, Norm(at => w[at]));
        double OutputError(sbyte[] q) => Norm(at => w[at] - q[at] * scales[at / k]) / reference;
        double rtn = OutputError(nearest), gptq = OutputError(reconstructed);
        // The reconstruction minimises a damped objective; where it does not beat rounding, keep rounding.
        return gptq <= rtn
            ? Pack(reconstructed, scales, n, k, "GPTQ reconstruction", rtn, gptq)
            : Pack(nearest, scales, n, k, "round to nearest (reconstruction was no better)", rtn, gptq);
    }

    static sbyte Round(float v) => (sbyte)Math.Clamp(MathF.Round(v, MidpointRounding.ToEven), -7, 7);

    static QuantizedInt4 Pack(sbyte[] q, float[] scales, int n, int k, string method, double rtn, double gptq)
    {
        int paddedK = (k + 31) / 32 * 32;
        var packed = new byte[(long)n * paddedK / 2];
        for (int j = 0; j < n; j++)
            for (int i = 0; i < paddedK; i++)
            {
                int nibble = (i < k ? q[(long)j * k + i] : 0) + 8;
                int block = i / 32, within = i % 32;
                long at = (long)j * paddedK / 2 + block * 16 + within % 16;
                packed[at] |= (byte)(within < 16 ? nibble : nibble << 4);
            }
        return new QuantizedInt4(packed, scales, n, k, paddedK, method, rtn, gptq);
    }

    /// <summary>The float weights the int4 ones stand for (what the evaluator computes with).</summary>
    public static float[] Dequantize(QuantizedInt4 q)
    {
        var w = new float[(long)q.N * q.K];
        for (int j = 0; j < q.N; j++)
            for (int i = 0; i < q.K; i++)
            {
                byte b = q.Packed[(long)j * q.PaddedK / 2 + i / 32 * 16 + i % 32 % 16];
                int nibble = i % 32 < 16 ? b & 0x0F : b >> 4;
                w[(long)j * q.K + i] = (nibble - 8) * q.Scales[j];
            }
        return w;
    }
}
