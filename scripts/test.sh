#!/usr/bin/env bash
# The whole test suite: system libraries, every Swift test target, then the profile loader's
# fuzz corpus replay and a fixed-seed fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# Swift Testing captures a backtrace (an allocation) for every thrown error by default; the
# allocation-counting tests need it off to see the engine's own zero.
export SWT_SWIFT_ERROR_BACKTRACING_ENABLED=0
# One test at a time: engine suites pin workers to the same CPUs and count threads and fds.
swift test --no-parallel "$@"
if [ -x CSupport/fuzz/run.sh ] && [ $# -eq 0 ]; then
  CSupport/fuzz/run.sh
fi
