#!/usr/bin/env bash
# Builds the libFuzzer target for the profile loader and runs it.
#
#   CSupport/fuzz/run.sh               replay the committed corpus, then a fixed run
#                                      (-seed=1 -runs=$RUNS, default 2000000; ~15 s here)
#   CSupport/fuzz/run.sh --hours H     fuzz for H hours on a scratch copy of the corpus
#   CSupport/fuzz/run.sh --runs N      fuzz N executions on a scratch copy of the corpus (the long run)
#   CSupport/fuzz/run.sh --coverage S  fuzz S seconds with coverage instrumentation and print
#                                      line coverage of the profile loader (llvm-cov)
#
# Exits non-zero on a crash, a sanitizer report or a broken property (see fuzz_profile.c).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/.."
out="${SPINDLE_FUZZ_OUT:-$here/../../.build-fuzz}"
clang="${CLANG:-$(command -v clang || echo /opt/swift/usr/bin/clang)}"
bindir="$(dirname "$clang")"
mkdir -p "$out" "$here/artifacts"
sources=("$src/profile.c" "$src/profile_sections.c" "$src/profile_encode.c" "$src/crc32c.c" "$here/fuzz_profile.c")
# The engine's own range checks (config.c) join the loader when they build stand-alone.
extra=()
if [ -f "$src/config.c" ] && "$clang" -D_GNU_SOURCE -I"$src" -I"$src/include" -c "$src/config.c" -o "$out/config-probe.o" 2>/dev/null; then
  extra=("$src/config.c")
fi
build() { # $1 = output, rest = flags
  local bin="$1"; shift
  "$clang" -g -O1 -D_GNU_SOURCE -I"$src" -I"$src/include" "$@" "${sources[@]}" "${extra[@]}" -o "$bin" -lnuma -lpthread 2>"$out/build.log" \
    || "$clang" -g -O1 -D_GNU_SOURCE -I"$src" -I"$src/include" "$@" "${sources[@]}" -o "$bin" -lpthread
}
mode="${1:-replay}"
case "$mode" in
  --hours)
    hours="${2:?--hours H}"
    build "$out/fuzz_profile" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    work="$out/corpus-long"; mkdir -p "$work"; cp -n "$here/corpus/"* "$work/" 2>/dev/null || true
    exec "$out/fuzz_profile" -max_total_time=$((hours * 3600)) -max_len=8192 -artifact_prefix="$here/artifacts/" "$work" ;;
  --runs)
    runs="${2:?--runs N}"
    build "$out/fuzz_profile" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    work="$out/corpus-long"; mkdir -p "$work"; cp -n "$here/corpus/"* "$work/" 2>/dev/null || true
    exec "$out/fuzz_profile" -runs="$runs" -max_len=8192 -print_final_stats=1 -artifact_prefix="$here/artifacts/" "$work" ;;
  --coverage)
    secs="${2:?--coverage SECONDS}"
    build "$out/fuzz_profile_cov" -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping
    work="$out/corpus-cov"; mkdir -p "$work"; cp -n "$here/corpus/"* "$work/" 2>/dev/null || true
    LLVM_PROFILE_FILE="$out/fuzz.profraw" "$out/fuzz_profile_cov" -max_total_time="$secs" -max_len=8192 "$work" 2>"$out/cov-run.log"
    # Replay the grown corpus once more so the profile covers every input kept.
    LLVM_PROFILE_FILE="$out/fuzz.profraw" "$out/fuzz_profile_cov" -runs=0 "$work" 2>>"$out/cov-run.log"
    "$bindir/llvm-profdata" merge -sparse "$out/fuzz.profraw" -o "$out/fuzz.profdata"
    "$bindir/llvm-cov" report "$out/fuzz_profile_cov" -instr-profile="$out/fuzz.profdata" \
      "$src/profile.c" "$src/profile_sections.c" "$src/profile_encode.c" "$src/crc32c.c" ;;
  replay)
    build "$out/fuzz_profile" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    mkdir -p "$here/artifacts"
    # Replay every committed input, then a fixed, seeded run that starts from them.
    "$out/fuzz_profile" -runs=0 "$here/corpus"
    work="$out/corpus-replay"; rm -rf "$work"; mkdir -p "$work"; cp "$here/corpus/"* "$work/"
    "$out/fuzz_profile" -seed=1 -runs="${RUNS:-2000000}" -max_len=8192 -artifact_prefix="$here/artifacts/" "$work" ;;
  *) echo "usage: $0 [--hours H | --runs N | --coverage SECONDS]" >&2; exit 2 ;;
esac
