// Recognises the 2,000 MNIST test digits with LeNet-5, compiled into the class Mnist.LeNet5 at build
// time from data/mnist/lenet5.onnx (see Mnist.csproj). No ONNX Runtime, no native library: the
// generated code and the base class library are all that runs.
//
// usage: Mnist [folder with test-images.npy and test-labels.npy]
// Without an argument the program looks for data/mnist above its own folder and the current one.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
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

// Accuracy. Run gives the ten scores (logits); Predict the most likely digit.
Span<float> scores = stackalloc float[LeNet5.OutputLength];
int correct = 0;
for (int i = 0; i < count; i++)
{
    ReadOnlySpan<float> image = Image(i);
    LeNet5.Run(image, scores);
    int digit = ArgMax(scores);
    if (LeNet5.Predict(image) != digit)
    {
        Console.Error.WriteLine($"Predict and Run disagree on digit {i}.");
        return 1;
    }

    correct += digit == labels[i] ? 1 : 0;
}

Console.WriteLine($"LeNet-5 compiled by ModelGen: {LeNet5.InputLength} inputs, {LeNet5.OutputLength} outputs, " +
                  $"{LeNet5.WeightBytes / 1024.0:F0} KiB of weights, {LeNet5.ScratchBytes / 1024.0:F0} KiB of scratch");
Console.WriteLine($"accuracy: {100.0 * correct / count:F2}% ({correct} of {count} test digits)");
// The widest vectors the generated kernels run on here: vector256 on an AVX2 processor, vector512 with
// AVX-512 under the JIT; a NativeAOT binary gets what its instruction set allows (ModelGen sets
// x86-64-v3 for x64 unless the project chose: README, Performance).
Console.WriteLine($"SIMD: {LeNet5.SimdLevel}");

// Speed. The first calls run unoptimised code (tiered JIT); warm up before timing. A NativeAOT binary
// is compiled ahead of time and needs no warm-up, but it does no harm.
for (int i = 0; i < Math.Min(count, 500); i++)
{
    LeNet5.Run(Image(i), scores);
}

var stopwatch = Stopwatch.StartNew();
for (int i = 0; i < count; i++)
{
    LeNet5.Run(Image(i), scores);
}

double runMicroseconds = stopwatch.Elapsed.TotalMicroseconds / count;

int checksum = 0;
stopwatch.Restart();
for (int i = 0; i < count; i++)
{
    checksum += LeNet5.Predict(Image(i));
}

double predictMicroseconds = stopwatch.Elapsed.TotalMicroseconds / count;
Console.WriteLine($"Run:     {runMicroseconds:F1} µs per inference (mean of {count})");
Console.WriteLine($"Predict: {predictMicroseconds:F1} µs per inference (mean of {count}; checksum {checksum})");
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

/// <summary>
/// Reads a NumPy .npy file: format version 1.0, little-endian, C order. The header is a Python dict
/// literal such as <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2000, 1, 28, 28), }</c>.
/// </summary>
internal static class Npy
{
    public delegate T Reader<T>(ReadOnlySpan<byte> bytes);

    public static T[] Read<T>(string path, string descr, out int[] shape, Reader<T> read)
        where T : unmanaged
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY" || bytes[6] != 1)
        {
            throw new InvalidDataException($"{path}: not a version 1.0 .npy file");
        }

        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        if (!header.Contains($"'{descr}'") || header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException($"{path}: expected '{descr}' in C order, found {header}");
        }

        int open = header.IndexOf('(', header.IndexOf("'shape'", StringComparison.Ordinal));
        int close = header.IndexOf(')', open);
        shape = header[(open + 1)..close]
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(int.Parse)
            .ToArray();

        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        ReadOnlySpan<byte> payload = bytes.AsSpan(10 + headerLength);
        var values = new T[payload.Length / size];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = read(payload.Slice(i * size, size));
        }

        return values;
    }
}
