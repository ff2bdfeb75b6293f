#!/usr/bin/env bash
# Runs every test: unit, generator, conformance against ONNX Runtime, and the end-to-end package tests
# (which pack ModelGen into artifacts/feed and build consumer projects with it).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
mkdir -p artifacts
dotnet build ModelGen.sln -c Release -nodeReuse:false
set +e
dotnet test ModelGen.sln -c Release --no-build -nodeReuse:false 2>&1 | tee artifacts/test.log
status=${PIPESTATUS[0]}
set -e
# One closing line CI can read: "N passed, N failed".
passed=$(grep -Eo 'Passed: +[0-9]+' artifacts/test.log | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' artifacts/test.log | awk '{s+=$2} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed"
exit "${status}"
