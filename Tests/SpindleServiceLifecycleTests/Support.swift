import Dispatch
import Foundation
import Logging
import Spindle

struct Tick: InlineEvent { var seq: UInt64 }
struct Hold: InlineEvent { var worker: UInt32 }

/// A short-spin configuration on every CPU this process may use.
func serviceTestConfig() -> Engine.Configuration {
    var c = Engine.Configuration.hostDefault
    c.spin = .microseconds(20)
    return c
}

let quiet = Logger(label: "spindle.test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Per-lane tallies kept by the test's own producers and handlers.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var cells: [Int]
    init(lanes: Int) { cells = Array(repeating: 0, count: lanes) }
    func add(_ lane: Int, _ n: Int = 1) { lock.withLock { cells[lane] += n } }
    subscript(lane: Int) -> Int { lock.withLock { cells[lane] } }
    var all: [Int] { lock.withLock { cells } }
    var total: Int { all.reduce(0, +) }
}

/// Holds every worker inside a handler until the test opens it, so a backlog builds behind it.
final class Gate: @unchecked Sendable {
    private let entered = DispatchSemaphore(value: 0)
    private let release = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var opened = false
    /// Called by the handler; a gate left shut gives up after 30 s (the test then fails on counts).
    func hold() {
        entered.signal()
        if !lock.withLock({ opened }) { _ = release.wait(timeout: .now() + 30) }
    }
    /// Waits until `n` handlers are inside `hold()`.
    func waitUntilHeld(_ n: Int) -> Bool {
        (0..<n).allSatisfy { _ in entered.wait(timeout: .now() + 10) == .success }
    }
    func open(_ n: Int) {
        lock.withLock { opened = true }
        for _ in 0..<n { release.signal() }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// `operation`'s result, or `TimedOut` after `seconds` (the operation is then left running: the
/// caller stops what it waits for).
func within<T: Sendable>(_ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T)
    async throws -> T
{
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut(what: what) }
        return value
    }
}

/// Posts until the engine refuses with `stopped` (intake closed), counting what it accepted, per
/// lane. False when intake stayed open for `seconds`.
func postUntilStopped(_ engine: Engine, _ kind: EventKind<Tick>, lanes: Int, posted: Tally, seconds: Double = 10)
    -> Bool
{
    let deadline = Date().addingTimeInterval(seconds)
    var seq: UInt64 = 0
    while Date() < deadline {
        let lane = Int(seq % UInt64(lanes))
        do {
            try engine.post(Tick(seq: seq), as: kind, lane: Lane(index: lane), to: .spread)
            posted.add(lane)
        } catch  where error.code == .stopped {
            return true
        } catch {
            usleep(100)  // lane full: back off (a producer's retry), the handlers are held
        }
        seq += 1
    }
    return false
}
