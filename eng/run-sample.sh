#!/usr/bin/env bash
# Packs ModelGen from the sources into artifacts/feed, then builds and runs samples/Mnist against that
# package: LeNet-5 compiled into C# at build time, in float32 and compressed to int8, recognises the 2,000
# MNIST test digits; a table gives each one's weight bytes, accuracy and speed.
#   eng/run-sample.sh            pack, build, run
#   eng/run-sample.sh distill    the same for samples/Distill: LeNet-5 distilled into a student of 1/29 of its
#                                parameters at build time (a few minutes of training), teacher and student side by side
#   MODELGEN_SKIP_PACK=1 eng/run-sample.sh   reuse the package already in artifacts/feed
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

if [[ "${MODELGEN_SKIP_PACK:-0}" != "1" ]]; then
  dotnet pack "$root/src/ModelGen.Package" -c Release -nodeReuse:false
fi

# Every pack of the same version is a new package; drop the copy restored from an earlier pack.
rm -rf "$root/samples/.packages/modelgen"

case "${1:-mnist}" in
  mnist) sample=Mnist ;;
  distill) sample=Distill ;;
  *) echo "usage: eng/run-sample.sh [mnist|distill]" >&2; exit 2 ;;
esac

dotnet build "$root/samples/$sample" -c Release -nodeReuse:false
dotnet "$root/samples/$sample/bin/Release/net10.0/$sample.dll" "$root/data/mnist"
