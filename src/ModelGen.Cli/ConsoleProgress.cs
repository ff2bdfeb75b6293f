using System.Diagnostics;
using ModelGen.Compiler;

namespace ModelGen.Cli;

/// <summary>
/// Shows how the long steps of a compile advance. On a terminal, one line rewritten in place; otherwise (the
/// MSBuild task reads stdout, and relays lines starting with "modelgen: " at normal verbosity) plain lines, at
/// most one every two seconds per phase, none for a phase that ends within two seconds.
/// </summary>
public sealed class ConsoleProgress(TextWriter output, bool live, Func<TimeSpan>? clock = null) : IProgress<CompileProgress>
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    readonly Func<TimeSpan> _clock = clock ?? StartClock();
    readonly Lock _lock = new();
    readonly Dictionary<string, (TimeSpan Started, TimeSpan Last, bool Shown)> _phases = new(StringComparer.Ordinal);
    int _liveLength;
    TimeSpan _lastLive = TimeSpan.FromSeconds(-1);

    /// <summary>On the console: live when stdout is a terminal.</summary>
    public ConsoleProgress() : this(Console.Out, !Console.IsOutputRedirected) { }

    static Func<TimeSpan> StartClock()
    {
        var watch = Stopwatch.StartNew();
        return () => watch.Elapsed;
    }

    public void Report(CompileProgress value)
    {
        lock (_lock)
        {
            var now = _clock();
            if (!_phases.TryGetValue(value.Phase, out var phase)) phase = (now, TimeSpan.Zero, false);
            var elapsed = now - phase.Started;
            bool done = value.Done >= value.Total;
            string line = $"modelgen: {value.Phase}: {value.Done} of {value.Total}{(value.Item is null ? "" : $" ({value.Item})")}, {elapsed.TotalSeconds:F0} s";
            if (live)
            {
                // Ten updates a second are plenty.
                if (!done && now - _lastLive < TimeSpan.FromMilliseconds(100)) { _phases[value.Phase] = phase; return; }
                _lastLive = now;
                // The line in place; a finished phase that took a while stays on screen.
                string text = line.Length > 119 ? line[..119] : line;
                output.Write("\r" + text.PadRight(_liveLength));
                _liveLength = text.Length;
                if (done)
                {
                    if (elapsed >= Interval) output.WriteLine();
                    else output.Write("\r" + new string(' ', _liveLength) + "\r");
                    _liveLength = 0;
                }
            }
            else if (elapsed >= Interval && (elapsed - phase.Last >= Interval || done && phase.Shown))
            {
                output.WriteLine(line);
                phase = (phase.Started, elapsed, true);
            }
            // A finished phase starts afresh when it comes again (GPTQ once per mixed-weights preparation).
            if (done) _phases.Remove(value.Phase);
            else _phases[value.Phase] = phase;
        }
    }
}
