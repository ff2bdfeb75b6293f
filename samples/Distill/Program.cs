// LeNet-5 and the student ModelGen distilled from it at build time (see Distill.csproj), side by side on the 2,000
// MNIST test digits: accuracy on the labels, agreement with the teacher's top class, weight bytes, arena and speed.
// The student was trained on the teacher's outputs alone; the labels here only score both.
//
// usage: Distill [folder with test-images.npy and test-labels.npy]
using System.Buffers.Binary;
using System.Diagnostics;
using Distill;

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

// The student keeps the teacher's contract: the same input and output sizes.
Model teacher = new("LeNet5 (teacher)", LeNet5.WeightBytes, LeNet5.ScratchBytes, LeNet5.Run);
Model student = new("LeNet5Student", LeNet5Student.WeightBytes, LeNet5Student.ScratchBytes, LeNet5Student.Run);

Span<float> scores = stackalloc float[LeNet5.OutputLength];
int teacherCorrect = 0, studentCorrect = 0, agree = 0;
for (int i = 0; i < count; i++)
{
    teacher.Run(Image(i), scores);
    int t = ArgMax(scores);
    student.Run(Image(i), scores);
    int s = ArgMax(scores);
    teacherCorrect += t == labels[i] ? 1 : 0;
    studentCorrect += s == labels[i] ? 1 : 0;
    agree += s == t ? 1 : 0;
}

// Speed: every digit, the two taking turns, five rounds after a warm-up (tiered JIT); the fastest round counts.
double teacherMicroseconds = double.MaxValue, studentMicroseconds = double.MaxValue;
for (int i = 0; i < Math.Min(count, 500); i++)
{
    teacher.Run(Image(i), scores);
    student.Run(Image(i), scores);
}

for (int round = 0; round < 5; round++)
{
    teacherMicroseconds = Math.Min(teacherMicroseconds, Time(teacher));
    studentMicroseconds = Math.Min(studentMicroseconds, Time(student));
}

Console.WriteLine($"LeNet-5 and its distilled student, {count:N0} test digits, one thread");
Console.WriteLine();
Console.WriteLine("| model            | weights      | scratch    | accuracy | agrees with teacher | Run, µs per inference |");
Console.WriteLine("|------------------|--------------|------------|----------|---------------------|-----------------------|");
Console.WriteLine($"| {teacher.Name,-16} | {teacher.WeightBytes,10:N0} B | {teacher.ScratchBytes,8:N0} B | {100.0 * teacherCorrect / count,7:F2}% | {"",19} | {teacherMicroseconds,21:F1} |");
Console.WriteLine($"| {student.Name,-16} | {student.WeightBytes,10:N0} B | {student.ScratchBytes,8:N0} B | {100.0 * studentCorrect / count,7:F2}% | {100.0 * agree / count,18:F2}% | {studentMicroseconds,21:F1} |");
Console.WriteLine();
Console.WriteLine($"student: {(double)teacher.WeightBytes / student.WeightBytes:F1}x fewer weight bytes, {teacherMicroseconds / studentMicroseconds:F1}x the speed, " +
                  $"accuracy {100.0 * (studentCorrect - teacherCorrect) / count:+0.00;-0.00;0.00} points (teacher {100.0 * teacherCorrect / count:F2}%, student {100.0 * studentCorrect / count:F2}%)");
return 0;

ReadOnlySpan<float> Image(int index) => images.AsSpan(index * LeNet5.InputLength, LeNet5.InputLength);

double Time(Model model)
{
    Span<float> output = stackalloc float[LeNet5.OutputLength];
    var stopwatch = Stopwatch.StartNew();
    for (int i = 0; i < count; i++)
    {
        model.Run(Image(i), output);
    }

    return stopwatch.Elapsed.TotalMicroseconds / count;
}

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
internal sealed record Model(string Name, int WeightBytes, int ScratchBytes, Model.RunFunction Run)
{
    public delegate void RunFunction(ReadOnlySpan<float> image, Span<float> scores);
}
