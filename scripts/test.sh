#!/usr/bin/env bash
# The whole test suite: system libraries, every Swift test target, then the profile loader's
# fuzz corpus replay and a fixed-seed fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# Swift Testing captures a backtrace (an allocation) for every thrown error by default; the
# allocation-counting tests need it off to see the engine's own zero.
export SWT_SWIFT_ERROR_BACKTRACING_ENABLED=0
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
# The key-value example's RESP parser under libFuzzer: corpus replay and a seeded run of ≤ 15 s
# (~30 s with its build; one line unless it fails).
if [ $# -eq 0 ]; then
  log=$(mktemp)
  if ! scripts/fuzz-resp.sh >"$log" 2>&1; then
    cat "$log"
    echo "fuzz-resp: the RESP parser fuzz run failed (output above)" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$log" | tail -1 || true
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
# The DocC documentation of every public module builds with no warning and documents every
# public symbol (~2 min on a loaded 2-core machine; one line unless it fails, then each warning and
# undocumented symbol).
if [ $# -eq 0 ]; then
  log=$(mktemp)
  if ! scripts/docs-check.sh >"$log" 2>&1; then
    cat "$log"
    echo "docs-check: the documentation has warnings or undocumented public symbols (output above)" >&2
    exit 1
  fi
  tail -1 "$log"
  rm -f "$log"
fi
# One test at a time: engine suites pin workers to the same CPUs and count threads and fds.
swift test --no-parallel "$@"
# The I/O source suites again in a process that runs under a real seccomp filter denying
# io_uring from its first instruction (as a container's profile may): every case meets the
# fallback, which logs once and behaves the same (~1 min; one line unless it fails).
if [ $# -eq 0 ]; then
  log=$(mktemp)
  if ! SPINDLE_TEST_DENY_IO_URING=1 swift test --skip-build --no-parallel \
      --filter 'IOSourceTests|TCPTests|RuntimeSourceTests|BackendFallbackTests' >"$log" 2>&1; then
    cat "$log"
    echo "io_uring denied: the I/O suites failed on the fallback (output above)" >&2
    exit 1
  fi
  echo "io_uring denied by seccomp: $(grep -E 'Test run with [0-9]+ tests' "$log" | tail -1)"
  rm -f "$log"
fi
# And a third time with the io_uring backend acting as on a 5.6–5.12 kernel (no multishot poll,
# recv or accept, no buffer rings: SP_FEAT bits 0x70 withheld), so the single-shot forms and
# PROVIDE_BUFFERS, which this kernel would never pick, are what the suites check.
if [ $# -eq 0 ]; then
  log=$(mktemp)
  if ! SPINDLE_TEST_URING_WITHHELD=0x70 swift test --skip-build --no-parallel \
      --filter 'IOSourceTests|TCPTests|RuntimeSourceTests|BackendFallbackTests' >"$log" 2>&1; then
    cat "$log"
    echo "older-kernel forms: the I/O suites failed with multishot and buffer rings withheld (output above)" >&2
    exit 1
  fi
  echo "io_uring as on 5.6-5.12 (multishot, buffer rings withheld): $(grep -E 'Test run with [0-9]+ tests' "$log" | tail -1)"
  rm -f "$log"
fi
