#!/usr/bin/env bash
# The main job: `spindle bench` (release build) on the embedded default profile. Arguments are
# passed to `spindle bench` (e.g. `scripts/bench.sh cross-core --runs 5`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build -c release --product spindle >&2
exec .build/release/spindle bench "$@"
