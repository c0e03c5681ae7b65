#!/usr/bin/env bash
# Adds Spindle to a throwaway service package by version, as every Swift package is added
# (`.package(url: …, from: "0.1.0")`), then builds and runs it: an engine, one inline event
# type, 1,000 posts, shutdown. SwiftPM refuses `unsafeFlags` in a version-pinned dependency, so
# this fails as soon as a target of a product gains one.
#
#   scripts/consumer-check.sh      prints one line when it passes; the build log when it fails
#
# It tests the committed HEAD (a `git clone` of this repository, tagged 0.1.0 in the clone), not
# uncommitted changes. Everything lives in one temporary directory, removed at exit: the clone,
# the consumer package and its build, SwiftPM's caches and fingerprints for this run (so runs
# never leave state behind, nor trip over a 0.1.0 fingerprint recorded by an earlier run).
# Packages resolve as in any other build here (git's url rewrites, SwiftPM's mirrors config).
# Bounded: CONSUMER_TIMEOUT seconds for the build (default 900), 60 s for the run.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/spindle-consumer.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

git clone -q "$repo" "$tmp/spindle"
# Only this tag: an older tag in the clone must not be what `from: "0.1.0"` picks.
git -C "$tmp/spindle" tag -l | xargs -r git -C "$tmp/spindle" tag -d >/dev/null
git -C "$tmp/spindle" tag 0.1.0

mkdir -p "$tmp/app/Sources/app"
cat >"$tmp/app/Package.swift" <<EOF
// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "app",
    dependencies: [.package(url: "file://$tmp/spindle", from: "0.1.0")],
    targets: [.executableTarget(name: "app", dependencies: [.product(name: "Spindle", package: "spindle")])]
)
EOF
cat >"$tmp/app/Sources/app/main.swift" <<'EOF'
import Spindle
import Synchronization

struct Ping: InlineEvent { var n: UInt64 }
struct Pong: InlineEvent { var n: UInt64 }

final class Counter: Sendable { let value = Atomic<Int>(0) }

func run() async throws -> (Int, ShutdownReport) {
    let pongs = Counter()
    var builder = Engine.Builder()
    let bulk = try builder.lane(named: "bulk")
    let pong = try builder.register(Pong.self) { _, _ in pongs.value.add(1, ordering: .relaxed) }
    // A handler's post takes the inline fast path (spindle_fast.h), compiled into this module.
    let ping = try builder.register(Ping.self) { p, ctx in try ctx.post(Pong(n: p.n), as: pong, lane: ctx.lane) }
    let engine = try builder.start()
    for i in 0..<1_000 { try engine.post(Ping(n: UInt64(i)), as: ping, lane: bulk, to: .key(UInt64(i))) }
    let report = await engine.shutdown(deadline: .now + .seconds(10))
    return (pongs.value.load(ordering: .relaxed), report)
}

let (count, report) = try await run()
print("handled \(count) of 1000 (drained: \(report.drained))")
EOF

cd "$tmp/app"
swiftpm=(--cache-path "$tmp/cache" --security-path "$tmp/security" --manifest-cache local)
if ! timeout "${CONSUMER_TIMEOUT:-900}" swift build "${swiftpm[@]}" >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log"
  echo "consumer-check: a package depending on Spindle by version (from: \"0.1.0\") does not build (log above)" >&2
  exit 1
fi
# stdout is checked; stderr (the engine's log lines) is shown only on failure.
out="$(timeout 60 .build/debug/app 2>"$tmp/run.err")" || {
  cat "$tmp/run.err"
  echo "$out"
  echo "consumer-check: the consumer's engine run failed (output above)" >&2
  exit 1
}
if [ "$out" != "handled 1000 of 1000 (drained: true)" ]; then
  cat "$tmp/run.err"
  echo "$out"
  echo "consumer-check: expected 'handled 1000 of 1000 (drained: true)'" >&2
  exit 1
fi
echo "consumer-check: a package depending on Spindle from: \"0.1.0\" builds and ran 1000 events ($(($(date +%s) - start)) s)"
