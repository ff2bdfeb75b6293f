#!/usr/bin/env bash
# Installs, or names, what the tests need beyond the .NET SDK, so that eng/test.sh passes on a fresh
# Debian machine with nothing installed by hand. Sourced by eng/test.sh (and so by .ci/run).
#   Arm64Tests run the generated code on ARM64 under user-mode emulation: qemu-aarch64 and an ARM64
#   C library, from Debian's packages.
set -euo pipefail

if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET SDK 10 is required (dotnet on PATH): https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2
  exit 1
fi

arm64_packages="qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross"
if ! command -v qemu-aarch64 >/dev/null 2>&1 || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ -z "$sudo" ]; }; then
    echo "error: the ARM64 tests need qemu-user and an ARM64 C library, and this script cannot install them here." >&2
    echo "       On Debian or Ubuntu: sudo apt-get install ${arm64_packages}" >&2
    exit 1
  fi
  echo "Installing the ARM64 emulation the tests use: ${arm64_packages}"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $arm64_packages
fi
qemu-aarch64 --version | sed -n 1p  # sed reads it all: no SIGPIPE for pipefail to see
