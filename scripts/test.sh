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
  local last
  last=$(tail -1 "$log")
  case "$last" in "$what"*) echo "$last" ;; *) echo "$what: $last" ;; esac
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
# Each step below is quiet: one line, or its whole output when it fails. They run before the Swift
# tests so the test runner's summary is near the end.
if [ $# -eq 0 ]; then
  # The profile loader's fuzz corpus replay and a fixed-seed run.
  [ -x CSupport/fuzz/run.sh ] && step "fuzz (profile loader)" CSupport/fuzz/run.sh
  # The key-value example's RESP parser under libFuzzer: corpus replay and a seeded run of ≤ 15 s.
  step "fuzz-resp" scripts/fuzz-resp.sh
  # The TOML profile compiler's libFuzzer target (Fuzz/): corpus replay and 20,000 seeded runs.
  step "fuzz-toml" Fuzz/run-toml.sh
  # The sleep/wake handshake, model-checked with spin (CSupport/model): ~25 s of CPU, two checks at a time.
  step "model-check" scripts/model-check.sh
  # A throwaway service package that adds Spindle by version (`from: "0.1.0"`) builds and runs an
  # engine: SwiftPM refuses unsafe flags in such a dependency (~1 min).
  step "consumer-check" scripts/consumer-check.sh
  # The DocC documentation of every public module builds with no warning and documents every
  # public symbol (~2 min).
  step "docs-check" scripts/docs-check.sh
  # The conservation soak, short form: ≥ 10^7 posts through engines that shut down mid-flood, every
  # count checked against the producers' and handlers' tallies (Sources/spindle-soak).
  step "soak" scripts/soak.sh --events 1e7 --seconds 120
fi
# One test at a time: engine suites pin workers to the same CPUs and count threads and fds.
swift test --no-parallel "$@"
if [ $# -eq 0 ]; then
  io_suites='IOSourceTests|TCPTests|RuntimeSourceTests|BackendFallbackTests'
  # The I/O source suites again in a process under a real seccomp filter denying io_uring from its
  # first instruction (as a container's profile may): every case meets the fallback, which logs
  # once and behaves the same.
  step "io_uring denied by seccomp" env SPINDLE_TEST_DENY_IO_URING=1 \
    swift test --skip-build --no-parallel --filter "$io_suites"
  # And a third time with the io_uring backend acting as on a 5.6–5.12 kernel (no multishot poll,
  # recv or accept, no buffer rings: SP_FEAT bits 0x70 withheld), so the single-shot forms and
  # PROVIDE_BUFFERS, which this kernel would never pick, are what the suites check.
  step "io_uring as on 5.6-5.12" env SPINDLE_TEST_URING_WITHHELD=0x70 \
    swift test --skip-build --no-parallel --filter "$io_suites"
fi
