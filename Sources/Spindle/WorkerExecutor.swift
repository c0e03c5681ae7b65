import CSpindle
import Dispatch

/// A worker of an ``Engine`` as a Swift concurrency executor: async code runs on that worker's
/// pinned thread, scheduled as one of its lanes.
///
/// Obtain one with ``Engine/executor(worker:lane:)`` (a fixed lane) or ``Engine/executor(worker:)``
/// (the lane comes from each job's priority, ``lane(for:laneCount:)``). It is both a
/// `SerialExecutor` (an actor may return it from `unownedExecutor`) and a `TaskExecutor`
/// (`withTaskExecutorPreference`, `Task(executorPreference:)`).
///
/// ```swift
/// let onCritical = try engine.executor(worker: WorkerID(1), lane: critical)
/// await withTaskExecutorPreference(onCritical) {
///     await work()           // runs on worker 1's CPU, as a `critical` event
/// }
/// ```
///
/// A job enters the lane like an inline event: its `UnownedJob` travels in the slot, so enqueueing
/// allocates nothing; from a worker thread it takes the worker's own queue or SPSC ring, from any
/// other thread the destination's MPSC ring. The worker runs it as it runs any event of that lane
/// (strict lanes first, DRR shares after), one job per slot.
///
/// **Serial.** Every executor of one worker (each lane, and the priority one) is the same exclusive
/// execution context: that worker's thread. `isSameExclusiveExecutionContext(other:)` says so, so
/// an actor on the `bulk` executor of worker 1 called from a task on its `critical` executor does
/// not hop (it runs at the caller's lane).
///
/// **Full lane.** A job is never rejected or dropped: one that finds its lane full (whatever the
/// lane's `on_full`) goes to the worker's overflow list (a locked array: the slow path, it may
/// allocate) and runs when the worker's current batch ends, at no lane's priority in particular.
/// On a `block` lane a foreign thread's enqueue first waits as a `post` does.
///
/// **Lifetime and shutdown.** The executors live as long as their engine: keep the engine
/// referenced while any task or actor uses one (the runtime holds executors unowned). Once
/// shutdown begins, a job from a foreign thread is refused by the lanes: it waits in the overflow
/// list for the workers to drain and exit (a worker that is still running takes it), and then runs
/// on the worker's *fallback*: one serial `DispatchQueue` per worker, so an actor on that worker
/// still never runs concurrently. Jobs still queued when the shutdown deadline passed run there too.
/// Nothing is lost; nothing after shutdown runs on the pinned worker. (The lane counts then show
/// such a job as pending, not handled.)
public final class WorkerExecutor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    /// The worker whose thread runs the jobs.
    public let worker: WorkerID
    /// The lane jobs enter, or `nil` when each job's priority picks it (``lane(for:laneCount:)``).
    public let lane: Lane?
    @usableFromInline let table: ExecutorTable
    @usableFromInline nonisolated(unsafe) let handle: OpaquePointer
    @usableFromInline let rawWorker: UInt32
    @usableFromInline let rawLane: UInt32
    /// The serial face actors use (``asUnownedSerialExecutor()``): its jobs run isolated to it,
    /// while jobs that come through the task-executor face run with no isolation, as nonisolated
    /// code expects (running those isolated would cost every nonisolated resume one more hop).
    @usableFromInline let serial: WorkerSerialExecutor

    init(table: ExecutorTable, handle: OpaquePointer, worker: Int, lane: Int?) {
        self.table = table
        self.handle = handle
        self.worker = WorkerID(worker)
        self.lane = lane.map { Lane(index: $0) }
        self.rawWorker = UInt32(worker)
        self.rawLane = lane.map { UInt32($0) } ?? UInt32.max
        self.serial = WorkerSerialExecutor(
            table: table, handle: handle, worker: UInt32(worker),
            lane: lane.map { UInt32($0) } ?? UInt32.max)
    }

    /// The lane a job without a fixed lane enters, from its priority, for `laneCount` lanes:
    ///
    /// | job priority | lane |
    /// | --- | --- |
    /// | `high` / `userInitiated` (≥ 25) | 0 (`critical` in the default set) |
    /// | `medium` (≥ 21), or unspecified (0) | 1 (`high`) |
    /// | `low` / `utility` (≥ 17) | 2 (`normal`) |
    /// | `background` (< 17) | the last lane (`bulk`) |
    ///
    /// Each is capped at the last lane (with two lanes: `high` → 0, everything else → 1).
    @inlinable
    public static func lane(for priority: JobPriority, laneCount: Int) -> Lane {
        let p = priority.rawValue
        let wanted: Int
        if p >= 25 {
            wanted = 0
        } else if p >= 21 || p == 0 {
            wanted = 1
        } else if p >= 17 {
            wanted = 2
        } else {
            wanted = laneCount - 1
        }
        return Lane(index: min(wanted, laneCount - 1))
    }

    /// Puts the job in this executor's lane on its worker: no allocation (the job travels inline in
    /// the slot), no lock, and no syscall while the worker is awake. (Called by the runtime for a
    /// task that prefers this executor.)
    @inlinable
    public func enqueue(_ job: consuming ExecutorJob) {
        table.submit(UnownedJob(job), handle: handle, worker: rawWorker, lane: rawLane, isolated: false)
    }

    /// For actors: `nonisolated var unownedExecutor: UnownedSerialExecutor { exec.asUnownedSerialExecutor() }`.
    /// Compared by ``isSameExclusiveExecutionContext(other:)``, so the executors of one worker count
    /// as one.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { serial.asUnownedSerialExecutor() }

    /// Whether `other` runs its jobs on the same thread: the same engine's same worker.
    public func isSameExclusiveExecutionContext(other: WorkerExecutor) -> Bool {
        other.table === table && other.rawWorker == rawWorker
    }

    /// True on this worker's thread (a handler, or a job of any of its lanes), and after shutdown on
    /// its fallback queue; false elsewhere. Lets `assumeIsolated` work from a handler.
    public func isIsolatingCurrentContext() -> Bool? { serial.isIsolatingCurrentContext() }

    /// Traps unless the caller runs on this worker (see ``isIsolatingCurrentContext()``).
    public func checkIsolated() { serial.checkIsolated() }
}

extension WorkerExecutor: CustomStringConvertible {
    /// "Spindle worker 1, lane 0" or "Spindle worker 1, lane by priority".
    public var description: String {
        "Spindle worker \(rawWorker), " + (lane.map { "lane \($0.index)" } ?? "lane by priority")
    }
}

/// The serial face of a ``WorkerExecutor``: what an actor's `unownedExecutor` refers to.
@usableFromInline
final class WorkerSerialExecutor: SerialExecutor, @unchecked Sendable {
    @usableFromInline let table: ExecutorTable
    @usableFromInline nonisolated(unsafe) let handle: OpaquePointer
    @usableFromInline let worker: UInt32
    @usableFromInline let lane: UInt32

    init(table: ExecutorTable, handle: OpaquePointer, worker: UInt32, lane: UInt32) {
        self.table = table
        self.handle = handle
        self.worker = worker
        self.lane = lane
    }

    @inlinable
    func enqueue(_ job: consuming ExecutorJob) {
        table.submit(UnownedJob(job), handle: handle, worker: worker, lane: lane, isolated: true)
    }

    @usableFromInline
    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(complexEquality: self) }

    @usableFromInline
    func isSameExclusiveExecutionContext(other: WorkerSerialExecutor) -> Bool {
        other.table === table && other.worker == worker
    }

    @usableFromInline
    func isIsolatingCurrentContext() -> Bool? {
        if let w = sp_current_worker(handle) { return sp_worker_id(w) == worker }
        return DispatchQueue.getSpecific(key: table.fallbackKey) == Int(worker)
    }

    @usableFromInline
    func checkIsolated() {
        precondition(
            isIsolatingCurrentContext() == true,
            "not on Spindle worker \(worker): code isolated to its executor ran on another thread")
    }
}
