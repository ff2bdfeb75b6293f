#!/usr/bin/env bash
# Packs ModelGen, publishes samples/Mnist as a NativeAOT binary and runs it: one native file, no
# .NET runtime and no ONNX Runtime on the target.
#   eng/publish-sample-aot.sh [runtime identifier]      default: the SDK's own (e.g. linux-x64)
#   MODELGEN_SKIP_PACK=1 eng/publish-sample-aot.sh      reuse the package already in artifacts/feed
# The binary goes to artifacts/samples/mnist-aot/<rid>/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

rid="${1:-$(dotnet --info | awk '/^ *RID:/ { print $2; exit }')}"
out="$root/artifacts/samples/mnist-aot/$rid"

if [[ "${MODELGEN_SKIP_PACK:-0}" != "1" ]]; then
  dotnet pack "$root/src/ModelGen.Package" -c Release -nodeReuse:false
fi

# Every pack of the same version is a new package; drop the copy restored from an earlier pack.
rm -rf "$root/samples/.packages/modelgen"

dotnet publish "$root/samples/Mnist" -c Release -r "$rid" -p:PublishAot=true -nodeReuse:false -o "$out"

binary="$out/Mnist"
[[ -f "$binary.exe" ]] && binary="$binary.exe"
echo "native binary: $binary ($(stat -c %s "$binary" 2>/dev/null || stat -f %z "$binary") bytes)"
"$binary" "$root/data/mnist"
