#!/usr/bin/env bash
# The whole test suite: system libraries, the profile loader's and the TOML compiler's fuzz runs,
# the model check, the consumer check, the conservation soak (short form), then every Swift test
# target. `scripts/test.sh --sanitizers` runs the engine suites under ThreadSanitizer and under
# AddressSanitizer + UndefinedBehaviorSanitizer instead (C core included; ~N min, see
# docs/reliability.md). Other arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# Swift Testing captures a backtrace (an allocation) for every thrown error by default; the
# allocation-counting tests need it off to see the engine's own zero.
export SWT_SWIFT_ERROR_BACKTRACING_ENABLED=0
# One quiet step: its output only when it fails, else its last line.
step() { # $1 = what, rest = command
  local what="$1" log
  shift
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    echo "$what: failed (output above)" >&2
    exit 1
  fi
  tail -1 "$log"
  rm -f "$log"
}
if [ "${1:-}" = "--sanitizers" ]; then
  shift
  # The engine suites (both backends, C core included) under each sanitizer, one scratch path
  # each. Under ASan the suites' time-bounded stress tests scale down (they read spmc_available()).
  # swiftc has no UndefinedBehaviorSanitizer: UBSan instruments the C core (and the C/C++ of the
  # dependencies) through -Xcc; ASan covers Swift and C. vptr and function are left out: they need
  # C++ RTTI and type prefixes the Swift-to-C callbacks do not have.
  step "asan+ubsan" env ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions="$PWD/scripts/lsan.supp" \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    swift test --sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize=vptr,function \
    -Xcc -fno-sanitize-recover=undefined --scratch-path .build-asan --no-parallel --filter EngineSuites "$@"
  step "tsan" env TSAN_OPTIONS=halt_on_error=1 \
    swift test --sanitize=thread --scratch-path .build-tsan --no-parallel --filter EngineSuites "$@"
  exit 0
fi
# The profile loader's fuzz corpus replay and a fixed-seed run first (quiet unless it fails), so
# the test runner's summary is the last thing printed.
if [ -x CSupport/fuzz/run.sh ] && [ $# -eq 0 ]; then
  log=$(mktemp)
  if ! CSupport/fuzz/run.sh >"$log" 2>&1; then
    cat "$log"
    echo "fuzz: the profile loader fuzz run failed (output above)" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs|corpus" "$log" | tail -2 || true
  rm -f "$log"
fi
# The sleep/wake handshake, model-checked with spin (CSupport/model): ~10 s, one line per check
# only when one does not end as expected.
if [ $# -eq 0 ]; then
  log=$(mktemp)
  if ! scripts/model-check.sh >"$log" 2>&1; then
    cat "$log"
    echo "model-check: a spin check did not end as expected (output above)" >&2
    exit 1
  fi
  tail -1 "$log"
  rm -f "$log"
fi
# A throwaway service package that adds Spindle by version (`from: "0.1.0"`) builds and runs an
# engine: SwiftPM refuses unsafe flags in such a dependency (~1 min; one line unless it fails).
if [ $# -eq 0 ]; then
  log=$(mktemp)
  if ! scripts/consumer-check.sh >"$log" 2>&1; then
    cat "$log"
    echo "consumer-check: Spindle does not build or run as a versioned dependency (output above)" >&2
    exit 1
  fi
  tail -1 "$log"
  rm -f "$log"
fi
# The TOML profile compiler's libFuzzer target (Fuzz/): corpus replay and 20,000 seeded runs.
if [ $# -eq 0 ]; then
  step "fuzz-toml" Fuzz/run-toml.sh
fi
# The conservation soak, short form: ≥ 10^7 posts through engines that shut down mid-flood, every
# count checked against the producers' and handlers' tallies (Sources/spindle-soak).
if [ $# -eq 0 ]; then
  step "soak" scripts/soak.sh --events 1e7 --seconds 120
fi
# One test at a time: engine suites pin workers to the same CPUs and count threads and fds.
swift test --no-parallel "$@"
