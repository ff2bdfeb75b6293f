using System.Collections;
using Microsoft.Build.Framework;

namespace ModelGen.IntegrationTests.Support;

/// <summary>Collects what a task logs, for tests that run a task without MSBuild.</summary>
internal sealed class FakeBuildEngine : IBuildEngine
{
    public List<BuildErrorEventArgs> Errors { get; } = [];

    public List<BuildWarningEventArgs> Warnings { get; } = [];

    public List<BuildMessageEventArgs> Messages { get; } = [];

    public bool ContinueOnError => false;

    public int LineNumberOfTaskNode => 0;

    public int ColumnNumberOfTaskNode => 0;

    public string ProjectFileOfTaskNode => "Consumer.csproj";

    public void LogErrorEvent(BuildErrorEventArgs e) => Errors.Add(e);

    public void LogWarningEvent(BuildWarningEventArgs e) => Warnings.Add(e);

    public void LogMessageEvent(BuildMessageEventArgs e) => Messages.Add(e);

    public void LogCustomEvent(CustomBuildEventArgs e)
    {
    }

    public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) =>
        throw new NotSupportedException();

    public string Log =>
        string.Join("\n", Errors.Select(e => $"{e.File}: error {e.Code}: {e.Message}")
            .Concat(Warnings.Select(w => $"{w.File}: warning {w.Code}: {w.Message}"))
            .Concat(Messages.Select(m => m.Message)));
}
