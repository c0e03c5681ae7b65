#!/usr/bin/env bash
# The conservation soak (Sources/spindle-soak): engine after engine, alternating io_uring and
# epoll, foreign producers and handlers posting to random lanes and keys (single, batch, boxed,
# inline), lanes filling on every full-lane policy, periodic timers, live retunes and a shutdown in
# the middle of every flood; after each engine every count is checked against the producers' and
# handlers' own tallies. One summary line; on a violation, what and where, and exit 1.
#
#   scripts/soak.sh                     1e7 posts, at most 120 s (the short form run by scripts/test.sh)
#   scripts/soak.sh --events 1e9        the long form (release build; pass --seconds to bound it)
#   scripts/soak.sh --release ...       build and run the release binary
#
# Every other option goes to spindle-soak (--seconds S, --seed N, --epoch-events N, --producers N,
# --backend io_uring|epoll|both, --verbose). Nothing waits unbounded: the soak fails an engine that
# handles nothing for 20 s, a shutdown that does not drain in 30 s, a producer that does not return.
set -euo pipefail
cd "$(dirname "$0")/.."
config=debug
args=()
for a in "$@"; do
  case "$a" in
    --release) config=release ;;
    *) args+=("$a") ;;
  esac
done
case " ${args[*]:-} " in *" --events "*) ;; *) args=(--events 1e7 --seconds 120 "${args[@]}") ;; esac
log=$(mktemp)
if ! swift build -c "$config" -j 2 --product spindle-soak >"$log" 2>&1; then
  cat "$log"; rm -f "$log"
  echo "soak: build failed (output above)" >&2
  exit 1
fi
rm -f "$log"
exec "$(swift build -c "$config" --show-bin-path)/spindle-soak" "${args[@]}"
