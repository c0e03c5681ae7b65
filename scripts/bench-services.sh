#!/usr/bin/env bash
# The services benchmark (issue 9): spindle-kv (1 and 2 workers) next to redis-server and nio-kv
# (the same service on SwiftNIO), driven by Debian's redis-benchmark, in one run; then the
# priority scenario (PING every 1 ms on the control port while SET floods the data port).
#
#   scripts/bench-services.sh [--json out.json] [--markdown] [--quick] [--reps N] [--servers LIST]
#   scripts/bench-services.sh --soak 600          # the long run: RSS every 10 s, connection errors
#   SPINDLE_KV_BIN=/path/to/spindle-kv scripts/bench-services.sh ...
#   scripts/bench-services.sh --skip-build ...    # use the binaries already built
#   scripts/bench-services.sh --from-json out.json [--markdown]   # the report of an earlier run
#
# Installs redis-server/redis-tools (scripts/deps.sh --services), builds release binaries
# (spindle-kv, Benchmarks' nio-kv, the C control client ctlping), then runs
# scripts/services/bench_services.py. Every server is stopped on exit; every wait has a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command_line="scripts/bench-services.sh $*"

skip_build=0
args=()
for a in "$@"; do
  case "$a" in
    --skip-build) skip_build=1 ;;
    --from-json) exec python3 scripts/services/bench_services.py "$@" ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$a") ;;
  esac
done

if [ "$(nproc)" -lt 2 ]; then
  echo "bench-services: needs 2 CPUs (client on CPU 0, server on CPU 1); this machine has $(nproc)" >&2
  exit 1
fi
scripts/deps.sh --services
for tool in redis-server redis-benchmark taskset perf python3 cc; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-services: '$tool' not found on PATH" >&2; exit 1; }
done

mkdir -p .build/services
kv_bin=${SPINDLE_KV_BIN:-}
if [ -z "$kv_bin" ] && grep -q '"spindle-kv"' Package.swift; then
  if [ "$skip_build" = 0 ]; then
    swift build -c release --product spindle-kv >&2
  fi
  kv_bin=$root/.build/release/spindle-kv
fi
if [ "$skip_build" = 0 ]; then
  swift build -c release --package-path Benchmarks --scratch-path Benchmarks/.build-nio --product nio-kv >&2
fi
nio_bin=$root/Benchmarks/.build-nio/release/nio-kv
cc -O2 -Wall -o .build/services/ctlping scripts/services/ctlping.c

# Python ends every server it started on exit or signal; this trap is the second line of defence.
child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait 2>/dev/null || true' EXIT INT TERM
python3 scripts/services/bench_services.py --nio-bin "$nio_bin" --ctlping "$root/.build/services/ctlping" \
  ${kv_bin:+--kv-bin "$kv_bin"} --command "$command_line" "${args[@]}" &
child=$!
wait "$child"
status=$?
child=
exit "$status"
