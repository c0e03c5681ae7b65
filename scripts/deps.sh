#!/usr/bin/env bash
# Makes sure the system libraries Spindle builds against are present: liburing-dev and
# libnuma-dev (Debian/Ubuntu). Installs them with apt-get when missing and we may; otherwise says
# exactly what to run.
#
#   scripts/deps.sh --services   also redis-tools and redis-server (redis-cli, redis-benchmark and
#                                the baseline server), for trying and measuring the examples by
#                                hand; the test suite does not need them (its clients are sockets)
set -euo pipefail

missing=()
[ -f /usr/include/liburing.h ] || missing+=(liburing-dev)
[ -f /usr/include/numa.h ] || missing+=(libnuma-dev)
if [ "${1:-}" = "--services" ]; then
  command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "spindle: installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "spindle: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "spindle: no Swift toolchain on PATH; install Swift 6.1 or later (swift.org) and retry" >&2
  exit 1
fi
