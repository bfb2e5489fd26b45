#!/usr/bin/env bash
# README's test command, `cargo test`, one test binary at a time: every
# binary runs even when an earlier one fails, each under its own time limit
# (a hang is killed and named), and the last line is the totals over all of
# them: `N passed, N failed, N skipped` (skipped: #[ignore]d tests and the
# skips tests record in target/test-skips/, each with its reason).
#
# Usage: ci/test.sh [BINARY...]   (default: all; names as in `budget` below)
set -uo pipefail
cd "$(dirname "$0")/.."

# Time limit per binary, in seconds: about twice its cold run on 2 cores.
budget() {
  case "$1" in
    cves) echo 1800 ;;          # upstream, its ASan build, 21 reproductions
    upstream_suite) echo 1800 ;; # Redis's own suites, both lines
    old_host) echo 1200 ;;      # builds glibc 2.11.3, runs both releases on it
    e2e | redis80) echo 900 ;;  # a cold release build each
    repro) echo 2400 ;;         # three cold rebuilds, about 890 s: the default, the static and the aarch64 target
    nodes_conf | security) echo 900 ;;
    install) echo 600 ;;        # two old-host roots; a cold 7.0 build if e2e did not run
    cluster_diagnose) echo 900 ;; # 9 clusters in network namespaces, about 35 s warm
    bench_debian) echo 300 ;;   # Debian's 7.0 and 8.0 servers fetched (about 30 MB) and run from their roots, about 30 s
    pgo) echo 900 ;;            # an instrumented 7.0 build and a short training (about 2 min cold)
    aarch64) echo 900 ;;        # a cold build of the aarch64 target (zig's runtime, OpenSSL, Redis 7.0), run under qemu
    musl_static) echo 1500 ;;   # cold builds of the static target (zig's musl runtime, OpenSSL, Redis) and, alone, of the default and the aarch64 one (dist --target all)
    *) echo 600 ;;
  esac
}

# name and the cargo test arguments that select it (selections that keep the
# workspace's dependency features, so nothing is compiled twice)
targets=(
  "libs|--workspace --lib"
  "xtask-bin|-p xtask --bins"
)
for t in xtask/tests/*.rs; do
  n=$(basename "$t" .rs)
  targets+=("$n|-p xtask --test $n")
done
targets+=("doc|--workspace --doc")

wanted=("$@")
selected() {
  [ ${#wanted[@]} -eq 0 ] && return 0
  local w
  for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

# Everything compiles first; a binary that does not compile fails below,
# named, and the others still run.
cargo test --workspace --no-run || echo "ci/test.sh: some tests do not compile"

skips=target/test-skips
rm -rf "$skips"
mkdir -p target/ci
passed=0 failed=0 ignored=0
failures=()
start_all=$(date +%s)
for entry in "${targets[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  selected "$name" || continue
  limit=$(budget "$name")
  log=target/ci/$name.log
  echo "=== $name (limit ${limit}s)"
  start=$(date +%s)
  # shellcheck disable=SC2086 # args is a word list
  timeout --kill-after=30 "$limit" cargo test --no-fail-fast $args 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  took=$(($(date +%s) - start))
  # libtest's summary lines: `test result: ok. 5 passed; 0 failed; 1 ignored; …`
  read -r p f i < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$log" |
    awk '{p += $1; f += $2; i += $3} END {print p + 0, f + 0, i + 0}')
  passed=$((passed + p)) failed=$((failed + f)) ignored=$((ignored + i))
  if [ "$code" -eq 124 ] || { [ "$code" -eq 137 ] && [ "$took" -ge "$limit" ]; }; then
    failed=$((failed + 1))
    failures+=("$name: killed after its ${limit}s limit (${took}s)")
  elif [ "$code" -ne 0 ]; then
    [ "$f" -eq 0 ] && failed=$((failed + 1))
    failures+=("$name: exit $code, $f failed (${took}s)")
  fi
  echo "=== $name: $p passed, $f failed, $i ignored, exit $code, ${took}s"
done

recorded=0
if [ -d "$skips" ]; then
  for s in "$skips"/*; do
    [ -f "$s" ] || continue
    recorded=$((recorded + 1))
    echo "skipped: $(basename "$s"): $(cat "$s")"
  done
fi
for f in ${failures[@]+"${failures[@]}"}; do echo "FAILED: $f"; done
echo "all binaries: $(($(date +%s) - start_all))s"
# A test that recorded a skip returned without failing: libtest counted it
# as passed.
echo "$((passed - recorded)) passed, $failed failed, $((ignored + recorded)) skipped"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
