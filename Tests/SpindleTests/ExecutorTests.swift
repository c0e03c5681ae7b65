import CMallocCounter
import CSpindle
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable import Spindle

/// Runs `body` in a detached task and waits for it from this thread with a deadline: a job that
/// never runs fails the test instead of hanging it.
func awaitResult<T: Sendable>(
    within seconds: Double = 20, _ what: String = "task",
    _ body: @escaping @Sendable () async throws -> T
) throws -> T {
    let box = Locked<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        let r: Result<T, any Error>
        do { r = .success(try await body()) } catch { r = .failure(error) }
        box.withLock { $0 = r }
        done.signal()
    }
    guard done.wait(timeout: .now() + seconds) == .success, let r = box.withLock({ $0 }) else {
        throw AwaitTimeout(description: "\(what) did not finish within \(seconds) s")
    }
    return try r.get()
}

/// glibc's `sched_getcpu(3)` (declared under _GNU_SOURCE, which the Glibc module does not set).
@_silgen_name("sched_getcpu") func sched_getcpu() -> Int32

struct AwaitTimeout: Error, CustomStringConvertible { let description: String }

/// Where async code runs: the CPU, and which worker of `engine` (nil: not on one of its workers).
struct Place: Sendable, Equatable {
    var cpu: Int32
    var worker: Int?
    static func here(_ engine: Engine) -> Place {
        let w = sp_current_worker(engine.handle)
        return Place(cpu: sched_getcpu(), worker: w.map { Int(sp_worker_id($0)) })
    }
}

/// An actor on a worker executor that counts how many of its calls are in flight at once.
actor Guarded {
    let executor: WorkerExecutor
    let inFlight = Atomic<Int>(0)
    let maxInFlight = Atomic<Int>(0)
    let offWorker = Atomic<Int>(0)
    var calls = 0
    init(_ executor: WorkerExecutor) { self.executor = executor }
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    func step() {
        let now = inFlight.add(1, ordering: .sequentiallyConsistent).newValue
        _ = maxInFlight.max(now, ordering: .relaxed)
        if executor.isIsolatingCurrentContext() != true { offWorker.add(1, ordering: .relaxed) }
        for _ in 0..<20 { sched_yield() }  // a window in which another thread would overlap
        calls += 1
        inFlight.subtract(1, ordering: .sequentiallyConsistent)
    }
    func value() -> Int { calls }
}

/// Where a task parks until another passes it the baton (every pass to a parked task enqueues its
/// job: one hop).
final class Baton: Sendable {
    private let state = Mutex<(waiter: UnsafeContinuation<Void, Never>?, passes: Int)>((nil, 0))
    func pass() {
        state.withLock { s -> UnsafeContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.passes += 1
            return nil
        }?.resume()
    }
    func wait() async {
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.passes > 0 {
                    s.passes -= 1
                    return true
                }
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
    }
}

/// A default actor (no executor of its own).
actor Plain {
    func place(_ engine: Engine) -> Place { Place.here(engine) }
}

/// An actor whose own executor is a given worker's.
actor Pinned {
    let executor: WorkerExecutor
    init(_ executor: WorkerExecutor) { self.executor = executor }
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    func place(_ engine: Engine) -> Place { Place.here(engine) }
}

extension EngineSuites {
    /// Workers as executors: where async code runs, at which lane, serially, with no allocation per
    /// job; what keeps the preference; full lanes and shutdown; `send` and event streams.
    @Suite(.serialized)
    struct ExecutorTests {
        static let two = testConfig(workers: 2)

        @Test func asyncCodeRunsOnWorkerOnesCPU() throws {
            let engine = try Engine.Builder(configuration: Self.two).start()
            defer { _ = engine.stop() }
            let exec = try engine.executor(worker: WorkerID(1), lane: Lane(index: 0))
            let cpu1 = Int32(engine.configuration.cpus[1])
            let viaPreference = try awaitResult { await withTaskExecutorPreference(exec) { Place.here(engine) } }
            #expect(viaPreference == Place(cpu: cpu1, worker: 1))
            let viaTask = try awaitResult { await Task(executorPreference: exec) { Place.here(engine) }.value }
            #expect(viaTask == Place(cpu: cpu1, worker: 1))
            let viaActor = try awaitResult { await Pinned(exec).place(engine) }
            #expect(viaActor == Place(cpu: cpu1, worker: 1))
        }

        /// The executors do not outlive their engine: each holds its table and the table held
        /// them, a cycle that leaked every executor and fallback queue of every engine (found by
        /// LeakSanitizer). Once the engine is gone, a weak reference to one of its executors is nil;
        /// an executor a caller keeps still works, on the fallback.
        @Test func executorsAreFreedWithTheirEngine() throws {
            weak var gone: WorkerExecutor?
            var kept: WorkerExecutor?
            do {
                let engine = try Engine.Builder(configuration: Self.two).start()
                gone = try engine.executor(worker: WorkerID(1), lane: Lane(index: 1))
                kept = try engine.executor(worker: WorkerID(0), lane: Lane(index: 0))
                #expect(gone != nil)
                _ = engine.stop()
            }
            #expect(gone == nil, "an executor outlived its engine (a reference cycle)")
            let survivor = kept!
            let ran = try awaitResult { await withTaskExecutorPreference(survivor) { true } }
            #expect(ran, "a kept executor ran nothing after its engine was freed")
        }

        /// A job on `critical` overtakes a bulk backlog of 1000 events queued before it: it runs
        /// after at most the batch in progress (max batch 32), not after the backlog.
        @Test func aCriticalJobOvertakesABulkBacklog() throws {
            var builder = Engine.Builder(configuration: Self.two)
            let gate = WorkerGate()
            let order = Recorder<Int>()
            let critical = try builder.lane(named: "critical")
            let bulk = try builder.lane(named: "bulk")
            let ticks = try builder.register(Tick.self) { t, _ in order.append(Int(t.seq)) }
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let engine = try builder.start()
            defer {
                gate.open()  // a failed expectation must not leave the worker held (stop would wait)
                _ = engine.stop()
            }
            let w1 = WorkerID(1)
            try engine.post(Gate(id: 0), as: gates, lane: bulk, to: .worker(w1))
            #expect(gate.waitUntilHeld())
            let backlog = 1000
            for i in 0..<backlog {
                try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .worker(w1))
            }
            let exec = try engine.executor(worker: w1, lane: critical)
            let job = Task(executorPreference: exec) { order.append(-1) }
            #expect(
                eventually { engine.stats(worker: w1, lane: critical).pending == 1 }, "the job is not in lane critical")
            gate.open()
            _ = try awaitResult { await job.value }
            #expect(eventually { order.count == backlog + 1 })
            let at = order.all.firstIndex(of: -1) ?? Int.max
            #expect(
                at <= engine.configuration.lanes[bulk.index].maxBatch,
                "the critical job ran after \(at) bulk events of \(backlog)")
            #expect(Array(order.all.filter { $0 >= 0 }) == Array(0..<backlog))
        }

        /// An actor on a worker executor: 64 tasks × 50 calls from the global pool and from tasks
        /// preferring the same worker's other lanes never overlap, and every call counts.
        @Test func anActorOnAWorkerNeverRunsConcurrently() throws {
            let engine = try Engine.Builder(configuration: Self.two).start()
            defer { _ = engine.stop() }
            let guarded = Guarded(try engine.executor(worker: WorkerID(1), lane: Lane(index: 2)))
            let bulk1 = try engine.executor(worker: WorkerID(1), lane: Lane(index: 3))
            let tasks = 64
            let calls = 50
            let made = try awaitResult(within: 60) {
                await withTaskGroup(of: Int.self) { group in
                    for t in 0..<tasks {
                        if t % 2 == 0 {
                            group.addTask {
                                for _ in 0..<calls { await guarded.step() }
                                return calls
                            }
                        } else {
                            group.addTask(executorPreference: bulk1) {
                                for _ in 0..<calls { await guarded.step() }
                                return calls
                            }
                        }
                    }
                    return await group.reduce(0, +)
                }
            }
            #expect(made == tasks * calls)
            #expect(try awaitResult { await guarded.value() } == tasks * calls)
            #expect(guarded.maxInFlight.load(ordering: .relaxed) == 1)
            #expect(guarded.offWorker.load(ordering: .relaxed) == 0)
        }

        /// Every executor of one worker is one exclusive context; `assumeIsolated` works from a
        /// handler on that worker, and the check says no on the other worker.
        @Test func isolationChecksAreRightFromHandlers() throws {
            var builder = Engine.Builder(configuration: Self.two)
            let seen = Recorder<String>()
            let box = Locked<Engine?>(nil)
            let ticks = try builder.register(Tick.self) { t, ctx in
                let engine = box.withLock { $0 }!
                let exec = try! engine.executor(worker: WorkerID(1), lane: Lane(index: 1))
                let on1 = exec.isIsolatingCurrentContext() == true
                seen.append("worker \(ctx.worker.rawValue): isolating \(on1)")
                if ctx.worker == WorkerID(1) {
                    let pinned = Pinned(exec)
                    let place = pinned.assumeIsolated { $0.place(engine) }  // traps if the check is wrong
                    seen.append("assumeIsolated on worker \(place.worker ?? -1)")
                }
            }
            let engine = try builder.start()
            box.withLock { $0 = engine }
            defer { _ = engine.stop() }
            try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { seen.count == 1 })
            try engine.post(Tick(seq: 1, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(1)))
            #expect(eventually { seen.count == 3 })
            #expect(
                seen.all == ["worker 0: isolating false", "worker 1: isolating true", "assumeIsolated on worker 1"])
            let a = try engine.executor(worker: WorkerID(1), lane: Lane(index: 0))
            #expect(
                a.isSameExclusiveExecutionContext(other: try engine.executor(worker: WorkerID(1), lane: Lane(index: 3)))
            )
            #expect(a.isSameExclusiveExecutionContext(other: try engine.executor(worker: WorkerID(1))))
            #expect(
                !a.isSameExclusiveExecutionContext(
                    other: try engine.executor(worker: WorkerID(0), lane: Lane(index: 0))))
            #expect(a.isIsolatingCurrentContext() == false)  // the test's thread
            #expect(try engine.executor(worker: WorkerID(1), lane: Lane(index: 0)) === a)
            #expect(throws: SpindleError.self) { try engine.executor(worker: WorkerID(2), lane: Lane(index: 0)) }
            #expect(throws: SpindleError.self) { try engine.executor(worker: WorkerID(0), lane: Lane(index: 4)) }
        }

        /// Without a fixed lane, a job's priority picks it: background → bulk, high → critical,
        /// counted by the lanes' own `handled`: jobs in that lane only. (A task's start takes two jobs
        /// on Swift 6.3, both at its priority. Nobody awaits the tasks: awaiting one from a higher
        /// priority escalates it, and the runtime then enqueues it once more at the new priority.)
        @Test func priorityPicksTheLaneOfAJobWithoutOne() throws {
            let engine = try Engine.Builder(configuration: Self.two).start()
            defer { _ = engine.stop() }
            let w1 = WorkerID(1)
            let exec = try engine.executor(worker: w1)
            func handled() -> [UInt64] { (0..<4).map { engine.stats(worker: w1, lane: Lane(index: $0)).handled } }
            for (priority, lane) in [(TaskPriority.background, 3), (.high, 0), (.medium, 1), (.utility, 2)] {
                let before = handled()
                let ran = Locked<Place?>(nil)
                Task(executorPreference: exec, priority: priority) { ran.withLock { $0 = Place.here(engine) } }
                #expect(eventually { ran.withLock { $0 } != nil })
                #expect(ran.withLock { $0 }?.worker == 1)
                let delta = zip(handled(), before).map { $0 - $1 }
                #expect(
                    delta[lane] >= 1 && delta.enumerated().allSatisfy { $0.offset == lane || $0.element == 0 },
                    "priority \(priority): jobs per lane \(delta)")
            }
            #expect(WorkerExecutor.lane(for: JobPriority(rawValue: 0), laneCount: 4).index == 1)
            #expect(WorkerExecutor.lane(for: JobPriority(TaskPriority.low), laneCount: 2).index == 1)
            #expect(WorkerExecutor.lane(for: JobPriority(TaskPriority.high), laneCount: 1).index == 0)
        }

        /// What keeps the preference on this toolchain, and what does not (docs: Executors.md).
        @Test func whatKeepsThePreference() throws {
            let engine = try Engine.Builder(configuration: Self.two).start()
            defer { _ = engine.stop() }
            let exec = try engine.executor(worker: WorkerID(1), lane: Lane(index: 1))
            let other = Pinned(try engine.executor(worker: WorkerID(0), lane: Lane(index: 1)))
            let plain = Plain()
            let r = try awaitResult {
                await withTaskExecutorPreference(exec) {
                    var out: [String: Int?] = [:]
                    out["body"] = Place.here(engine).worker
                    await Task.yield()
                    out["after yield"] = Place.here(engine).worker
                    try? await Task.sleep(for: .milliseconds(2))
                    out["after sleep"] = Place.here(engine).worker
                    async let child = Place.here(engine).worker
                    out["async let"] = await child
                    out["task group"] = await withTaskGroup(of: Int?.self) { g in
                        g.addTask { Place.here(engine).worker }
                        return await g.next()!
                    }
                    out["Task {}"] = await Task { Place.here(engine).worker }.value
                    out["Task.detached"] = await Task.detached { Place.here(engine).worker }.value
                    out["actor on worker 0"] = await other.place(engine).worker
                    out["default actor"] = await plain.place(engine).worker
                    return out
                }
            }
            let expected: [String: Int?] = [
                "body": 1, "after yield": 1, "after sleep": 1, "async let": 1, "task group": 1,
                "Task {}": nil, "Task.detached": nil, "actor on worker 0": 0, "default actor": 1,
            ]
            #expect(r == expected)
        }

        /// Hopping onto a worker allocates nothing in the engine: two tasks on worker 1 passing a
        /// baton (each pass resumes the other's continuation from the worker: the local path), and
        /// continuations resumed from a foreign thread (the MPSC path), counted per thread by the
        /// malloc interposer after a warm-up. (Not `Task.yield()`: on Swift 6.3 it allocates a job
        /// of its own per call.)
        @Test(.enabled(if: spmc_available() == 1, "the malloc interposer is off under sanitizers"))
        func executorJobsAllocateNothing() throws {
            #expect(spmc_active() == 1, "malloc interposer not linked")
            let engine = try Engine.Builder(configuration: Self.two).start()
            defer { _ = engine.stop() }
            let exec = try engine.executor(worker: WorkerID(1), lane: Lane(index: 2))
            // Local path: every pass enqueues the other task's job on worker 1, from worker 1.
            let a = Baton()
            let b = Baton()
            let passes = 10_000
            let other = Task(executorPreference: exec) {
                for _ in 0..<(passes + 100) {
                    await b.wait()
                    a.pass()
                }
            }
            let handledBefore = engine.stats(worker: WorkerID(1), lane: Lane(index: 2)).handled
            let local = try awaitResult {
                await Task(executorPreference: exec) { () -> (UInt64, Int) in
                    var before: UInt64 = 0
                    var off = 0
                    for i in 0..<(passes + 100) {
                        if i == 100 { before = spmc_thread() }  // after a warm-up
                        b.pass()
                        await a.wait()
                        if exec.isIsolatingCurrentContext() != true { off += 1 }
                    }
                    return (spmc_thread() - before, off)
                }.value
            }
            _ = try awaitResult { await other.value }
            #expect(local.1 == 0, "left worker 1 \(local.1) times")
            #expect(local.0 == 0, "\(local.0) allocations on worker 1 for \(2 * passes) hops")
            let ran = engine.stats(worker: WorkerID(1), lane: Lane(index: 2)).handled - handledBefore
            #expect(ran >= UInt64(2 * passes), "only \(ran) jobs ran on the lane")

            // Foreign path: this thread resumes a continuation the task parked on worker 1; the
            // runtime enqueues the job on the executor from here.
            let parked = Locked<UnsafeContinuation<Void, Never>?>(nil)
            let workerAllocs = Atomic<UInt64>(0)
            let hops = 2000
            let task = Task(executorPreference: exec) {
                var before: UInt64 = 0
                for i in 0..<(hops + 100) {
                    if i == 100 { before = spmc_thread() }
                    await withUnsafeContinuation { c in parked.withLock { $0 = c } }
                }
                workerAllocs.store(spmc_thread() - before, ordering: .relaxed)
            }
            var foreign: UInt64 = 0
            for i in 0..<(hops + 100) {
                var c: UnsafeContinuation<Void, Never>?
                let deadline = Date().addingTimeInterval(10)
                while c == nil && Date() < deadline {
                    c = parked.withLock { p in
                        defer { p = nil }
                        return p
                    }
                }
                guard let c else {
                    Issue.record("the task did not park (hop \(i))")
                    task.cancel()
                    return
                }
                let before = spmc_thread()
                c.resume()
                if i >= 100 { foreign += spmc_thread() - before }
            }
            _ = try awaitResult { await task.value }
            #expect(foreign == 0, "\(foreign) allocations on the resuming thread for \(hops) foreign enqueues")
            #expect(workerAllocs.load(ordering: .relaxed) == 0, "allocations on worker 1 for \(hops) foreign hops")
        }

        /// A lane of capacity 64 held full: 200 jobs still all run (the overflow list), the actor
        /// stays serial, and the overflow is counted.
        @Test func jobsOnAFullLaneOverflowAndStillRun() throws {
            var config = Self.two
            config.lanes[0].capacity = 64
            var builder = Engine.Builder(configuration: config)
            let gate = WorkerGate()
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let engine = try builder.start()
            defer {
                gate.open()  // a failed expectation must not leave the worker held (stop would wait)
                _ = engine.stop()
            }
            let w1 = WorkerID(1)
            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 3), to: .worker(w1))
            #expect(gate.waitUntilHeld())
            let guarded = Guarded(try engine.executor(worker: w1, lane: Lane(index: 0)))
            let n = 200
            let tasks = (0..<n).map { _ in Task.detached { await guarded.step() } }
            #expect(eventually { engine.core.jobs!.overflowed.load(ordering: .relaxed) > 0 }, "nothing overflowed")
            gate.open()
            _ = try awaitResult(within: 30) { for t in tasks { await t.value } }
            #expect(try awaitResult { await guarded.value() } == n)
            #expect(guarded.maxInFlight.load(ordering: .relaxed) == 1)
            #expect(guarded.offWorker.load(ordering: .relaxed) == 0)
        }

        /// A job still queued when the shutdown deadline passes is not lost: the worker is held in a
        /// handler while a `critical` job waits and shutdown is asked with a deadline already past;
        /// once the worker is let go the job runs exactly once — on the worker if it drained before
        /// the deadline took effect, else on the fallback (the engine's release of unhandled slots).
        @Test func aJobQueuedAtTheShutdownDeadlineIsNotLost() throws {
            var builder = Engine.Builder(configuration: Self.two)
            let gate = WorkerGate()
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let probes = try builder.register(Tick.self) { _, _ in }
            let engine = try builder.start()
            let w1 = WorkerID(1)
            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 3), to: .worker(w1))
            #expect(gate.waitUntilHeld())
            let exec = try engine.executor(worker: w1, lane: Lane(index: 0))
            let runs = Recorder<Int?>()
            let job = Task(executorPreference: exec) { runs.append(Place.here(engine).worker) }
            #expect(eventually { engine.stats(worker: w1, lane: Lane(index: 0)).pending >= 1 })
            let fellBackBefore = engine.core.jobs!.fellBack.load(ordering: .relaxed)
            let stopped = DispatchSemaphore(value: 0)
            Thread { _ = try? engine.shutdownBlocking(deadline: .now); stopped.signal() }.start()
            // Shutdown has begun once foreign posts are refused.
            #expect(eventually {
                do throws(PostError) {
                    try engine.post(Tick(seq: 0, producer: 0), as: probes, lane: Lane(index: 3), to: .worker(WorkerID(0)))
                    return false
                } catch { return error.code == .stopped }
            })
            gate.open()
            #expect(stopped.wait(timeout: .now() + 20) == .success, "shutdown did not return")
            _ = try awaitResult { await job.value }
            #expect(runs.count == 1)
            let fellBack = engine.core.jobs!.fellBack.load(ordering: .relaxed) > fellBackBefore
            #expect(runs.all == [fellBack ? nil : 1], "fell back: \(fellBack), ran on: \(runs.all)")
        }

        /// After shutdown a job is not lost: it runs on the worker's serial fallback, which counts as
        /// that worker's isolation; an actor there stays serial.
        @Test func jobsAfterShutdownRunOnTheFallback() throws {
            let engine = try Engine.Builder(configuration: Self.two).start()
            let exec = try engine.executor(worker: WorkerID(1), lane: Lane(index: 1))
            let guarded = Guarded(exec)
            _ = try awaitResult { await guarded.step() }
            _ = engine.stop()
            let before = engine.core.jobs!.fellBack.load(ordering: .relaxed)
            let made = try awaitResult {
                await withTaskGroup(of: Void.self) { g in
                    for _ in 0..<20 { g.addTask { for _ in 0..<10 { await guarded.step() } } }
                }
                return await guarded.value()
            }
            #expect(made == 201)
            #expect(guarded.maxInFlight.load(ordering: .relaxed) == 1)
            #expect(guarded.offWorker.load(ordering: .relaxed) == 0)  // the fallback isolates as worker 1
            #expect(engine.core.jobs!.fellBack.load(ordering: .relaxed) > before)
            let after = try awaitResult { await Task(executorPreference: exec) { Place.here(engine) }.value }
            #expect(after.worker == nil)
        }
    }
}
