import CSpindle
import Dispatch
import Synchronization

/// What a job slot carries: the job, and the worker and lane it was meant for (read back when a
/// slot left at shutdown is handed to the fallback). 16 bytes, inline.
@usableFromInline
struct _JobSlot {
    @usableFromInline var job: UnsafeRawPointer?  // an UnownedJob; nil for a nudge (see _refused)
    @usableFromInline var worker: UInt32
    /// The executor's lane (UInt16.max: by priority): a leftover runs on that executor's fallback.
    @usableFromInline var lane: UInt16
    /// 1: enqueued through the serial face (an actor's job), run isolated to it; 0: a task's.
    @usableFromInline var isolated: UInt16
    @inlinable init(job: UnsafeRawPointer?, worker: UInt32, lane: UInt32, isolated: Bool) {
        self.job = job
        self.worker = worker
        self.lane = UInt16(truncatingIfNeeded: lane)
        self.isolated = isolated ? 1 : 0
    }
}

/// Jobs that found their lane full (or the lanes refusing at shutdown), waiting for the worker.
final class JobOverflow: Sendable {
    /// Set when `jobs` is not empty: the worker looks at it once per batch (one relaxed load).
    let pending = Atomic<Bool>(false)
    /// Set once the workers have exited: jobs go straight to the fallback.
    let closed = Atomic<Bool>(false)
    let jobs = Locked<[(job: UnownedJob, lane: UInt32, isolated: Bool)]>([])
}

/// Every executor of one engine, the job kind's handler, the overflow lists and the fallbacks.
/// Built by the builder before start; the executors are made once the C engine exists.
@usableFromInline
final class ExecutorTable: @unchecked Sendable {
    @usableFromInline let laneCount: Int
    let workerCount: Int
    /// The handler index of the job kind (the last entry of the table).
    @usableFromInline let kind: UInt32
    /// `[worker * laneCount + lane]`, then the priority executors `[workerCount * laneCount + worker]`.
    /// Unretained: the engine's core holds them (`executors`).
    private var table: UnsafeMutablePointer<Unmanaged<WorkerExecutor>>?
    /// The strong references while the engine lives (the engine's core holds this table, and so
    /// them); weak ones after (`releaseExecutors`). Locked: read on slow paths only (an engine's
    /// `executor(worker:lane:)`, overflow and fallback jobs), written at install and release.
    private let refs = Locked<(strong: [WorkerExecutor], weak: [WeakExecutor])>(([], []))
    struct WeakExecutor { weak var executor: WorkerExecutor? }
    let overflow: [JobOverflow]
    /// One serial queue per worker for jobs that arrive after its thread exited.
    let fallback: [DispatchQueue]
    let fallbackKey = DispatchSpecificKey<Int>()
    /// Jobs that went to an overflow list; jobs run on a fallback. For tests and reports.
    let overflowed = Atomic<UInt64>(0)
    let fellBack = Atomic<UInt64>(0)
    /// Set once the workers have exited (before the C engine may be freed): no more `sp_post`.
    @usableFromInline let stopped = Atomic<Bool>(false)

    init(workerCount: Int, laneCount: Int, kind: UInt32) {
        self.workerCount = workerCount
        self.laneCount = laneCount
        self.kind = kind
        self.overflow = (0..<workerCount).map { _ in JobOverflow() }
        self.fallback = (0..<workerCount).map { DispatchQueue(label: "spindle.worker\($0).fallback") }
        for (w, q) in fallback.enumerated() { q.setSpecific(key: fallbackKey, value: w) }
    }

    deinit { table?.deallocate() }

    /// Makes the executors for a started engine (before anyone can obtain one).
    func install(handle: OpaquePointer) {
        var all: [WorkerExecutor] = []
        for w in 0..<workerCount {
            for l in 0..<laneCount { all.append(WorkerExecutor(table: self, handle: handle, worker: w, lane: l)) }
        }
        for w in 0..<workerCount { all.append(WorkerExecutor(table: self, handle: handle, worker: w, lane: nil)) }
        let t = UnsafeMutablePointer<Unmanaged<WorkerExecutor>>.allocate(capacity: all.count)
        for (i, e) in all.enumerated() { (t + i).initialize(to: .passUnretained(e)) }
        table = t
        refs.withLock { $0.strong = all }
    }

    /// After the C engine is destroyed (`Engine.deinit`): drops the table's strong references, so
    /// the table ↔ executor cycle (each executor holds its table) does not outlive the engine.
    /// An executor a caller still holds keeps the table alive and runs its jobs on the fallback.
    func releaseExecutors() {
        refs.withLock { r in
            r.weak = r.strong.map { WeakExecutor(executor: $0) }
            r.strong = []
        }
    }

    func executor(worker: Int, lane: Int?) -> WorkerExecutor {
        let i = lane.map { worker * laneCount + $0 } ?? workerCount * laneCount + worker
        return refs.withLock { r in
            if !r.strong.isEmpty { return r.strong[i] }
            // After the engine: only an executor someone still holds can be submitting.
            guard let e = r.weak[i].executor else {
                preconditionFailure("a job for worker \(worker)'s executor after its engine and that executor were freed")
            }
            return e
        }
    }

    /// The hot path: one slot into the lane. Anything but success takes the slow path.
    @inlinable @inline(__always)
    func submit(_ job: UnownedJob, handle: OpaquePointer, worker: UInt32, lane executorLane: UInt32, isolated: Bool) {
        if _slowPath(stopped.load(ordering: .relaxed)) {
            return runOnFallback(job, worker: Int(worker), lane: Int(executorLane), isolated: isolated)
        }
        let lane =
            executorLane != UInt32.max
            ? executorLane : UInt32(WorkerExecutor.lane(for: job.priority, laneCount: laneCount).index)
        var slot = _JobSlot(
            job: unsafeBitCast(job, to: UnsafeRawPointer.self), worker: worker, lane: executorLane,
            isolated: isolated)
        let rc = withUnsafeBytes(of: &slot) {
            sp_post(handle, worker, lane, kind, SP_SLOT_BOXED, $0.baseAddress, UInt32(MemoryLayout<_JobSlot>.size))
        }
        if rc != SP_OK.rawValue {
            _refused(
                job, handle: handle, worker: worker, lane: lane, executorLane: executorLane, isolated: isolated, rc: rc)
        }
    }

    /// A full lane (any `on_full`: a job is never dropped) or a stopping engine: the overflow list.
    @usableFromInline
    func _refused(
        _ job: UnownedJob, handle: OpaquePointer, worker: UInt32, lane: UInt32, executorLane: UInt32,
        isolated: Bool, rc: Int32
    ) {
        precondition(
            rc != SP_EBAD_WORKER.rawValue && rc != SP_EBAD_LANE.rawValue,
            "executor for worker \(worker), lane \(lane) does not fit its engine")
        let o = overflow[Int(worker)]
        let queued = o.jobs.withLock { jobs -> Bool in
            if o.closed.load(ordering: .relaxed) { return false }
            jobs.append((job, executorLane, isolated))
            o.pending.store(true, ordering: .releasing)
            return true
        }
        guard queued else {
            return runOnFallback(job, worker: Int(worker), lane: Int(executorLane), isolated: isolated)
        }
        overflowed.add(1, ordering: .relaxed)
        // The worker looks at its overflow list when a batch ends: make sure one comes. Any event of
        // any lane will do; if every lane is full, the worker has batches to come anyway. (Pairs
        // with the worker's load of `pending` after its batch: store, fence, then the ring.)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        var nudge = _JobSlot(job: nil, worker: worker, lane: lane, isolated: false)
        for l in 0..<UInt32(laneCount) {
            let r = withUnsafeBytes(of: &nudge) {
                sp_post(handle, worker, l, kind, 0, $0.baseAddress, UInt32(MemoryLayout<_JobSlot>.size))
            }
            if r == SP_OK.rawValue || r == SP_ESTOPPED.rawValue { break }
        }
    }

    /// The job kind's entry in the handler table.
    func handlerEntry() -> HandlerEntry {
        HandlerEntry(
            run: { [self] slots, count, ctx in run(slots, count, ctx) },
            release: { [self] slot in releaseLeftover(slot) }, typeName: "executor job")
    }

    /// The job kind's handler: runs each job isolated to the executor of the lane it came from.
    func run(_ slots: UnsafePointer<sp_slot>, _ count: Int, _ ctx: borrowing WorkerContext) -> UInt64 {
        let base = ctx.worker.rawValue * laneCount + ctx.lane.index
        let table = self.table.unsafelyUnwrapped
        return _runBatch(count, ctx) { i in
            let s = UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: _JobSlot.self)
            guard let job = s.job else { return }
            table[base]._withUnsafeGuaranteedRef { e in
                Self.run(unsafeBitCast(job, to: UnownedJob.self), on: e, isolated: s.isolated != 0)
            }
        }
    }

    /// An actor's job runs isolated to the serial face, with no task executor: the runtime compares
    /// the task executor it runs on with the task's own preference at every switch, and naming ours
    /// for a task that prefers none would make each of them a hop. A task's job runs with no
    /// isolation on the task executor, as nonisolated code expects.
    @inline(__always)
    static func run(_ job: UnownedJob, on e: WorkerExecutor, isolated: Bool) {
        if isolated {
            job.runSynchronously(on: e.serial.asUnownedSerialExecutor())
        } else {
            job.runSynchronously(on: e.asUnownedTaskExecutor())
        }
    }

    /// Called by the engine when a batch on `worker` ended: runs what waits in its overflow list.
    @inline(__always)
    func afterBatch(worker: Int) {
        if overflow[worker].pending.load(ordering: .acquiring) { drainOverflow(worker: worker) }
    }

    func drainOverflow(worker: Int) {
        let jobs = overflow[worker].jobs.withLock { jobs -> [(job: UnownedJob, lane: UInt32, isolated: Bool)] in
            overflow[worker].pending.store(false, ordering: .relaxed)
            defer { jobs.removeAll(keepingCapacity: true) }
            return jobs
        }
        for (job, lane, isolated) in jobs {
            Self.run(job, on: executor(worker: worker, lane: lane < laneCount ? Int(lane) : nil), isolated: isolated)
        }
    }

    /// A job slot that was still queued at shutdown (the engine's release pass).
    func releaseLeftover(_ slot: UnsafePointer<sp_slot>) {
        let s = UnsafeRawPointer(slot).load(fromByteOffset: 16, as: _JobSlot.self)
        guard let job = s.job else { return }
        runOnFallback(
            unsafeBitCast(job, to: UnownedJob.self), worker: Int(s.worker), lane: Int(s.lane),
            isolated: s.isolated != 0)
    }

    /// After the workers have exited: every later job, and what waits in the overflow lists, runs
    /// on the fallbacks.
    func engineStopped() {
        stopped.store(true, ordering: .relaxed)
        for (w, o) in overflow.enumerated() {
            let left = o.jobs.withLock { jobs -> [(job: UnownedJob, lane: UInt32, isolated: Bool)] in
                o.closed.store(true, ordering: .relaxed)
                o.pending.store(false, ordering: .relaxed)
                defer { jobs.removeAll() }
                return jobs
            }
            for (job, lane, isolated) in left { runOnFallback(job, worker: w, lane: Int(lane), isolated: isolated) }
        }
    }

    @usableFromInline
    func runOnFallback(_ job: UnownedJob, worker: Int, lane: Int, isolated: Bool) {
        fellBack.add(1, ordering: .relaxed)
        let e = executor(worker: worker, lane: lane < laneCount ? lane : nil)
        fallback[worker].async { Self.run(job, on: e, isolated: isolated) }
    }
}
