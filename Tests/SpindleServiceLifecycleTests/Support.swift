import Dispatch
import Foundation
import Logging
import Spindle

struct Tick: InlineEvent { var seq: UInt64 }
struct Hold: InlineEvent { var worker: UInt32 }
struct Probe: InlineEvent { var seq: UInt64 }

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

/// Waits at most `seconds` for the task running a `ServiceGroup` and returns its result. On
/// timeout, `stop` runs (stop the engine) and the task is cancelled, so nothing is left running,
/// then `TimedOut` is thrown. (Waiting on `run.value` alone would not end on a timeout: a task's
/// value does not give up when its waiter is cancelled.)
func finish(
    _ run: Task<Void, any Error>, within seconds: Double, _ what: String, orElse stop: @escaping @Sendable () -> Void
) async throws -> Result<Void, any Error> {
    let result = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
        group.addTask { await run.result }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await group.next()!
        if first == nil {
            stop()
            run.cancel()  // the waiting child returns once the group has stopped
        }
        group.cancelAll()
        return first
    }
    guard let result else { throw TimedOut(what: what) }
    return result
}

/// The known engine race these tests keep apart from their exact counts: a post from another
/// thread that starts just before shutdown can be accepted and then published after the workers
/// found every lane empty and exited — never handled, though the post returned success. (The
/// state check in `sp_foreign_post`, CSupport/post.c, comes before the ring publish, and nothing
/// makes shutdown wait for a producer between the two.) Probes, the posts made while shutdown
/// begins, go to lane 0 with their own tally; the backlog's lanes stay exact.
let probeRace =
    "engine: a post racing shutdown can be accepted and never handled (sp_foreign_post checks the state before it publishes)"

/// Posts probes to lane 0 until the engine refuses with `stopped` (intake closed), counting what it
/// accepted. False when intake stayed open for `seconds`.
func postUntilStopped(_ engine: Engine, _ kind: EventKind<Probe>, accepted: Tally, seconds: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    var seq: UInt64 = 0
    while Date() < deadline {
        do {
            try engine.post(Probe(seq: seq), as: kind, lane: Lane(index: 0), to: .spread)
            accepted.add(0)
        } catch  where error.code == .stopped {
            return true
        } catch {
            usleep(100)  // lane full: back off (a producer's retry), the handlers are held
        }
        seq += 1
    }
    return false
}
