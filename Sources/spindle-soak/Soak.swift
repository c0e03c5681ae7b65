import CSpindle
import Foundation
import Spindle
import Synchronization

/// `spindle-soak`: the conservation soak (scripts/soak.sh runs it). Epoch after epoch, alternating
/// backends: a fresh engine, lanes small enough to fill on every full-lane policy, foreign producer
/// threads and handlers posting to random lanes and keys (single posts, batches, boxed and inline
/// events), a periodic timer per worker, live retunes, and a shutdown in the middle of the flood.
/// After each epoch every count is checked against the producers' and handlers' own tallies:
/// every post is exactly one of enqueued / rejected / dropped, enqueued = handled + pending, every
/// stream (producer, lane, key) handled in order with no gap or duplicate, every box released
/// once. Prints one summary line; on a violation, what and where, and exits 1.
@main
struct Soak {
    struct Options {
        var events = 10_000_000
        var seconds = 600.0
        var seed: UInt64 = 1
        var epochEvents = 2_000_000
        var foreign = 3
        var backends: [Engine.Configuration.Backend] = [.ioUring, .epoll]
        var verbose = false
    }

    static func usage() -> Never {
        FileHandle.standardError.write(Data("""
            usage: spindle-soak [--events N] [--seconds S] [--seed N] [--epoch-events N] [--producers N] [--backend io_uring|epoll|both] [--verbose]
              --events N        posts to make in all (1e9 notation accepted; default 1e7)
              --seconds S       stop starting epochs after S seconds (default 600); the summary says if the target was not reached
              --epoch-events N  posts per engine before the mid-flood shutdown (default 2e6)

            """.utf8))
        exit(2)
    }

    static func parse(_ args: [String]) -> Options {
        var o = Options()
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { usage() }
            return args[i]
        }
        func count(_ s: String) -> Int {
            guard let d = Double(s), d >= 1, d <= 1e13 else { usage() }
            return Int(d)
        }
        while i < args.count {
            switch args[i] {
            case "--events": o.events = count(value())
            case "--seconds": o.seconds = Double(value()) ?? { usage() }()
            case "--seed": o.seed = UInt64(value()) ?? { usage() }()
            case "--epoch-events": o.epochEvents = count(value())
            case "--producers": o.foreign = max(1, min(16, count(value())))
            case "--backend":
                switch value() {
                case "io_uring": o.backends = [.ioUring]
                case "epoll": o.backends = [.epoll]
                case "both": o.backends = [.ioUring, .epoll]
                default: usage()
                }
            case "--verbose": o.verbose = true
            default: usage()
            }
            i += 1
        }
        return o
    }

    static func main() {
        let o = parse(Array(CommandLine.arguments.dropFirst()))
        let started = sp_now_ns()
        var total = Totals()
        var epoch = 0
        var failures: [String] = []
        while total.posts < o.events {
            let elapsed = Double(sp_now_ns() - started) / 1e9
            if elapsed > o.seconds { break }
            let backend = o.backends[epoch % o.backends.count]
            let quota = min(o.epochEvents, max(o.events - total.posts, 100_000))
            let result = Epoch(options: o, backend: backend, seed: o.seed &+ UInt64(epoch) &* 0x9E37_79B9, quota: quota).run()
            total.add(result.totals)
            if o.verbose {
                print("epoch \(epoch) \(backend): \(result.totals.line)")
            }
            if !result.failures.isEmpty {
                failures = result.failures.map { "epoch \(epoch) (\(backend), seed \(o.seed), quota \(quota)): \($0)" }
                break
            }
            epoch += 1
        }
        let seconds = Double(sp_now_ns() - started) / 1e9
        if !failures.isEmpty {
            for f in failures.prefix(40) { print("soak: FAILED: \(f)") }
            exit(1)
        }
        let reached = total.posts >= o.events
        print(
            "soak: \(reached ? "ok" : "INCOMPLETE"): \(epoch) engines, \(total.line), \(String(format: "%.1f", seconds)) s"
                + (reached ? "" : " (stopped at the --seconds bound before \(o.events) posts)"))
        exit(reached ? 0 : 1)
    }
}

/// Sums over epochs.
struct Totals {
    var posts = 0, enqueued = 0, rejected = 0, dropped = 0, handled = 0, pending = 0
    var laneFull = 0, stopped = 0, timedOut = 0, boxes = 0, batches = 0, spawned = 0, timers = 0, retunes = 0
    var sleeps: UInt64 = 0
    var raced = 0  // events of foreign posts that raced shutdown's start and landed after the drain

    mutating func add(_ t: Totals) {
        posts += t.posts; enqueued += t.enqueued; rejected += t.rejected; dropped += t.dropped
        handled += t.handled; pending += t.pending; laneFull += t.laneFull; stopped += t.stopped
        timedOut += t.timedOut; boxes += t.boxes; batches += t.batches; spawned += t.spawned
        timers += t.timers; retunes += t.retunes; sleeps += t.sleeps; raced += t.raced
    }

    var line: String {
        "posts \(posts) (enqueued \(enqueued), rejected \(rejected): full \(laneFull) stopped \(stopped) timed out \(timedOut); dropped \(dropped)), "
            + "handled \(handled) + pending \(pending) (posts that raced shutdown: \(raced)), boxes \(boxes) released once, batch posts \(batches), handler posts \(spawned), "
            + "timer events \(timers), retunes \(retunes), sleeps \(sleeps)"
    }
}
