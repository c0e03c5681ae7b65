#!/usr/bin/env bash
# Builds the libFuzzer target for the TOML profile compiler (Fuzz/Sources/fuzz-toml: our own TOML
# parser, Sources/SpindleProfiles/TOMLParser.swift, pure Swift) and runs it under AddressSanitizer
# with LeakSanitizer on (ASan's default on Linux).
#
#   Fuzz/run-toml.sh                 replay the committed corpus, then a fixed run
#                                    (-seed=1 -runs=$RUNS, default 20000: ~15-25 s; debug build)
#   Fuzz/run-toml.sh --runs N        fuzz N executions in one process on a scratch copy of the corpus
#                                    (release build; MAX_TIME=S stops it after S seconds)
#   Fuzz/run-toml.sh --long S        the same, bounded by S seconds instead of a count
#   Fuzz/run-toml.sh --coverage S    fuzz S seconds with coverage instrumentation, then print line
#                                    coverage of Sources/SpindleProfiles (llvm-cov); CORPUS=DIR adds
#                                    DIR's inputs first (e.g. the long run's .build-fuzz-toml/corpus-long)
#
# Exits non-zero on a crash, a sanitizer report or a broken property (see FuzzTOML.swift). The
# fuzzer flags are given here on the command line, never in a manifest: no product target has them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scratch="${SPINDLE_FUZZ_TOML_OUT:-$here/../.build-fuzz-toml}"
bindir="$(dirname "$(command -v swift)")"
# libFuzzer without its main (SwiftPM gives the executable one; it calls LLVMFuzzerRunDriver).
# libFuzzer is C++: the link needs libstdc++ (nothing of Spindle's is C++).
driver="$(ls "$bindir"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)"
build() { # $1 = scratch path, $2 = configuration (debug: quicker to build, for the test command's run), rest = extra flags
  local path="$1" config="$2"; shift 2
  mkdir -p "$path"
  swift build --package-path "$here" --scratch-path "$path" -c "$config" -j 2 --product fuzz-toml \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp -Xswiftc -g \
    -Xcc -fsanitize=fuzzer-no-link,address -Xlinker "$driver" -Xlinker -lstdc++ "$@" >"$path/build.log" 2>&1 \
    || { cat "$path/build.log"; echo "fuzz-toml: build failed" >&2; exit 1; }
}
mkdir -p "$scratch" "$here/artifacts-toml"
# Leak detection on (libFuzzer checks for leaks after any input that allocated more than it freed):
# a leak stops the run like a crash. (With TOMLKit underneath it had to be off: ~4.7 KB per parse.)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
mode="${1:-replay}"
case "$mode" in
  --runs)
    runs="${2:?--runs N}"
    build "$scratch" release
    work="$scratch/corpus-long"; mkdir -p "$work"; cp -n "$here/corpus-toml/"* "$work/" 2>/dev/null || true
    exec "$scratch/release/fuzz-toml" -runs="$runs" -max_total_time="${MAX_TIME:-0}" -max_len=4096 -print_final_stats=1 \
      -rss_limit_mb=2048 -artifact_prefix="$here/artifacts-toml/" "$work" ;;
  --long)
    secs="${2:?--long SECONDS}"
    build "$scratch" release
    work="$scratch/corpus-long"; mkdir -p "$work"; cp -n "$here/corpus-toml/"* "$work/" 2>/dev/null || true
    exec "$scratch/release/fuzz-toml" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
      -rss_limit_mb=2048 -artifact_prefix="$here/artifacts-toml/" "$work" ;;
  --coverage)
    secs="${2:?--coverage SECONDS}"
    cov="$scratch-cov"; mkdir -p "$cov"
    swift build --package-path "$here" --scratch-path "$cov" -c debug -j 2 --product fuzz-toml \
      -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp -Xswiftc -profile-generate \
      -Xswiftc -profile-coverage-mapping -Xlinker "$driver" -Xlinker -lstdc++ \
      >"$cov/build.log" 2>&1 || { cat "$cov/build.log"; exit 1; }
    work="$cov/corpus"; mkdir -p "$work"; cp -n "$here/corpus-toml/"* "$work/" 2>/dev/null || true
    if [ -n "${CORPUS:-}" ]; then cp -n "$CORPUS"/* "$work/" 2>/dev/null || true; fi
    LLVM_PROFILE_FILE="$cov/fuzz.profraw" "$cov/debug/fuzz-toml" -max_total_time="$secs" -max_len=4096 "$work" 2>"$cov/run.log" || true
    LLVM_PROFILE_FILE="$cov/fuzz.profraw" "$cov/debug/fuzz-toml" -runs=0 "$work" 2>>"$cov/run.log"
    "$bindir/llvm-profdata" merge -sparse "$cov/fuzz.profraw" -o "$cov/fuzz.profdata"
    "$bindir/llvm-cov" report "$cov/debug/fuzz-toml" -instr-profile="$cov/fuzz.profdata" \
      $(ls "$here"/../Sources/SpindleProfiles/*.swift) ;;
  replay)
    build "$scratch" debug
    # Every committed input once, then a fixed, seeded, time-bounded run that starts from them.
    "$scratch/debug/fuzz-toml" -runs=0 "$here/corpus-toml" >"$scratch/corpus.log" 2>&1 \
      || { cat "$scratch/corpus.log"; echo "fuzz-toml: a committed input fails" >&2; exit 1; }
    work="$scratch/corpus-replay"; rm -rf "$work"; mkdir -p "$work"; cp "$here/corpus-toml/"* "$work/"
    log="$scratch/replay.log"
    # A fixed number of runs, not a time: with the seed, the same inputs on every machine.
    if ! "$scratch/debug/fuzz-toml" -seed=1 -runs="${RUNS:-20000}" -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$here/artifacts-toml/" "$work" >"$log" 2>&1; then
      cat "$log"; echo "fuzz-toml: the run failed (crash input in Fuzz/artifacts-toml/)" >&2; exit 1
    fi
    # One line: executions, time, coverage (libFuzzer's last status line and final stats).
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    status=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' || true)
    echo "fuzz-toml: ok: $runs executions (seed 1), $status" ;;
  *) echo "usage: $0 [--runs N | --long SECONDS | --coverage SECONDS]" >&2; exit 2 ;;
esac
