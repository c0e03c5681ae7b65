#!/usr/bin/env bash
# Re-measures the figures in docs/benchmarks.md: runs `spindle bench` (every scenario, 5 runs per
# row) and writes docs/benchmarks.json, docs/benchmarks.svg and the results block of
# docs/benchmarks.md (between the results markers). With --with-nio it also runs the Benchmarks
# package's runner (adds SwiftNIO; building swift-nio takes minutes) into the NIO block.
# Run it on a quiet machine: the other processes' CPU time shows up in every p99.
set -euo pipefail
cd "$(dirname "$0")/.."
with_nio=0
[[ "${1:-}" == "--with-nio" ]] && with_nio=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

splice() { # splice MARKER FILE: replace the lines between <!-- MARKER:begin --> and <!-- MARKER:end -->
    awk -v begin="<!-- $1:begin -->" -v end="<!-- $1:end -->" -v file="$2" '
        $0 == begin { print; while ((getline line < file) > 0) print line; skip = 1; next }
        $0 == end { skip = 0 }
        !skip { print }' docs/benchmarks.md > "$tmp/doc.md"
    mv "$tmp/doc.md" docs/benchmarks.md
}

block() { # block TITLE COMMAND STDOUT TABLE > FILE
    local machine
    machine=$(grep -m1 '"cpu_model"' "$5" | sed 's/.*: "\(.*\)",*/\1/')
    {
        echo
        echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -r), ${machine}, $(nproc) vCPUs, with:"
        echo
        echo '```sh'
        echo "$2"
        echo '```'
        echo
        cat "$4"
        echo
        echo "Targets, from the same run:"
        echo
        echo '```'
        grep -E "^(holds|MISSED) " "$3" || true
        echo '```'
        echo
    } > "$tmp/block.md"
}

swift build -c release --scratch-path .build-bench --product spindle >&2
cmd=".build-bench/release/spindle bench --json docs/benchmarks.json --plot docs/benchmarks.svg"
$cmd --markdown "$tmp/table.md" | tee "$tmp/out.txt"
block "spindle bench" "swift build -c release --scratch-path .build-bench --product spindle && $cmd" "$tmp/out.txt" "$tmp/table.md" docs/benchmarks.json
splice results "$tmp/block.md"

if [[ $with_nio == 1 ]]; then
    (cd Benchmarks && swift build -c release --scratch-path .build-nio --product spindle-bench-nio >&2)
    nio="Benchmarks/.build-nio/release/spindle-bench-nio cross-core foreign-thread wake-foreign priority-isolation"
    $nio --json "$tmp/nio.json" --markdown "$tmp/nio.md" | tee "$tmp/nio.txt"
    block "nio" "(cd Benchmarks && swift build -c release --scratch-path .build-nio --product spindle-bench-nio) && $nio" "$tmp/nio.txt" "$tmp/nio.md" "$tmp/nio.json"
    splice nio "$tmp/block.md"
fi
echo "updated docs/benchmarks.md" >&2
