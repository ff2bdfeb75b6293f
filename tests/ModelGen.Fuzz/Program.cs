using System.Globalization;
using ModelGen.Fuzz;

// modelgen fuzzer (docs/fuzzing.md):
//   fuzz <target|all> [--execs N] [--seconds S] [--seed N] [--timeout-ms N] [--max-alloc-mb N] [--corpus DIR] [--findings DIR] [--keep-current]
//   fuzz repro <target> <file>...     run inputs once and print what each did
//   fuzz minimize <target> <file> [out] the smallest input (by deleting bytes) that gives the same finding
//   fuzz seeds [DIR]                   (re)write the seed corpus
//   fuzz list                          the targets
// Exit code: 0 no finding, 1 findings (saved under --findings), 2 a hang (the input saved), 64 bad usage.

AppDomain.CurrentDomain.ProcessExit += (_, _) => Targets.Cleanup();
string corpusDefault = Path.Combine(AppContext.BaseDirectory, "corpus");
if (args.Length == 0 || args[0] is "-h" or "--help") return Usage();
switch (args[0])
{
    case "list":
        foreach (var t in Targets.All) Console.WriteLine($"{t.Name,-8} {t.Description}");
        return 0;
    case "seeds":
    {
        string dir = args.Length > 1 ? args[1] : Path.Combine("tests", "ModelGen.Fuzz", "corpus");
        Seeds.Write(dir);
        Console.WriteLine($"fuzz: seeds written to {Path.GetFullPath(dir)}");
        return 0;
    }
    case "minimize":
    {
        // Delta debugging: drop ever smaller chunks while the input still gives the same finding.
        if (args.Length < 3 || Find(args[1]) is not { } target) return Usage();
        byte[] input = File.ReadAllBytes(args[2]);
        string? finding = Engine.Execute(target, input, 1L << 30).Finding;
        if (finding is null) { Console.Error.WriteLine($"{args[2]}: no finding to keep"); return 1; }
        for (int chunk = input.Length / 2; chunk >= 1; chunk /= 2)
            for (int at = 0; at + chunk <= input.Length;)
            {
                byte[] smaller = [.. input[..at], .. input[(at + chunk)..]];
                if (Engine.Execute(target, smaller, 1L << 30).Finding == finding) input = smaller;
                else at += chunk;
            }
        string output = args.Length > 3 ? args[3] : args[2] + ".min";
        File.WriteAllBytes(output, input);
        Console.WriteLine($"{output}: {input.Length} bytes, {finding}; base64 {Convert.ToBase64String(input)}");
        return 0;
    }
    case "repro":
    {
        if (args.Length < 3 || Find(args[1]) is not { } target) return Usage();
        int status = 0;
        foreach (string file in args[2..])
        {
            var o = Engine.Execute(target, File.ReadAllBytes(file), 1L << 30);
            Console.WriteLine(FormattableString.Invariant($"{file}: {o.Finding ?? o.Class} ({o.Time.TotalMilliseconds:F0} ms, {o.Allocated / 1e6:F1} MB)"));
            if (o.Detail is not null) Console.WriteLine(o.Detail);
            if (o.Finding is not null) status = 1;
        }
        return status;
    }
}

var targets = args[0] == "all" ? Targets.All : Find(args[0]) is { } one ? [one] : null;
if (targets is null) return Usage();
var options = new FuzzOptions { Corpus = corpusDefault, Findings = Path.Combine("artifacts", "fuzz-findings") };
bool ExecsGiven = false;
for (int i = 1; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    long Number() => long.Parse(Value(), CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--execs": options = options with { Executions = Number() }; ExecsGiven = true; break;
        case "--seconds": options = options with { Seconds = double.Parse(Value(), CultureInfo.InvariantCulture) }; break;
        case "--seed": options = options with { Seed = (int)Number() }; break;
        case "--timeout-ms": options = options with { TimeoutMs = (int)Number() }; break;
        case "--max-alloc-mb": options = options with { MaxAllocBytes = Number() << 20 }; break;
        case "--corpus": options = options with { Corpus = Value() }; break;
        case "--findings": options = options with { Findings = Value() }; break;
        case "--keep-current": options = options with { KeepCurrent = true }; break;
        default: return Usage();
    }
}
if (!ExecsGiven && double.IsPositiveInfinity(options.Seconds)) options = options with { Executions = 10_000 };

int failed = 0;
long total = 0;
foreach (var target in targets)
{
    var engine = new Engine(target, options);
    Exception? error = null;
    // The fuzz loop runs on its own thread (8 MB of stack, as a process's main thread) so this one can watch the time.
    var worker = new Thread(() => { try { engine.Run(); } catch (Exception e) { error = e; } }, 8 << 20) { IsBackground = true };
    worker.Start();
    while (!worker.Join(100))
    {
        if (engine.Running.TotalMilliseconds <= options.TimeoutMs) continue;
        // A hang: the input is saved and the process ends (a thread cannot be stopped).
        engine.Report("hang", engine.Current, $"an execution ran over {options.TimeoutMs} ms");
        Console.WriteLine($"fuzz: Passed: 0, Failed: 1 (hang in {target.Name})");
        return 2;
    }
    if (error is not null) { Console.Error.WriteLine($"fuzz {target.Name}: the fuzzer failed: {error}"); return 64; }
    total += engine.Executions;
    if (engine.Findings > 0) failed++;
}
Console.WriteLine($"fuzz: Passed: {targets.Length - failed}, Failed: {failed} (targets without and with findings; {total} executions)");
return failed > 0 ? 1 : 0;

static Target? Find(string name) => Targets.All.FirstOrDefault(t => t.Name == name);

static int Usage()
{
    Console.Error.WriteLine("usage: fuzz <target|all> [--execs N] [--seconds S] [--seed N] [--timeout-ms N] [--max-alloc-mb N] [--corpus DIR] [--findings DIR] [--keep-current]");
    Console.Error.WriteLine("       fuzz repro <target> <file>... | fuzz minimize <target> <file> [out] | fuzz seeds [DIR] | fuzz list");
    Console.Error.WriteLine($"targets: {string.Join(", ", Targets.All.Select(t => t.Name))}");
    return 64;
}
