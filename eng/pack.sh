#!/usr/bin/env bash
# Packs ModelGen from the sources into artifacts/feed, a folder any project can use as a NuGet source:
#   ModelGen.<version>.nupkg      the MSBuild package (CompressedModel items, the task, the generator)
#   ModelGen.Cli.<version>.nupkg  the .NET tool `modelgen` (compile, inspect, bench): the same engine
# usage: bash eng/pack.sh            prints the feed's path last
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

dotnet pack "$root/src/ModelGen.Package" -c Release -nodeReuse:false
dotnet pack "$root/src/ModelGen.Cli" -c Release -nodeReuse:false

ls -l "$root/artifacts/feed/"*.nupkg
echo "feed: $root/artifacts/feed"
