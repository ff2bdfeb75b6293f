// Recognises the 2,000 MNIST test digits with LeNet-5 compiled into C# at build time from
// data/mnist/lenet5.onnx twice (see Mnist.csproj): Mnist.LeNet5 in float32 as trained, and Mnist.LeNet5Int8
// compressed to int8 arithmetic. One table: weight bytes, accuracy and speed of each. No ONNX Runtime, no
// native library: the generated code and the base class library are all that runs.
//
// usage: Mnist [folder with test-images.npy and test-labels.npy]
// Without an argument the program looks for data/mnist above its own folder and the current one.
using System.Buffers.Binary;
using System.Diagnostics;
using Mnist;

string? dataFolder = args.Length > 0 ? args[0] : FindDataFolder();
if (dataFolder == null || !File.Exists(Path.Combine(dataFolder, "test-images.npy")))
{
    Console.Error.WriteLine("Cannot find test-images.npy; pass the data/mnist folder as the first argument.");
    return 1;
}

float[] images = Npy.Read(Path.Combine(dataFolder, "test-images.npy"), "<f4", out int[] imageShape, BinaryPrimitives.ReadSingleLittleEndian);
long[] labels = Npy.Read(Path.Combine(dataFolder, "test-labels.npy"), "<i8", out _, BinaryPrimitives.ReadInt64LittleEndian);
int count = imageShape[0];
if (images.Length != count * LeNet5.InputLength || labels.Length != count)
{
    Console.Error.WriteLine($"Expected {LeNet5.InputLength} pixels and one label per digit; the files hold [{string.Join(", ", imageShape)}] and {labels.Length} labels.");
    return 1;
}

// The generated classes are static; a row of the table holds what it needs of one.
Model[] models =
[
    new("LeNet5", "float32", LeNet5.WeightBytes, LeNet5.ScratchBytes, LeNet5.Run, LeNet5.Predict),
    new("LeNet5Int8", "int8", LeNet5Int8.WeightBytes, LeNet5Int8.ScratchBytes, LeNet5Int8.Run, LeNet5Int8.Predict),
];

// Accuracy. Run gives the ten scores (logits); Predict the most likely digit.
Span<float> scores = stackalloc float[LeNet5.OutputLength];
var correct = new int[models.Length];
for (int m = 0; m < models.Length; m++)
{
    for (int i = 0; i < count; i++)
    {
        ReadOnlySpan<float> image = Image(i);
        models[m].Run(image, scores);
        int digit = ArgMax(scores);
        if (models[m].Predict(image) != digit)
        {
            Console.Error.WriteLine($"{models[m].Name}: Predict and Run disagree on digit {i}.");
            return 1;
        }

        correct[m] += digit == labels[i] ? 1 : 0;
    }
}

// Speed: Run on every digit, the models taking turns, five rounds; the fastest round of each counts (the
// others lose to whatever else the machine does). The first calls run unoptimised code (tiered JIT):
// warm up before timing. A NativeAOT binary is compiled ahead of time and needs no warm-up.
var microseconds = new double[models.Length];
Array.Fill(microseconds, double.MaxValue);
foreach (Model model in models)
{
    for (int i = 0; i < Math.Min(count, 500); i++)
    {
        model.Run(Image(i), scores);
    }
}

for (int round = 0; round < 5; round++)
{
    for (int m = 0; m < models.Length; m++)
    {
        var stopwatch = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            models[m].Run(Image(i), scores);
        }

        microseconds[m] = Math.Min(microseconds[m], stopwatch.Elapsed.TotalMicroseconds / count);
    }
}

// The widest vectors the generated kernels run on here (each class says, by its kernels' own checks): vector256
// on an AVX2 processor, vector512 with AVX-512 under the JIT; a NativeAOT binary gets what its instruction set
// allows (ModelGen sets x86-64-v3 for x64 unless the project chose: README, Performance).
string simd = LeNet5.SimdLevel == LeNet5Int8.SimdLevel ? LeNet5.SimdLevel : $"{LeNet5.SimdLevel} (float32), {LeNet5Int8.SimdLevel} (int8)";
Console.WriteLine($"LeNet-5 compiled by ModelGen, {count:N0} test digits, one thread, {(System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported ? "JIT" : "NativeAOT")}");
Console.WriteLine($"SIMD: {simd}");
Console.WriteLine();
Console.WriteLine("| model      | compression | weights      | scratch    | accuracy | Run, µs per inference |");
Console.WriteLine("|------------|-------------|--------------|------------|----------|-----------------------|");
for (int m = 0; m < models.Length; m++)
{
    Console.WriteLine($"| {models[m].Name,-10} | {models[m].Compression,-11} | {models[m].WeightBytes,10:N0} B | {models[m].ScratchBytes,8:N0} B | {100.0 * correct[m] / count,7:F2}% | {microseconds[m],21:F1} |");
}

Console.WriteLine();
Console.WriteLine($"accuracy: {100.0 * correct[1] / count:F2}% in int8 ({correct[1]} of {count} test digits), {100.0 * correct[0] / count:F2}% in float32 ({correct[0]})");
Console.WriteLine($"int8: {100.0 * models[1].WeightBytes / models[0].WeightBytes:F1}% of the weight bytes, " +
                  $"{microseconds[0] / microseconds[1]:F2}x the speed of float32, " +
                  $"accuracy {100.0 * (correct[1] - correct[0]) / count:+0.00;-0.00;0.00} points");
return 0;

ReadOnlySpan<float> Image(int index) => images.AsSpan(index * LeNet5.InputLength, LeNet5.InputLength);

static int ArgMax(ReadOnlySpan<float> values)
{
    int best = 0;
    for (int i = 1; i < values.Length; i++)
    {
        if (values[i] > values[best])
        {
            best = i;
        }
    }

    return best;
}

static string? FindDataFolder()
{
    foreach (string start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
    {
        for (var folder = new DirectoryInfo(start); folder != null; folder = folder.Parent)
        {
            string candidate = Path.Combine(folder.FullName, "data", "mnist");
            if (File.Exists(Path.Combine(candidate, "test-images.npy")))
            {
                return candidate;
            }
        }
    }

    return null;
}

/// <summary>One generated model class, as a row of the table.</summary>
internal sealed record Model(string Name, string Compression, int WeightBytes, int ScratchBytes, Model.RunFunction Run, Model.PredictFunction Predict)
{
    public delegate void RunFunction(ReadOnlySpan<float> image, Span<float> scores);

    public delegate int PredictFunction(ReadOnlySpan<float> image);
}
