using System;
using System.IO;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using ModelGen.Artifact;
using ModelGen.Generator.Emit;

namespace ModelGen.Generator;

/// <summary>
/// Turns every AdditionalFiles item ending in ".mgen" (written by the ModelGen MSBuild task) into the
/// model's class. Pipeline: artifact text → (hint name, source or error), cached on the text's content;
/// source and diagnostics leave through one output, since an artifact has no location worth tracking.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class ModelGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        // Step 1: the artifacts' path and text. Strings compare by value, so an unchanged artifact is cached.
        var artifacts = context.AdditionalTextsProvider
            .Where(static f => f.Path.EndsWith(".mgen", StringComparison.OrdinalIgnoreCase))
            .Select(static (f, ct) => new ArtifactInput(f.Path, f.GetText(ct)?.ToString() ?? ""))
            .WithTrackingName("ModelGen.Artifacts");

        // Step 2: parse and emit; the result is a plain equatable record (no symbols, no syntax).
        var results = artifacts
            .Select(static (a, _) => EmitOne(a))
            .WithTrackingName("ModelGen.Emit");

        context.RegisterSourceOutput(results, static (spc, r) =>
        {
            if (r.Error is not null)
            {
                spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.BadArtifact, Location.None, r.Path, r.Error));
                return;
            }
            spc.AddSource(r.HintName!, SourceText.From(r.Source!, Encoding.UTF8));
        });
    }

    static EmitResult EmitOne(ArtifactInput input)
    {
        try
        {
            var model = ArtifactText.Read(input.Text);
            // A hint name takes no '@' (a namespace's keyword part, My.@class).
            return new EmitResult(input.Path, model.Namespace.Replace("@", "") + "." + ModelEmitter.FileName(model), ModelEmitter.Emit(model), null);
        }
        catch (Exception e) when (e is FormatException || e is ArgumentException || e is IndexOutOfRangeException || e is System.Collections.Generic.KeyNotFoundException)
        {
            return new EmitResult(input.Path, null, null, e.Message);
        }
    }

    sealed record ArtifactInput(string Path, string Text);

    sealed record EmitResult(string Path, string? HintName, string? Source, string? Error);
}

/// <summary>The generator's diagnostics; docs/diagnostics.md lists them with the compiler's.</summary>
public static class Diagnostics
{
    public static readonly DiagnosticDescriptor BadArtifact = new(
        id: "MG2001",
        title: "ModelGen artifact unreadable",
        messageFormat: "{0}: the ModelGen artifact cannot be read ({1}); delete the obj folder and rebuild so the compiler writes it again",
        category: "ModelGen",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);
}
