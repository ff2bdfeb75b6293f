#!/usr/bin/env bash
# Packs ModelGen from the sources into artifacts/feed, a folder any project can use as a NuGet source:
#   ModelGen.<version>.nupkg      the MSBuild package (CompressedModel items, the task, the generator)
#   ModelGen.Cli.<version>.nupkg  the .NET tool `modelgen` (compile, inspect, bench): the same engine
#   bash eng/pack.sh                      pack both; the last line is the feed's path
#   MODELGEN_SKIP_PACK=1 bash eng/pack.sh reuse the packages already there (fails when one is missing)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
feed="$root/artifacts/feed"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

if [[ "${MODELGEN_SKIP_PACK:-0}" != "1" ]]; then
  dotnet pack "$root/src/ModelGen.Package" -c Release -nodeReuse:false
  dotnet pack "$root/src/ModelGen.Cli" -c Release -nodeReuse:false
fi

for package in ModelGen ModelGen.Cli; do
  if ! compgen -G "$feed/$package.[0-9]*.nupkg" > /dev/null; then
    echo "eng/pack.sh: no $package package in $feed" >&2
    exit 1
  fi
done
ls -l "$feed/"*.nupkg
echo "feed: $feed"
