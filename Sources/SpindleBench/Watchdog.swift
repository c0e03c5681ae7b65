import CBenchPeers
import Foundation
import Spindle
import Synchronization

/// The harness's stall watchdog: every round of every system is watched, and a round in which no
/// event is handled for ``BenchConfig/stallSeconds`` ends the run — exit code 1 and a diagnostic
/// on stderr naming the round and, for a Spindle round, each worker's sleep flag, sleeps, wake-ups
/// and pending events per lane. A benchmark never waits forever (a lost wake-up once hung the main
/// job for ten minutes).
///
/// Progress is read, never pushed: the live engine's handled counts (its per-worker counters) and
/// the peers' heartbeat (``cbp_beat``, once per consumer batch). The watchdog thread looks every
/// 100 ms and sleeps in between; it costs the measured threads nothing.
final class Watchdog: Sendable {
    /// The one watchdog of the process.
    static let shared = Watchdog()

    private struct Round {
        var label: String
        var stallNS: UInt64
        var engine: Engine?
        var progress: UInt64
        var changedAt: UInt64
    }

    private let round = Mutex<Round?>(nil)
    private let started = Atomic<Bool>(false)

    /// What a stall does: print the diagnostic and exit 1 (never returns).
    private static func stalled(_ message: String) -> Never {
        FileHandle.standardError.write(Data(("\n" + message + "\n").utf8))
        exit(1)
    }

    /// Starts watching a round.
    func begin(_ label: String, stallSeconds: Double) {
        startThreadOnce()
        let now = nowNS()
        round.withLock {
            $0 = Round(label: label, stallNS: UInt64(stallSeconds * 1e9), engine: nil, progress: cbp_heartbeat_now(), changedAt: now)
        }
    }

    /// The round's engine (its handled counts are progress; its workers are in the diagnostic).
    func watch(_ engine: Engine?) {
        round.withLock { $0?.engine = engine }
    }

    /// The round is over.
    func end() {
        round.withLock { $0 = nil }
    }

    private func startThreadOnce() {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let t = Thread { [self] in
            while true {
                usleep(100_000)  // the watchdog's period; it never holds up a measured thread
                check()
            }
        }
        t.name = "spindle-bench-watchdog"
        t.start()
    }

    private func check() {
        let now = nowNS()
        let (engine, snapshot) = round.withLock { r -> (Engine?, Round?) in (r?.engine, r) }
        guard let snapshot else { return }
        let progress = cbp_heartbeat_now() &+ (engine?.handledTotal ?? 0)
        let stale = round.withLock { r -> Bool in
            guard var current = r, current.label == snapshot.label else { return false }
            if progress != current.progress {
                current.progress = progress
                current.changedAt = now
                r = current
                return false
            }
            return now &- current.changedAt > current.stallNS
        }
        guard stale else { return }
        var message =
            "spindle bench: stalled: \(snapshot.label): no event handled for \(Double(snapshot.stallNS) / 1e9) s; the run ends (exit 1)"
        if let engine { message += "\n" + engine.stallReport() }
        Watchdog.stalled(message)
    }
}
