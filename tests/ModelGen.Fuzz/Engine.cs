using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using ModelGen.Onnx;

namespace ModelGen.Fuzz;

public sealed record FuzzOptions
{
    public long Executions { get; init; } = long.MaxValue;
    public double Seconds { get; init; } = double.PositiveInfinity;
    public int Seed { get; init; } = 1;
    public int TimeoutMs { get; init; } = 10_000;
    public long MaxAllocBytes { get; init; } = 1L << 30;
    public required string Corpus { get; init; }
    public required string Findings { get; init; }
    /// <summary>Write each input to findings/current-&lt;target&gt;.bin before running it (to keep the input that kills the process).</summary>
    public bool KeepCurrent { get; init; }
}

/// <summary>What one execution did: its outcome class (for the corpus), and a finding if it broke the contract.</summary>
public sealed record Outcome(string Class, string? Finding, string? Detail, TimeSpan Time, long Allocated);

/// <summary>
/// Runs one target: every seed, then mutants of the corpus (an input joins the corpus when it ends in
/// an outcome not seen before: success or an error code and message shape). Each execution is watched
/// for exceptions other than <see cref="ModelGenException"/>, MG9000, allocation over the cap and (by
/// the caller's watchdog) time over the limit.
/// </summary>
public sealed partial class Engine(Target target, FuzzOptions options)
{
    const int MaxCorpus = 4096;

    public long Executions { get; private set; }
    public int Findings => _signatures.Count;

    /// <summary>The input running now and when it started (Stopwatch ticks, 0 between executions): the watchdog reads them.</summary>
    public byte[] Current { get; private set; } = [];
    long _started;

    readonly HashSet<string> _signatures = [];

    public static Outcome Execute(Target target, byte[] input, long maxAlloc)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        string cls;
        string? finding = null, detail = null;
        try
        {
            target.Run(input);
            cls = "ok";
        }
        catch (ModelGenException e) when (e.Code != ErrorCodes.Internal)
        {
            cls = e.Code + " " + Shape(e.Message);
        }
        catch (Exception e)
        {
            cls = "crash";
            finding = $"crash-{e.GetType().Name}-{Frame(e)}";
            detail = e.ToString();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (finding is null && allocated > maxAlloc)
        {
            finding = "alloc";
            detail = $"{allocated} bytes allocated in one execution (cap {maxAlloc}); outcome {cls}";
        }
        return new Outcome(cls, finding, detail, clock.Elapsed, allocated);
    }

    /// <summary>The first frame in ModelGen code: the place a crash is deduplicated by.</summary>
    static string Frame(Exception e)
    {
        var frames = new StackTrace(e).GetFrames();
        var ours = frames.FirstOrDefault(f => f.GetMethod()?.DeclaringType?.FullName?.StartsWith("ModelGen.", StringComparison.Ordinal) == true)
            ?? frames.FirstOrDefault();
        var m = ours?.GetMethod();
        return m is null ? "unknown" : Safe($"{m.DeclaringType?.Name}.{m.Name}");
    }

    static string Safe(string s) => Unsafe().Replace(s, "_");

    /// <summary>The start of the message without numbers, quoted names, lists and header text: errors of one kind share it.</summary>
    static string Shape(string message)
    {
        string s = Listed().Replace(Braced().Replace(Quoted().Replace(message, "''"), "{}"), "[]");
        s = Digits().Replace(s, "#");
        return s.Length > 56 ? s[..56] : s;
    }

    public void Run()
    {
        var seeds = Directory.Exists(Path.Combine(options.Corpus, target.Name))
            ? Directory.GetFiles(Path.Combine(options.Corpus, target.Name)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList()
            : [];
        // The compile target mutates the ONNX seeds.
        if (target.Name == "compile" && Directory.Exists(Path.Combine(options.Corpus, "onnx")))
            seeds.AddRange(Directory.GetFiles(Path.Combine(options.Corpus, "onnx")).Order(StringComparer.Ordinal).Select(File.ReadAllBytes));
        if (seeds.Count == 0) throw new InvalidOperationException($"no seeds in {Path.Combine(options.Corpus, target.Name)}; run the `seeds` command");
        var corpus = new List<byte[]>();
        var classes = new HashSet<string>(StringComparer.Ordinal);
        var rng = new Random(options.Seed * 1_000_003 + Array.IndexOf(Targets.All, target));
        var mutator = new Mutator(rng, target.Message);
        var clock = Stopwatch.StartNew();
        TimeSpan slowest = default, lastReport = default;
        long mostAllocated = 0;
        int seedIndex = 0;
        while (Executions < options.Executions && clock.Elapsed.TotalSeconds < options.Seconds)
        {
            // The seeds as they are first (regression inputs among them), then mutants.
            bool seed = seedIndex < seeds.Count;
            byte[] input = seed ? seeds[seedIndex++]
                : mutator.Mutate(corpus.Count > 0 ? corpus[rng.Next(corpus.Count)] : seeds[rng.Next(seeds.Count)],
                    corpus.Count > 0 ? corpus[rng.Next(corpus.Count)] : seeds[rng.Next(seeds.Count)], target.MaxInputBytes);
            Current = input;
            if (options.KeepCurrent) File.WriteAllBytes(Path.Combine(Directory.CreateDirectory(options.Findings).FullName, $"current-{target.Name}.bin"), input);
            Volatile.Write(ref _started, Stopwatch.GetTimestamp());
            var outcome = Execute(target, input, options.MaxAllocBytes);
            Volatile.Write(ref _started, 0);
            Executions++;
            if (outcome.Time > slowest) slowest = outcome.Time;
            mostAllocated = Math.Max(mostAllocated, outcome.Allocated);
            if (outcome.Finding is { } finding) Report(finding, input, outcome.Detail!);
            else if (classes.Add(outcome.Class) || seed)
            {
                if (corpus.Count < MaxCorpus) corpus.Add(input);
                else corpus[rng.Next(MaxCorpus)] = input;
            }
            if (clock.Elapsed - lastReport > TimeSpan.FromSeconds(30))
            {
                lastReport = clock.Elapsed;
                Console.WriteLine($"fuzz {target.Name}: {Executions} execs, {Executions / clock.Elapsed.TotalSeconds:F0}/s, corpus {corpus.Count}, findings {Findings}");
            }
        }
        Console.WriteLine(FormattableString.Invariant(
            $"fuzz {target.Name}: {Executions} execs in {clock.Elapsed.TotalSeconds:F1} s ({Executions / clock.Elapsed.TotalSeconds:F0}/s), seeds {seeds.Count}, corpus {corpus.Count}, outcomes {classes.Count}, slowest {slowest.TotalMilliseconds:F0} ms, most allocated {mostAllocated / 1e6:F1} MB, findings {Findings}"));
    }

    /// <summary>How long the running execution has taken (zero between executions).</summary>
    public TimeSpan Running
    {
        get
        {
            long started = Volatile.Read(ref _started);
            return started == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(started);
        }
    }

    public void Report(string finding, byte[] input, string detail)
    {
        if (!_signatures.Add(finding)) return;
        string dir = Directory.CreateDirectory(Path.Combine(options.Findings, target.Name)).FullName;
        string stem = Path.Combine(dir, $"{finding}-{Targets.Hash(input):x16}");
        File.WriteAllBytes(stem + ".bin", input);
        File.WriteAllText(stem + ".txt", $"target {target.Name}\n{detail}\n", Encoding.UTF8);
        Console.WriteLine($"fuzz {target.Name}: FINDING {finding}: {stem}.bin");
        Console.WriteLine("  " + detail.Split('\n').Take(6).Aggregate((a, b) => a + "\n  " + b));
    }

    [GeneratedRegex(@"'[^']*'")]
    private static partial Regex Quoted();

    [GeneratedRegex(@"\{[^}]*\}?")]
    private static partial Regex Braced();

    [GeneratedRegex(@"\[[^\]]*\]?")]
    private static partial Regex Listed();

    [GeneratedRegex(@"\d+")]
    private static partial Regex Digits();

    [GeneratedRegex(@"[^A-Za-z0-9_.-]")]
    private static partial Regex Unsafe();
}
