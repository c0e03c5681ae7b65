import CSpindle
import CTestSupport
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Spindle

/// Events used across the suites.
struct Tick: InlineEvent { var seq: UInt64; var producer: UInt32; var tag: UInt32 = 0 }
struct Gate: InlineEvent { var id: UInt32 }
struct Big: InlineEvent { var a: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) }  // 56 bytes
struct Fits: InlineEvent { var a: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) }  // 48 bytes

/// A boxed event whose payload counts its own releases.
final class Tracker: Sendable {
    static let live = Atomic<Int>(0)
    static let created = Atomic<Int>(0)
    init() {
        Tracker.live.add(1, ordering: .relaxed)
        Tracker.created.add(1, ordering: .relaxed)
    }
    deinit { Tracker.live.subtract(1, ordering: .relaxed) }
}
struct Boxed: Event { let tracker: Tracker; let seq: UInt64 }

/// A configuration for tests: short spin, the given workers and backend.
func testConfig(workers: Int? = nil, backend: Engine.Configuration.Backend = .auto, spin: Duration = .microseconds(20))
    -> Engine.Configuration
{
    var c = Engine.Configuration.hostDefault
    if let n = workers { c.cpus = Array(c.cpus.prefix(n)) }
    c.backend = backend
    c.spin = spin
    return c
}

/// The backends every behaviour is checked on. Under `SPINDLE_TEST_DENY_IO_URING=1` (the process runs
/// under a seccomp filter that denies io_uring, as a container may) every case asks for `.auto`
/// and meets the fallback: `scripts/test.sh` runs the I/O suites that way.
let backends: [Engine.Configuration.Backend] = ioUringDenied ? [.auto, .epoll] : [.ioUring, .epoll]
let ioUringDenied = cts_io_uring_denied_by_env() != 0
/// Under `SPINDLE_TEST_URING_WITHHELD=0x70` the io_uring backend acts as on a 5.6–5.12 kernel (no
/// multishot poll, recv or accept, no buffer rings): the degraded forms run every I/O suite.
let uringWithheld = UInt32(cts_uring_withheld_by_env())

/// Holds a worker inside a handler until the test opens it: a real synchronization point, so a
/// backlog can be built while the worker is known to be busy.
final class WorkerGate: Sendable {
    private let entered = DispatchSemaphore(value: 0)
    private let release = DispatchSemaphore(value: 0)
    /// Called by the handler.
    /// Bounded: a test that fails before it opens the gate must not hang the worker (and so
    /// `stop()`) forever: after 30 s the handler goes on and the test fails.
    func hold() {
        entered.signal()
        if release.wait(timeout: .now() + 30) == .timedOut {
            Issue.record("WorkerGate: held for 30 s and never opened")
        }
    }
    /// Waits until a handler is inside `hold()`.
    func waitUntilHeld() -> Bool { entered.wait(timeout: .now() + 10) == .success }
    /// Lets it go.
    func open() { release.signal() }
}

/// A thread-safe log of what handlers saw, in order.
final class Recorder<Entry: Sendable>: Sendable {
    private let entries = Locked<[Entry]>([])
    func append(_ e: Entry) { entries.withLock { $0.append(e) } }
    var all: [Entry] { entries.withLock { $0 } }
    var count: Int { entries.withLock { $0.count } }
}

/// Counts per (worker, lane), for handlers to count for themselves.
final class Grid: Sendable {
    let workers: Int, lanes: Int
    private let cells: Locked<[Int]>
    init(workers: Int, lanes: Int) {
        self.workers = workers
        self.lanes = lanes
        self.cells = Locked(Array(repeating: 0, count: workers * lanes))
    }
    func add(_ w: Int, _ l: Int, _ n: Int = 1) { cells.withLock { $0[w * lanes + l] += n } }
    subscript(w: Int, l: Int) -> Int { cells.withLock { $0[w * lanes + l] } }
    var total: Int { cells.withLock { $0.reduce(0, +) } }
}

/// Waits for `condition` with a deadline, yielding the CPU between checks; false on timeout.
func eventually(within seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        sched_yield()
        usleep(100)
    }
    return condition()
}

/// Posts, retrying while the lane is full (a producer's backpressure loop, not a sleep).
func postRetrying<E: InlineEvent>(_ engine: Engine, _ e: E, _ kind: EventKind<E>, _ lane: Lane, _ dest: Destination) throws {
    while true {
        do {
            try engine.post(e, as: kind, lane: lane, to: dest)
            return
        } catch let error where error.code == .laneFull {
            sched_yield()
        }
    }
}

extension Engine {
    /// Shutdown for tests, from a plain thread.
    func stop(_ seconds: Int = 10) -> ShutdownReport {
        try! shutdownBlocking(deadline: .now + .seconds(seconds))
    }
}

/// Per-thread CPU time of a task, in ns (from /proc/self/task/TID/schedstat).
func cpuTimeNs(tid: Int32) -> UInt64? {
    guard let s = try? String(contentsOfFile: "/proc/self/task/\(tid)/schedstat", encoding: .utf8) else { return nil }
    return s.split(separator: " ").first.flatMap { UInt64($0) }
}

func taskExists(_ tid: Int32) -> Bool { FileManager.default.fileExists(atPath: "/proc/self/task/\(tid)") }

/// Open fds whose target is one of `kinds` (e.g. "anon_inode:[eventfd]").
func openFDs(matching kinds: [String]) -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.filter { fd in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else { return false }
        return kinds.contains(target)
    }.count
}

/// Every suite that starts engines nests here, so they run one at a time: they pin workers to the
/// same CPUs and count the process's worker threads and fds.
@Suite(.serialized) enum EngineSuites {}
