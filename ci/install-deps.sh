#!/usr/bin/env bash
# Debian/Ubuntu packages the build and the tests need beyond Rust:
# bubblewrap (the build sandbox), make and perl (Redis and OpenSSL builds),
# curl (downloads), gcc (host-toolchain fixtures and the sanitizer build),
# g++ (the 8.0 sanitizer build compiles deps/fast_float as C++),
# python3-pip (fetching the pinned zig wheel), python3-venv (the CycloneDX
# validator of the SBOM test), openssl (the smoke test's certificates), tcl,
# tcl-tls (Redis's own test suite, its TLS run and, with openssl, its test
# certificates), linux-libc-dev (the kernel
# headers the glibc 2.11 target host is built with), libssl-dev (the seed's
# build against the host's shared OpenSSL, shown failing on that host),
# openssh-client (ssh-keygen: signed releases), shellcheck (install.sh and
# the init scripts checked as POSIX sh), qemu-user (the aarch64 target's
# programs run under qemu-aarch64), llvm-22 and libclang-rt-22-dev (the
# training run of `cargo xtask pgo`: llvm-profdata and the profile runtime of
# zig's LLVM version) and apt's own tools.
set -euo pipefail
pkgs=(bubblewrap make perl curl gcc g++ libc6-dev ca-certificates python3-venv tcl tcl-tls openssl linux-libc-dev libssl-dev openssh-client shellcheck qemu-user llvm-22 libclang-rt-22-dev)
command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || pkgs+=(python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
