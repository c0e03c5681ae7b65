@_spi(Testing) import Spindle

/// A deterministic engine for handler tests: the real engine's scheduler, lanes and rings, run on
/// the test's own thread, one round at a time, with a clock that moves only when the test says so.
///
/// Build it from the same `Engine.Builder` a service uses — the same handlers, the same
/// per-worker state, the same `WorkerContext` API — and instead of starting threads,
/// drive it: ``step()`` runs one scheduler round on every worker, ``runUntilIdle(maxSteps:)``
/// runs rounds until nothing is left, ``advance(by:maxSteps:)`` moves the clock and fires timers
/// in deadline order. Between steps, read the lanes (``depth(worker:lane:)``,
/// ``pending(_:worker:lane:)``) and each worker's state (``withState(_:on:_:)``).
///
/// ```swift
/// var builder = Engine.Builder()
/// let critical = try builder.lane(named: "critical"), bulk = try builder.lane(named: "bulk")
/// let seen = builder.coreLocal { _ in [String]() }
/// let job = try builder.register(Job.self, using: seen) { job, log, ctx in log.append("job \(job.id)") }
/// let test = try TestEngine(builder)
/// try test.post(Job(id: 1), as: job, lane: bulk, to: .worker(WorkerID(0)))
/// try test.post(Job(id: 2), as: job, lane: critical, to: .worker(WorkerID(0)))
/// test.step()                                                   // one round: critical first
/// test.withState(seen, on: WorkerID(0)) { #expect($0 == ["job 2", "job 1"]) }
/// ```
///
/// **Same rules as the real engine.** The rounds are the real engine's own code (its C core's
/// scheduler), not a model of it: strict lanes first, each within its budget; weighted lanes by
/// deficit round robin (quantum = weight × max batch); batches of at most `max_batch` events; a
/// weighted batch cut short after the current handler when it posts to a strict lane; `.key`
/// routing by the same mixer; the same rings, capacities and full-lane policies. What a test sees
/// in a round is what a real worker does in a round with the same events queued.
///
/// **One thread.** Nothing runs unless the test calls ``step()``, ``runUntilIdle(maxSteps:)``,
/// ``advance(by:maxSteps:)`` or ``shutdown(deadline:)``; handlers run on the calling thread. A
/// `TestEngine` is not `Sendable`: drive it from one thread. (``engine`` is an ordinary
/// `Engine` for code under test that posts to one; posts from other threads are queued
/// like any foreign post and handled when the test steps.)
///
/// **What differs.** No CPU pinning, no NUMA placement, no sleeping and waking (a test engine
/// never sleeps), no io_uring: I/O sources other than timers (fd watches, signals, TCP, UDP) are
/// refused when the test engine is made. Host rules are not checked, so a production profile's
/// configuration (say, 16 workers) can be tested on a 2-core laptop.
public final class TestEngine {
    /// The engine, for code under test that posts to an `Engine`: posting, stats and
    /// `Engine.shutdownBlocking(deadline:)` behave as on a running engine, except that
    /// nothing is handled until the test steps.
    public let engine: Engine

    /// Starts a test engine from `builder`: each worker's per-worker state is built on the
    /// calling thread, and the builder's timers are armed on the test clock, which starts at zero.
    /// - Throws: `SpindleError` for a configuration that breaks a rule, or an I/O source
    ///   other than a timer (`invalidConfiguration`, naming the source).
    public init(_ builder: Engine.Builder) throws(SpindleError) {
        self.engine = try builder._startManual()
    }

    /// The number of workers (`WorkerID(0)..<WorkerID(workerCount)`).
    public var workerCount: Int { engine.workerCount }

    /// The configuration the engine runs with.
    public var configuration: Engine.Configuration { engine.configuration }

    /// Posts an inline event from outside the engine, as `Engine.post(_:as:lane:to:)`
    /// does from a thread that is not a worker (the destination's foreign-post ring). It is
    /// handled when the test steps.
    /// - Throws: `PostError` (`laneFull` on a full `reject` lane, `stopped` after
    ///   ``shutdown(deadline:)``, `noSuchWorker`).
    @discardableResult
    public func post<E: InlineEvent>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination)
        throws(PostError) -> PostResult
    {
        try engine.post(event, as: kind, lane: lane, to: destination)
    }

    /// Posts a boxed event from outside the engine (see ``post(_:as:lane:to:)-(E,_,_,_)``).
    /// - Throws: `PostError`.
    @discardableResult
    public func post<E: Event>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination)
        throws(PostError) -> PostResult
    {
        try engine.post(event, as: kind, lane: lane, to: destination)
    }

    /// Runs one scheduler round on every worker, worker 0 first, on the calling thread.
    ///
    /// A round is the real worker's: the strict lanes in order, each up to its budget (the first
    /// lane with work again after every batch), then each weighted lane its deficit-round-robin
    /// share (weight × max batch, in batches of at most max batch events), then the timers due
    /// at ``now`` enter their lanes — to be handled in the next round, as a real worker reaps
    /// completions after its round. Events a handler posts to its own worker in a round may be
    /// handled in the same round (its lane is served later in the round, or is a strict lane); events
    /// posted to another worker are handled at that worker's next round (or this one, when that
    /// worker comes later in the step).
    /// - Returns: the events handled.
    @discardableResult
    public func step() -> Int {
        var handled = 0
        for w in 0..<workerCount { handled += engine._manualRound(worker: w).handled }
        return handled
    }

    /// Runs one scheduler round on `worker` only (see ``step()``).
    /// - Returns: the events handled.
    @discardableResult
    public func step(worker: WorkerID) -> Int {
        engine._manualRound(worker: worker.rawValue).handled
    }

    /// One step; `progress` is false when nothing was handled and no timer event entered a lane.
    func stepReportingProgress() -> (handled: Int, progress: Bool) {
        var handled = 0
        var delivered = 0
        for w in 0..<workerCount {
            let r = engine._manualRound(worker: w)
            handled += r.handled
            delivered += r.delivered
        }
        return (handled, handled + delivered > 0)
    }

    /// Steps until a step handles nothing and no timer is due: every lane is empty and every
    /// handler that posted has had its events handled. The clock does not move.
    /// - Parameter maxSteps: the most steps to run; a test whose handlers keep posting forever
    ///   fails instead of hanging.
    /// - Returns: the events handled.
    /// - Throws: ``TestEngineError`` when the engine is still busy after `maxSteps` steps (with
    ///   what each lane still holds).
    @discardableResult
    public func runUntilIdle(maxSteps: Int = 1_000_000) throws(TestEngineError) -> Int {
        var handled = 0
        for _ in 0..<max(1, maxSteps) {
            let r = stepReportingProgress()
            handled += r.handled
            if !r.progress { return handled }
        }
        throw TestEngineError(steps: maxSteps, what: "runUntilIdle", lanes: engine.stallReport())
    }

    /// Stops the engine as `Engine.shutdown(deadline:)` does, on the calling thread:
    /// posts from outside are refused from now on, the lanes are drained (handlers may still post)
    /// and each worker's per-worker state is destroyed. Timers do not fire: the clock stays.
    /// Idempotent.
    /// - Parameter deadline: when to stop draining (a handler that keeps posting forever).
    /// - Returns: what was not handled, per lane.
    @discardableResult
    public func shutdown(deadline: ContinuousClock.Instant = .now + .seconds(10)) -> ShutdownReport {
        do {
            return try engine.shutdownBlocking(deadline: deadline)
        } catch {
            preconditionFailure("TestEngine.shutdown() from inside one of its handlers: \(error)")
        }
    }
}

/// A test engine did not become idle within its step budget: its handlers keep posting, or a
/// timer fires too often for the time advanced.
public struct TestEngineError: Error, Sendable, CustomStringConvertible {
    /// The step budget that ran out.
    public var steps: Int
    /// The call that ran out of steps (`runUntilIdle`, `advance(by:)`).
    public var what: String
    /// One line per worker: what each lane still holds (`Engine.stallReport()`).
    public var lanes: String

    /// "runUntilIdle: still busy after 1000000 steps; …"
    public var description: String {
        "\(what): still busy after \(steps) steps (handlers keep posting, or a timer fires too often); lanes now:\n\(lanes)"
    }
}
