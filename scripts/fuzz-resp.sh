#!/usr/bin/env bash
# Builds the libFuzzer target for the key-value example's RESP parser (pure Swift:
# `swiftc -sanitize=fuzzer,address` over Examples/KeyValue/RESP + fuzz/fuzz_resp.swift) and runs it.
#
#   scripts/fuzz-resp.sh                 replay the committed corpus, then a fixed seeded run
#                                        (-seed=1, at most $SECONDS_BOUND s, default 15; ~30 s with the build)
#   scripts/fuzz-resp.sh --seconds S     fuzz S seconds on a scratch copy of the corpus (long runs)
#   scripts/fuzz-resp.sh --runs N        fuzz N executions on a scratch copy of the corpus (the long run)
#   scripts/fuzz-resp.sh --coverage S    fuzz S seconds with coverage and print the parser's line coverage
#
# Exits non-zero on a crash, a sanitizer report or a broken property (see fuzz_resp.swift); the
# input that broke it is written to Examples/KeyValue/fuzz/artifacts/ — add it to the corpus once fixed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
here="$root/Examples/KeyValue/fuzz"
out="${SPINDLE_FUZZ_OUT:-$root/.build-fuzz}"
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
bindir="$(dirname "$swiftc")"
mkdir -p "$out" "$here/artifacts"
# Swift's own crash backtracer would take the trap first and libFuzzer would not save the input.
export SWIFT_BACKTRACE=enable=no
sources=("$root"/Examples/KeyValue/RESP/*.swift "$here/fuzz_resp.swift")
build() { # $1 = output, rest = flags; skipped when the binary is newer than every source
  local bin="$1"; shift
  if [ -x "$bin" ] && [ -z "$(find "${sources[@]}" "$0" -newer "$bin" 2>/dev/null)" ]; then return; fi
  # The parser and the entry point in one module (no import), optimised as the server builds it.
  "$swiftc" -parse-as-library -module-name RESPFuzz -O "$@" "${sources[@]}" -o "$bin" >"$out/resp-build.log" 2>&1 \
    || { cat "$out/resp-build.log" >&2; echo "fuzz-resp: build failed" >&2; exit 1; }
}
mode="${1:-replay}"
case "$mode" in
  --seconds)
    secs="${2:?--seconds S}"
    build "$out/fuzz_resp" -sanitize=fuzzer,address
    work="$out/resp-corpus-long"; mkdir -p "$work"; cp -n "$here/corpus/"* "$work/" 2>/dev/null || true
    exec "$out/fuzz_resp" -max_total_time="$secs" -max_len=4096 -artifact_prefix="$here/artifacts/" "$work" ;;
  --runs)
    runs="${2:?--runs N}"
    build "$out/fuzz_resp" -sanitize=fuzzer,address
    work="$out/resp-corpus-long"; mkdir -p "$work"; cp -n "$here/corpus/"* "$work/" 2>/dev/null || true
    exec "$out/fuzz_resp" -runs="$runs" -max_len=4096 -print_final_stats=1 -artifact_prefix="$here/artifacts/" "$work" ;;
  --coverage)
    secs="${2:?--coverage SECONDS}"
    build "$out/fuzz_resp_cov" -sanitize=fuzzer -profile-generate -profile-coverage-mapping
    work="$out/resp-corpus-cov"; mkdir -p "$work"; cp -n "$here/corpus/"* "$work/" 2>/dev/null || true
    LLVM_PROFILE_FILE="$out/resp.profraw" "$out/fuzz_resp_cov" -max_total_time="$secs" -max_len=4096 "$work" 2>"$out/resp-cov-run.log"
    LLVM_PROFILE_FILE="$out/resp.profraw" "$out/fuzz_resp_cov" -runs=0 "$work" 2>>"$out/resp-cov-run.log"
    "$bindir/llvm-profdata" merge -sparse "$out/resp.profraw" -o "$out/resp.profdata"
    "$bindir/llvm-cov" report "$out/fuzz_resp_cov" -instr-profile="$out/resp.profdata" "$root"/Examples/KeyValue/RESP/*.swift ;;
  replay)
    build "$out/fuzz_resp" -sanitize=fuzzer,address
    # Every committed input, then a fixed, seeded, time-bounded run that starts from them.
    "$out/fuzz_resp" -runs=0 "$here/corpus"
    work="$out/resp-corpus-replay"; rm -rf "$work"; mkdir -p "$work"; cp "$here/corpus/"* "$work/"
    "$out/fuzz_resp" -seed=1 -runs="${RUNS:-2000000}" -max_total_time="${SECONDS_BOUND:-15}" -max_len=4096 \
      -artifact_prefix="$here/artifacts/" "$work" ;;
  *) echo "usage: $0 [--seconds S | --runs N | --coverage S]" >&2; exit 2 ;;
esac
