#!/usr/bin/env bash
# Runs every test: unit, generator, conformance against ONNX Runtime, and the end-to-end package tests
# (which pack ModelGen into artifacts/feed and build consumer projects with it).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1
# Installs what the tests need (qemu-user for the ARM64 tests), or says what to install.
bash eng/prerequisites.sh
mkdir -p artifacts
dotnet build ModelGen.sln -c Release -nodeReuse:false
# The ARM64 runner: Arm64Tests run the generated code on it under qemu-aarch64 (eng/prerequisites.sh installs qemu-user).
dotnet publish tests/ModelGen.Arm64Runner -c Release -o artifacts/arm64-runner -nodeReuse:false
set +e
dotnet test ModelGen.sln -c Release --no-build -nodeReuse:false 2>&1 | tee artifacts/test.log
status=${PIPESTATUS[0]}
# The generated kernels choose Vector512, Vector256, Vector128 or scalar code when they run; this
# machine takes the widest. The runtime's switches force each narrower path for the conformance grids
# and the whole models, so every path is compared with ONNX Runtime here. The training engine's vectors follow
# the same switches: its trained weights must keep their bits at every level (DeterminismTests).
kernels='FullyQualifiedName~Conformance|FullyQualifiedName~MnistModelTests|FullyQualifiedName~ArchitectureTests|FullyQualifiedName~QuantizationTests|FullyQualifiedName~TheTrainedWeightsAreTheSameBitsOnEveryMachine'
for level in DOTNET_EnableAVX512 DOTNET_EnableAVXVNNI DOTNET_EnableAVX DOTNET_EnableHWIntrinsic; do
  echo "== generated kernels with ${level}=0 =="
  env "${level}=0" dotnet test tests/ModelGen.Tests -c Release --no-build --filter "${kernels}" 2>&1 | tee -a artifacts/test.log
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
# The fuzzer (docs/fuzzing.md): a bounded run of every target from the seed corpus, deterministic for
# the seed up to the time cap; a crash, an MG9000, a hang or an allocation over 1 GB fails the script,
# its input saved under artifacts/fuzz-findings. Its line "fuzz: Passed: N, Failed: N" counts targets.
echo "== fuzz =="
dotnet run --project tests/ModelGen.Fuzz -c Release --no-build -- all --execs 20000 --seconds 30 --seed 1 2>&1 | tee -a artifacts/test.log
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
# One closing line CI can read: "N passed, N failed".
passed=$(grep -Eo 'Passed: +[0-9]+' artifacts/test.log | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' artifacts/test.log | awk '{s+=$2} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed"
exit "${status}"
