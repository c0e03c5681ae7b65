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
            Contender(system: .globalExecutor, scenarios: [.executor]) { _, c in try global(c) },
        ]
    }

    /// Where a task parks until the other one passes the baton. Counts the passes that resumed a
    /// parked task (each one enqueues that task's job: a hop).
    final class Mailbox: Sendable {
        private let state = Mutex<(waiter: UnsafeContinuation<Void, Never>?, signals: Int)>((nil, 0))
        let hops = Atomic<Int>(0)

        func signal() {
            let w = state.withLock { s -> UnsafeContinuation<Void, Never>? in
                if let w = s.waiter {
                    s.waiter = nil
                    return w
                }
                s.signals += 1
                return nil
            }
            if let w {
                hops.add(1, ordering: .relaxed)
                w.resume()
            }
        }

        /// Parks the caller until the other side passes.
        func wait() async {
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in park(c) }
        }

        /// Resumes `c` now if a pass is waiting, else keeps it for the next one.
        func park(_ c: UnsafeContinuation<Void, Never>) {
            let now = state.withLock { s -> Bool in
                if s.signals > 0 {
                    s.signals -= 1
                    return true
                }
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
    }

    /// What one task of a pair does.
    struct Side: Sendable {
        var passes: Int
        var mine: Mailbox
        var theirs: Mailbox
        var first: Bool
    }

    /// One side of a pair: `first` passes before it waits.
    static func play(_ passes: Int, mine: Mailbox, theirs: Mailbox, first: Bool) async {
        for i in 0..<passes {
            if i & 1023 == 0 { cbp_beat(1) }  // progress for the stall watchdog
            if first {
                theirs.signal()
                await mine.wait()
            } else {
                await mine.wait()
                theirs.signal()
            }
        }
    }

    /// Spindle's rows: an engine per round; the pairs on worker 1's (or the only worker's) executor,
    /// lane 0 — as tasks that prefer it (`spindle`), or as actors whose `unownedExecutor` is the
    /// worker's (`spindle-actor`, the same shape as the NIO row).
    static func spindle(_ c: BenchConfig, taskPreference: Bool) throws -> Trial {
        var logger = Logger(label: "spindle.bench")
        logger.logLevel = .warning  // one engine per round: its start-up lines would drown the table
        let builder = Engine.Builder(configuration: c.engine, logger: logger)
        let engine: Engine
        do { engine = try builder.start() } catch { throw BenchError.runFailed("executor: engine start: \(error)") }
        defer { _ = try? engine.shutdownBlocking(deadline: .now + .seconds(10)) }
        let worker = WorkerID(min(1, engine.workerCount - 1))
        let exec: WorkerExecutor
        do { exec = try engine.executor(worker: worker, lane: Lane(index: 0)) } catch {
            throw BenchError.runFailed("executor: \(error)")
        }
        let trial =
            try taskPreference
            ? measure(c) { side, done in
                Task(executorPreference: exec) {
                    await play(side.passes, mine: side.mine, theirs: side.theirs, first: side.first)
                    done()
                }
            }
            : onSerialExecutor(c, exec.asUnownedSerialExecutor())
        if SpindleRound.diagnostics {  // SPINDLE_BENCH_DIAG=1: jobs per batch, rounds, sleeps
            let ws = engine.workerStats(worker)
            let ls = engine.stats(worker: worker, lane: Lane(index: 0))
            print(
                "diag executor: jobs \(ls.handled) for \(trial.events) hops, batches \(ws.batches), rounds \(ws.rounds), sleeps \(ws.sleeps), foreign wake-ups \(ws.foreignWakeups)",
                to: &standardError)
        }
        return trial
    }

    static func global(_ c: BenchConfig) throws -> Trial {
        try measure(c) { side, done in
            Task.detached {
                await play(side.passes, mine: side.mine, theirs: side.theirs, first: side.first)
                done()
            }
        }
    }

    /// The pairs as actors on `executor`.
    static func onSerialExecutor(_ c: BenchConfig, _ executor: UnownedSerialExecutor) throws -> Trial {
        try measure(c) { side, done in
            let player = Player(executor)
            Task.detached {
                await player.play(side)
                done()
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
        func play(_ side: Side) async {
            for i in 0..<side.passes {
                if i & 1023 == 0 { cbp_beat(1) }  // progress for the stall watchdog
                if side.first { side.theirs.signal() }
                await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in side.mine.park(c) }
                if !side.first { side.theirs.signal() }
            }
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
        _ c: BenchConfig, spawn: (Side, @escaping @Sendable () -> Void) -> Void
    ) throws -> Trial {
        func round(_ passes: Int) throws -> (seconds: Double, mallocs: UInt64, hops: Int) {
            let tasks = 2 * pairs
            let left = Atomic<Int>(tasks)
            let done = Completion()
            let boxes = (0..<tasks).map { _ in Mailbox() }
            let before = mallocsSoFar()
            let start = nowNS()
            for p in 0..<pairs {
                let a = boxes[2 * p]
                let b = boxes[2 * p + 1]
                let finish: @Sendable () -> Void = {
                    if left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done.signal() }
                }
                spawn(Side(passes: passes, mine: a, theirs: b, first: true), finish)
                spawn(Side(passes: passes, mine: b, theirs: a, first: false), finish)
            }
            guard done.wait(seconds: 120) else {
                throw BenchError.runFailed(
                    "executor: \(left.load(ordering: .relaxed)) of \(tasks) tasks did not finish in 120 s")
            }
            let seconds = Double(nowNS() &- start) / 1e9
            return (seconds, mallocsSoFar() - before, boxes.reduce(0) { $0 + $1.hops.load(ordering: .relaxed) })
        }
        let creation = try round(0)
        let run = try round(passes(c))
        return Trial(
            events: run.hops, seconds: run.seconds,
            mallocs: run.mallocs > creation.mallocs ? run.mallocs - creation.mallocs : 0)
    }
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
