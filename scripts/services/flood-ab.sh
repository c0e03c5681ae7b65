#!/usr/bin/env bash
# A/B of spindle-kv builds (or profiles) under the services benchmark's priority scenario: one
# worker on CPU 1, a SET flood (redis-benchmark -c 50 -P 16, CPU 0) on the data port, and a control
# PING every 1 ms (ctlping, CPU 0) whose round trip and time in the server (residence.py, kernel
# packet timestamps; root) are printed with the worker's rounds, batches and io_uring enters.
#
#   scripts/services/flood-ab.sh REPS NAME=SPINDLE_KV_BINARY [NAME=BINARY ...]
#   KVARGS="--profile x.spindle" scripts/services/flood-ab.sh 2 b8=.build/release/spindle-kv
#
# Runs are interleaved per repetition. Needs redis-benchmark, redis-cli and ctlping
# (scripts/bench-services.sh builds it at .build/services/ctlping). Every wait is bounded.
set -u
reps=${1:?usage: flood-ab.sh REPS NAME=BIN ...}; shift
root="$(cd "$(dirname "$0")/../.." && pwd)"
ping="$root/.build/services/ctlping"
res="$root/scripts/services/residence.py"
[ -x "$ping" ] || { echo "flood-ab: $ping missing: cc -O2 -o $ping scripts/services/ctlping.c" >&2; exit 2; }
for r in $(seq $reps); do
for spec in "$@"; do
  name=${spec%%=*}; bin=${spec#*=}
  P=$((20000 + RANDOM % 20000)); C=$((P+1)); L=$((P+2))
  taskset -c 1 $bin --port $P --control-port $C --workers 1 ${KVARGS:-} > /tmp/kv-ab.out 2>&1 &
  kv=$!
  for i in $(seq 100); do grep -q listening /tmp/kv-ab.out && break; sleep 0.1; done
  grep -q listening /tmp/kv-ab.out || { echo "flood-ab: $name did not listen within 10 s: $(cat /tmp/kv-ab.out)" >&2; kill $kv; exit 1; }
  taskset -c 0 redis-benchmark -p $P -t set -c 50 -P 16 -n 200000000 -q > /dev/null 2>&1 &
  rb=$!
  sleep 2
  taskset -c 0 python3 $res --server-port $C --client-port $L --seconds 60 > /tmp/res.json 2>/dev/null &
  rp=$!
  sleep 0.5
  i0=$(redis-cli -p $C info | tr -d '\r' | grep -E "^worker0" | sed 's/.*rounds=\([0-9]*\),batches=\([0-9]*\).*io_enters=\([0-9]*\).*/\1 \2 \3/')
  rtt=$(timeout 60 taskset -c 0 $ping --port $C --local-port $L --count 3000 --interval-us 1000 --timeout-ms 2000 | tail -1)
  i1=$(redis-cli -p $C info | tr -d '\r' | grep -E "^worker0" | sed 's/.*rounds=\([0-9]*\),batches=\([0-9]*\).*io_enters=\([0-9]*\).*/\1 \2 \3/')
  hd=$(redis-cli -p $C info | tr -d '\r' | grep -E "^lane1" | sed 's/.*handled=\([0-9]*\).*/\1/')
  kill -TERM $rp; wait $rp
  kill $rb; wait $rb 2>/dev/null
  kill $kv; wait $kv 2>/dev/null
  python3 - "$name" "$rtt" "$(cat /tmp/res.json)" "$i0" "$i1" <<'PY'
import json,sys
name,rtt,res,i0,i1=sys.argv[1:]
r=json.loads(rtt); s=json.loads(res)
a=[int(x) for x in i0.split()]; b=[int(x) for x in i1.split()]
d=[y-x for x,y in zip(a,b)]
print(f"{name:10s} rtt p50 {r['p50_us']:7.1f} p99 {r['p99_us']:7.1f} | server p50 {s.get('p50_us')} p99 {s.get('p99_us')} | rounds {d[0]} batches {d[1]} enters {d[2]}")
PY
done
done
