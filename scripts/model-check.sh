#!/usr/bin/env bash
# Model-checks the sleep/wake handshake and its neighbours with spin (CSupport/model/*.pml; what
# each model covers: CSupport/model/README.md). Every check runs in a temporary directory (no pan
# files in the repository). A check must verify (no error in the whole state space), or be caught
# (spin finds the error we expect: the model of a bug), or be reached (a witness: the verified
# models do go through that scenario). One line per check; a check that does not end as expected
# prints spin's output and trail, and the script exits 1.
#
#   scripts/model-check.sh                 all checks
#   scripts/model-check.sh NAME...         only these (names as printed)
#   scripts/model-check.sh --trail NAME    replay the error trail spin found for NAME
#   MODEL_CHECK_JOBS=n                     checks run in parallel (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
models="$PWD/CSupport/model"

need=()
command -v spin >/dev/null 2>&1 || need+=(spin)
command -v cc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "model-check: installing ${need[*]} (apt-get)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  else
    echo "model-check: missing ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

# name | model | spin -D flags | verify (safety | ltl) | expect | what
# expect: ok (no error anywhere), the error spin must find (a model of a bug), or reached (a
# witness: an assert(false) at a scenario the verified models must go through, -DCOVER=n).
checks=(
  "wake-uring-7dcdfce|wake.pml|-DDRAIN_ON_ARM -DNF=2 -DEVW=1|safety|assertion violated|io_uring as of 7dcdfce: the eventfd drained when the poll is armed loses a foreign wake-up"
  "wake-uring|wake.pml|-DNF=2 -DEVW=1|safety|ok|io_uring (9e7f13d): 2 foreign threads + 1 worker (MSG_RING) into one worker; multishot may end"
  "wake-uring-deferred|wake.pml|-DNF=1 -DEVW=2|safety|ok|io_uring: a worker's deferred publishes, flushed at the end of its batch"
  "wake-uring-msgfail|wake.pml|-DMSG_FAIL -DNF=1 -DEVW=1|safety|ok|io_uring (9e7f13d): a failed MSG_RING (error CQE, possibly late) falls back to the eventfd"
  "wake-uring-msgfail-7dcdfce|wake.pml|-DMSG_FAIL -DNO_FALLBACK -DNF=1 -DEVW=1|safety|assertion violated|io_uring as of 7dcdfce: a failed MSG_RING's error CQE is ignored"
  "wake-uring-armfail-d1bcfc4|wake.pml|-DARM_MAY_FAIL -DNF=1 -DEVW=0|safety|assertion violated|io_uring as of d1bcfc4: sp_uring_arm_eventfd gets no SQE and the worker sleeps without the eventfd poll"
  "wake-uring-armfail|wake.pml|-DARM_MAY_FAIL -DARM_FIX -DNF=1 -DEVW=0|safety|ok|io_uring: an unarmed doorbell makes the wait return at once (the worker retries)"
  "wake-epoll|wake.pml|-DEPOLL -DNF=2 -DEVW=1|safety|ok|epoll: 2 foreign threads + 1 worker; the drain after the wake-up"
  "wake-uring-live|wake.pml|-DLIVENESS -DNF=1 -DEVW=1|ltl|ok|io_uring (9e7f13d): every event is eventually handled (weak fairness)"
  "wake-epoll-live|wake.pml|-DLIVENESS -DEPOLL -DNF=1 -DEVW=1|ltl|ok|epoll: every event is eventually handled (weak fairness)"
  "shutdown-uring-7dcdfce|wake.pml|-DSHUTDOWN -DDRAIN_ON_ARM -DNF=0 -DEVW=1|safety|assertion violated|shutdown, io_uring as of 7dcdfce: a worker misses sp_wake_all and never exits"
  "shutdown-uring|wake.pml|-DSHUTDOWN -DNF=1 -DEVW=1|safety|ok|shutdown, io_uring (34f879f): close the rings, STOPPING, quiescence, DRAINED + sp_wake_all; a foreign post racing it is handled or refused, every worker exits"
  "shutdown-uring-deadline|wake.pml|-DSHUTDOWN -DDEADLINE -DNF=0 -DEVW=1|safety|ok|shutdown with a deadline (ABORT + sp_wake_all), io_uring"
  "shutdown-epoll|wake.pml|-DSHUTDOWN -DEPOLL -DNF=2 -DEVW=1|safety|ok|shutdown, epoll (34f879f), 2 foreign posts racing it: each handled or refused"
  "shutdown-uring-7dacd46|wake.pml|-DSHUTDOWN -DNO_CLOSE -DNF=1 -DEVW=0|safety|assertion violated (npub==nhandled)|shutdown, io_uring as of 7dacd46 (no close): a foreign post that read RUNNING claims after the drain and is lost"
  "shutdown-epoll-7dacd46|wake.pml|-DSHUTDOWN -DEPOLL -DNO_CLOSE -DNF=1 -DEVW=0|safety|assertion violated (npub==nhandled)|shutdown, epoll as of 7dacd46 (no close): the same loss"
  "shutdown-uring-close-late|wake.pml|-DSHUTDOWN -DCLOSE_LATE -DNF=1 -DEVW=0|safety|assertion violated (npub==nhandled)|shutdown, io_uring, the close moved after STOPPING: the drain can finish before it and a post is lost"
  "shutdown-epoll-close-late|wake.pml|-DSHUTDOWN -DEPOLL -DCLOSE_LATE -DNF=1 -DEVW=0|safety|assertion violated (npub==nhandled)|shutdown, epoll, the close moved after STOPPING: the same loss"
  "block-7dcdfce|block.pml|-DSTATE_FIRST|safety|invalid end state|block lane as of 7dcdfce: state checked before wait_seq is loaded; a producer sleeps forever"
  "block|block.pml||safety|ok|block lane (9e7f13d): wait_seq loaded first; consumer wake-ups and shutdown"
  "block-abort|block.pml|-DABORT_STOPS|safety|ok|block lane (9e7f13d): shutdown, then the deadline, workers stop freeing slots"
  "abort-spin-d1bcfc4|abort.pml||ltl|acceptance cycle|worker.c as of d1bcfc4: ABORT is read only when a round finds nothing; a re-posting handler never stops"
  "abort-spin|abort.pml|-DFIX|ltl|ok|worker.c: break on ABORT after a round that handled something"
  "quiesce-tso-d1bcfc4|quiesce.pml||safety|invalid end state|engine.c as of d1bcfc4, spin 0: two workers' quiescence checks miss each other's handled store; shutdown hangs"
  "quiesce-tso|quiesce.pml|-DFIX|safety|ok|engine.c: a seq_cst fence at the top of sp_engine_quiescent"
  "barrier-membarrier-fails-d1bcfc4|barrier.pml|-DMEMBARRIER_FAILS|safety|assertion violated|barrier.c as of d1bcfc4: membarrier fails (ENOMEM) and the sleeper's own fence does not pair with a compiler barrier"
  "barrier|barrier.pml||safety|ok|barrier.h: membarrier (retried until it succeeds) + compiler barrier under store buffers (what wake.pml assumes)"
  "watchdog|watchdog.pml|-DNW=3 -DROUNDS=3|safety|ok|watchdog.c: the watchdog parks only when every worker sleeps; a worker coming out of a sleep kicks it: no stalled batch goes unwatched"
  "watchdog-seq-after-park|watchdog.pml|-DSEQ_AFTER_PARK|safety|assertion violated|watchdog.c, first version: the futex word read after parked; a consumed kick leaves the watchdog parked under a stall"
  "watchdog-no-kick|watchdog.pml|-DNO_KICK|safety|assertion violated|without the worker's kick the watchdog sleeps through a stall"
  "watchdog-kick-first|watchdog.pml|-DKICK_FIRST|safety|assertion violated|the worker reads parked before clearing its flag: the watchdog parks under a stall"
  # Witnesses: the verified models do reach these scenarios (an assertion placed there fails).
  "reach-foreign-wake|wake.pml|-DCOVER=1 -DNF=2 -DEVW=1|safety|reached|io_uring: a sleeping worker woken by a foreign eventfd write, its event pending"
  "reach-msgring-wake|wake.pml|-DCOVER=2 -DNF=2 -DEVW=1|safety|reached|io_uring: a sleeping worker woken by MSG_RING"
  "reach-arm-nonzero|wake.pml|-DCOVER=3 -DNF=2 -DEVW=1|safety|reached|io_uring: the poll armed on a non-zero counter (the spurious wake-up)"
  "reach-rearm|wake.pml|-DCOVER=4 -DNF=2 -DEVW=1|safety|reached|io_uring: the poll re-armed after the kernel ended the multishot"
  "reach-msgfail-fallback|wake.pml|-DCOVER=5 -DMSG_FAIL -DNF=1 -DEVW=1|safety|reached|io_uring: a failed MSG_RING answered with an eventfd write"
  "reach-deferred-run|wake.pml|-DCOVER=6 -DNF=1 -DEVW=2|safety|reached|a deferred run of 2 events towards a sleeping worker"
  "reach-epoll-wake|wake.pml|-DCOVER=7 -DEPOLL -DNF=2 -DEVW=1|safety|reached|epoll: a sleeping worker woken by a write, its event pending"
  "reach-drained-wake|wake.pml|-DCOVER=8 -DSHUTDOWN -DNF=0 -DEVW=1|safety|reached|shutdown: a sleeping worker woken while the state is DRAINED"
  "reach-close-refused|wake.pml|-DCOVER=9 -DSHUTDOWN -DNF=1 -DEVW=1|safety|reached|shutdown: a foreign post that read RUNNING refused by the closed ring"
  "reach-watchdog-kick|watchdog.pml|-DCOVER|safety|reached|a worker waking from a sleep kicks a parked watchdog"
  "reach-close-drained|wake.pml|-DCOVER=10 -DSHUTDOWN -DEPOLL -DNF=2 -DEVW=1|safety|reached|shutdown: a foreign post claimed before the close, published after STOPPING (the drain waits for it)"
)

trail=0
want=()
while [ $# -gt 0 ]; do
  case "$1" in
    --trail) trail=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) want+=("$1") ;;
  esac
  shift
done

selected=()
for c in "${checks[@]}"; do
  name=${c%%|*}
  if [ ${#want[@]} -eq 0 ]; then selected+=("$c"); continue; fi
  for w in "${want[@]}"; do [ "$w" = "$name" ] && selected+=("$c"); done
done
if [ ${#want[@]} -gt 0 ] && [ ${#selected[@]} -ne ${#want[@]} ]; then
  echo "model-check: unknown check name in: ${want[*]}" >&2
  exit 1
fi

# pan.c is one large file: compile time is most of a check. -O0: the state spaces are small.
# clang (shipped with the Swift toolchain) compiles it about twice as fast as gcc.
if [ -z "${CC:-}" ]; then
  if command -v clang >/dev/null 2>&1; then CC=clang; else CC=cc; fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/spindle-model.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Runs one check in its own directory; writes result (one line) and ok (0/1) there.
run_check() {
  local name=$1 model=$2 flags=$3 kind=$4 expect=$5 what=$6
  local d="$tmp/$name" cpu
  mkdir -p "$d"
  cd "$d"
  local -a dflags=()
  read -r -a dflags <<<"$flags"
  local ccflags=(-O0 -w -DNFAIR=3) panflags=(-m1000000 -w20)
  if [ "$kind" = safety ]; then ccflags+=(-DSAFETY); else panflags+=(-a -f); fi
  {
    spin "${dflags[@]}" -a "$models/$model" &&
    "$CC" "${ccflags[@]}" -o pan pan.c &&
    ./pan "${panflags[@]}"
  } >out.txt 2>&1 || true
  local errors states first incomplete=""
  errors=$(grep -oE 'errors: [0-9]+' out.txt | tail -1 | awk '{print $2}' || true)
  states=$(grep -E 'states, stored' out.txt | tail -1 | awk '{print $1}' || true)
  first=$(grep -E '^pan:1: ' out.txt | head -1 | sed 's/^pan:1: //; s/ (at depth [0-9]*)//' || true)
  if grep -qE 'max search depth too small|out of memory|too many processes|error: ' out.txt; then incomplete=1; fi
  local verdict ok=0
  if [ -z "$errors" ] || [ -z "$states" ]; then
    verdict="NO RESULT"
  elif [ "$expect" = ok ]; then
    if [ "$errors" = 0 ] && [ -z "$incomplete" ]; then verdict="verified"; ok=1
    elif [ "$errors" = 0 ]; then verdict="INCOMPLETE search"
    else verdict="UNEXPECTED: $first"; fi
  elif [ "$expect" = reached ]; then
    if [ "$errors" != 0 ] && [[ "$first" == "assertion violated 0" ]]; then verdict="reached"; ok=1; else verdict="NOT REACHED"; fi
  else
    if [ "$errors" != 0 ] && [[ "$first" == *"$expect"* ]]; then verdict="caught: $first"; ok=1; else verdict="NOT CAUGHT (expected: $expect)"; fi
  fi
  # CPU time of spin + cc + pan (the children of this subshell): wall time depends on the load
  times >times.txt   # no pipe: `times` must run in this shell, not in a pipeline's subshell
  cpu=$(tail -1 times.txt | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
  echo "$cpu" >cpu
  printf '%-26s %-6s errors %-2s states %8s cpu %4.1fs  %s\n' "$name" "$kind" "${errors:--}" "${states:--}" \
    "$cpu" "$verdict" >result
  echo "$ok" >ok
  if [ "$ok" = 1 ] && [ "$trail" = 0 ]; then rm -f pan pan.c pan.b pan.h pan.m pan.p pan.t; fi
}

start=$(date +%s.%N)
jobs_max=${MODEL_CHECK_JOBS:-2}
running=0
for c in "${selected[@]}"; do
  IFS='|' read -r name model flags kind expect what <<<"$c"
  run_check "$name" "$model" "$flags" "$kind" "$expect" "$what" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs_max" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
end=$(date +%s.%N)

bad=0
for c in "${selected[@]}"; do
  IFS='|' read -r name model flags kind expect what <<<"$c"
  d="$tmp/$name"
  if [ -f "$d/result" ]; then cat "$d/result"; else echo "$name: did not run"; fi
  if [ "$(cat "$d/ok" 2>/dev/null || echo 0)" != 1 ]; then
    bad=1
    echo "---- $name ($what): spin ${flags:+$flags }-a $model; cc; ./pan" >&2
    cat "$d/out.txt" >&2 || true
    echo "----" >&2
  fi
  if { [ "$trail" = 1 ] || [ "$(cat "$d/ok" 2>/dev/null || echo 0)" != 1 ]; } && [ -f "$d/$model.trail" ]; then
    read -r -a dflags <<<"$flags"
    echo "---- error trail of $name ($what)"
    (cd "$d" && cp -p "$models/$model" . && spin "${dflags[@]}" -t -p -g -l "$model" 2>&1 | grep -vE '^\s*$|proc  [0-9]+ \(:init:' || true)
  fi
done
cpu=$(cat "$tmp"/*/cpu 2>/dev/null | awk '{ t += $1 } END { print t + 0 }')
awk -v n="${#selected[@]}" -v a="$start" -v b="$end" -v c="$cpu" -v j="$jobs_max" \
  'BEGIN { printf "model-check: %d checks, %.1f s (%.1f s of CPU, %d at a time)\n", n, b - a, c, j }'
exit "$bad"
