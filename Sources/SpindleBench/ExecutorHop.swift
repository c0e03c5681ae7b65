import CBenchPeers
import Foundation
import Logging
import Spindle
import Synchronization

/// The `executor` scenario: hops of async code onto an executor. `pairs` pairs of tasks on the
/// executor under test pass a baton back and forth: each task resumes the other's continuation and
/// parks on its own, so every pass enqueues the other task's job on that executor, which then runs
/// it — one hop. Figure of merit: hops (jobs) per second, and allocations per hop with the tasks'
/// own creation taken out (a round of 0 passes, measured just before, gives what creating them
/// costs). Only passes that found the other task parked count (on a parallel executor a pass can
/// meet a task that has not parked yet; that one is not a hop and is not counted).
///
/// - Spindle: tasks that prefer worker 1's executor, lane 0 (`spindle`), and actors whose
///   `unownedExecutor` is that executor (`spindle-actor`, the shape of the NIO row): every hop
///   enters the worker's own queue from the worker (the local path).
/// - The global concurrent executor: the same tasks with no preference (`Task.detached`).
/// - A peer's serial executor (SwiftNIO's event loop, which is not a `TaskExecutor`): the tasks run
///   in actors whose `unownedExecutor` is that executor (``serialExecutorTrial(_:_:shutdown:)``).
///
/// (`Task.yield()` is not used: on Swift 6.3 it allocates a job per call and enqueues two.)
public enum ExecutorHop {
    /// Concurrent pairs of tasks.
    public static let pairs = 8

    /// Passes per task.
    static func passes(_ c: BenchConfig) -> Int { c.quick ? 20_000 : 100_000 }

    static var contenders: [Contender] {
        [
            Contender(system: .spindleActor, scenarios: [.executor]) { _, c in
                try spindle(c, taskPreference: false)
            },
            Contender(system: .spindleWorkers, scenarios: [.executor]) { _, c in
                try spindle(c, taskPreference: true, spread: true)
            },
            Contender(system: .globalExecutor, scenarios: [.executor]) { _, c in try global(c) },
        ]
    }

    /// Where a task parks until the other one passes the baton: one atomic word, `0` (empty), `1`
    /// (a pass waits) or the parked task's continuation. A pass is one compare-and-swap on the other
    /// side's word; parking one on its own. (A `Mutex` here, with its lock and unlock per pass, was
    /// 12 % of the Spindle worker's samples: the harness, not the hop.) The pairs' protocol never
    /// leaves two passes pending on one mailbox.
    final class Mailbox: Sendable {
        private let state = Atomic<UInt>(0)

        /// Passes the baton; true when it resumed a parked task (each such pass enqueues that task's
        /// job: a hop).
        @inline(__always)
        func signal() -> Bool {
            var s = state.load(ordering: .acquiring)
            while true {
                precondition(s != 1, "executor bench: two passes pending on one mailbox")
                let (done, seen) = state.compareExchange(
                    expected: s, desired: s == 0 ? 1 : 0, ordering: .acquiringAndReleasing)
                if done { break }
                s = seen
            }
            guard s != 0 else { return false }
            unsafeBitCast(s, to: UnsafeContinuation<Void, Never>.self).resume()
            return true
        }

        /// Resumes `c` now if a pass is waiting, else keeps it for the next one.
        @inline(__always)
        func park(_ c: UnsafeContinuation<Void, Never>) {
            let (parked, _) = state.compareExchange(
                expected: 0, desired: unsafeBitCast(c, to: UInt.self), ordering: .acquiringAndReleasing)
            if parked { return }
            state.store(0, ordering: .releasing)  // the pending pass (only the other side adds one)
            c.resume()
        }
    }

    /// What one task of a pair does.
    struct Side: Sendable {
        var pair: Int
        var passes: Int
        var mine: Mailbox
        var theirs: Mailbox
        var first: Bool
    }

    /// One side of a pair: `first` passes before it waits. Parks with `withUnsafeContinuation`
    /// inline (no nested async call, whose return the compiler follows with an executor check: a
    /// `swift_task_switch` per pass that is the harness's, not the hop's). Returns the hops its
    /// passes made.
    static func play(_ passes: Int, mine: Mailbox, theirs: Mailbox, first: Bool) async -> Int {
        var hops = 0
        for i in 0..<passes {
            if i & 1023 == 0 { cbp_beat(1) }  // progress for the stall watchdog
            if first && theirs.signal() { hops += 1 }
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in mine.park(c) }
            if !first && theirs.signal() { hops += 1 }
        }
        return hops
    }

    /// Spindle's rows: an engine per round; the pairs on worker 1's (or the only worker's) executor,
    /// lane 0 — as tasks that prefer it (`spindle`), or as actors whose `unownedExecutor` is the
    /// worker's (`spindle-actor`, the same shape as the NIO row).
    ///
    /// `spread`: the pairs go round-robin over every worker's executor (`spindle-workers`: as many
    /// CPUs as the global executor uses; each hop still enters one pinned worker's lane).
    static func spindle(_ c: BenchConfig, taskPreference: Bool, spread: Bool = false) throws -> Trial {
        var logger = Logger(label: "spindle.bench")
        logger.logLevel = .warning  // one engine per round: its start-up lines would drown the table
        var builder = Engine.Builder(configuration: c.engine, logger: logger)
        // A batch of these jobs past the slow-batch threshold is this VM descheduling the worker;
        // logging each report would allocate inside the measured window (mallocs per hop > 0 under
        // load). Counted here and said once the round is over.
        let slow = SlowCount()
        builder.onSlowHandler { _ in slow.n.add(1, ordering: .relaxed) }
        let engine: Engine
        do { engine = try builder.start() } catch { throw BenchError.runFailed("executor: engine start: \(error)") }
        defer { _ = try? engine.shutdownBlocking(deadline: .now + .seconds(10)) }
        let worker = WorkerID(min(1, engine.workerCount - 1))
        let execs: [WorkerExecutor]
        do {
            execs = try (spread ? Array(0..<engine.workerCount) : [worker.rawValue]).map {
                try engine.executor(worker: WorkerID($0), lane: Lane(index: 0))
            }
        } catch { throw BenchError.runFailed("executor: \(error)") }
        let exec = execs[0]
        let trial =
            try taskPreference
            ? measure(c) { side, done in
                Task(executorPreference: execs[side.pair % execs.count]) {
                    done(await play(side.passes, mine: side.mine, theirs: side.theirs, first: side.first))
                }
            }
            : onSerialExecutor(c, exec.asUnownedSerialExecutor())
        if slow.n.load(ordering: .relaxed) > 0 {
            print(
                "note: executor \(spread ? "spindle-workers" : taskPreference ? "spindle" : "spindle-actor"): \(slow.n.load(ordering: .relaxed)) batch(es) of jobs ran past the slow-batch threshold (the worker was descheduled)",
                to: &standardError)
        }
        if SpindleRound.diagnostics {  // SPINDLE_BENCH_DIAG=1: jobs per batch, rounds, sleeps
            for e in execs {
                let ws = engine.workerStats(e.worker)
                let ls = engine.stats(worker: e.worker, lane: Lane(index: 0))
                print(
                    "diag executor: worker \(e.worker.rawValue): jobs \(ls.handled) (\(trial.events) hops in all), batches \(ws.batches), rounds \(ws.rounds), sleeps \(ws.sleeps), foreign wake-ups \(ws.foreignWakeups)",
                    to: &standardError)
            }
        }
        return trial
    }

    final class SlowCount: Sendable { let n = Atomic<Int>(0) }

    static func global(_ c: BenchConfig) throws -> Trial {
        try measure(c) { side, done in
            Task.detached {
                done(await play(side.passes, mine: side.mine, theirs: side.theirs, first: side.first))
            }
        }
    }

    /// The pairs as actors on `executor`.
    static func onSerialExecutor(_ c: BenchConfig, _ executor: UnownedSerialExecutor) throws -> Trial {
        try measure(c) { side, done in
            let player = Player(executor)
            Task.detached {
                done(await player.play(side))
            }
        }
    }

    /// An actor on a given serial executor: the side of a pair runs isolated to it, so a resumed
    /// task comes back to that executor.
    actor Player {
        let executor: UnownedSerialExecutor
        init(_ executor: UnownedSerialExecutor) { self.executor = executor }
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor }
        /// The loop inline in the actor, parking with `withUnsafeContinuation` right here, so every
        /// resume comes back to this actor's executor.
        func play(_ side: Side) async -> Int {
            var hops = 0
            for i in 0..<side.passes {
                if i & 1023 == 0 { cbp_beat(1) }  // progress for the stall watchdog
                if side.first && side.theirs.signal() { hops += 1 }
                await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in side.mine.park(c) }
                if !side.first && side.theirs.signal() { hops += 1 }
            }
            return hops
        }
    }

    /// A round on a peer's serial executor (e.g. `loop.executor.asUnownedSerialExecutor()` of a NIO
    /// event loop); `shutdown` is called when the round is over.
    public static func serialExecutorTrial(_ c: BenchConfig, _ executor: UnownedSerialExecutor, shutdown: () -> Void)
        throws -> Trial
    {
        defer { shutdown() }
        return try onSerialExecutor(c, executor)
    }

    /// Starts `pairs` pairs (2 × `pairs` tasks through `spawn`) for 0 passes, then for `passes(c)`,
    /// and returns the second round with the first one's allocations taken out.
    static func measure(
        _ c: BenchConfig, spawn: (Side, @escaping @Sendable (_ hops: Int) -> Void) -> Void
    ) throws -> Trial {
        func round(_ passes: Int) throws -> (seconds: Double, mallocs: UInt64, hops: Int) {
            let tasks = 2 * pairs
            let left = Atomic<Int>(tasks)
            let hops = Atomic<Int>(0)
            let done = Completion()
            let boxes = (0..<tasks).map { _ in Mailbox() }
            let before = mallocsSoFar()
            let start = nowNS()
            for p in 0..<pairs {
                let a = boxes[2 * p]
                let b = boxes[2 * p + 1]
                let finish: @Sendable (Int) -> Void = { n in
                    hops.add(n, ordering: .relaxed)
                    if left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done.signal() }
                }
                spawn(Side(pair: p, passes: passes, mine: a, theirs: b, first: true), finish)
                spawn(Side(pair: p, passes: passes, mine: b, theirs: a, first: false), finish)
            }
            guard done.wait(seconds: 120) else {
                throw BenchError.runFailed(
                    "executor: \(left.load(ordering: .relaxed)) of \(tasks) tasks did not finish in 120 s")
            }
            let seconds = Double(nowNS() &- start) / 1e9
            return (seconds, mallocsSoFar() - before, hops.load(ordering: .relaxed))
        }
        let creation = try round(0)
        let cpuBefore = processCPUNanoseconds()
        let run = try round(passes(c))
        if SpindleRound.diagnostics {  // CPU per hop: what the machine's load does not change much
            let cpu = Double(processCPUNanoseconds() &- cpuBefore)
            print(
                "diag executor: \(run.hops) hops in \(String(format: "%.3f", run.seconds)) s, process CPU \(String(format: "%.0f", cpu / Double(max(run.hops, 1)))) ns per hop (\(String(format: "%.2f", cpu / 1e9 / run.seconds)) CPUs busy)",
                to: &standardError)
        }
        return Trial(
            events: run.hops, seconds: run.seconds,
            mallocs: run.mallocs > creation.mallocs ? run.mallocs - creation.mallocs : 0)
    }
}

/// User + system CPU time of the whole process so far.
func processCPUNanoseconds() -> UInt64 {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1_000 }
    return ns(u.ru_utime) + ns(u.ru_stime)
}

extension ExecutorPeer {
    /// A contender for the `executor` scenario on a peer's serial executor: `makeExecutor` is called
    /// once per round and returns the executor and how to tear it down.
    ///
    /// ```swift
    /// let nio = ExecutorPeer.serialExecutorContender(system: .nioEventLoop) {
    ///     let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    ///     return (group.next().executor.asUnownedSerialExecutor(), { try? group.syncShutdownGracefully() })
    /// }
    /// ```
    public static func serialExecutorContender(
        system: System,
        makeExecutor: @escaping @Sendable () throws -> (executor: UnownedSerialExecutor, shutdown: () -> Void)
    ) -> Contender {
        Contender(system: system, scenarios: [.executor]) { _, c in
            let (executor, shutdown) = try makeExecutor()
            return try ExecutorHop.serialExecutorTrial(c, executor, shutdown: shutdown)
        }
    }
}
