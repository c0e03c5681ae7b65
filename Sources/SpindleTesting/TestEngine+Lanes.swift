@_spi(Testing) import Spindle

extension TestEngine {
    /// The events waiting in `lane` on `worker`: enqueued and not yet handled.
    public func depth(worker: WorkerID, lane: Lane) -> Int {
        Int(engine.stats(worker: worker, lane: lane).pending)
    }

    /// The events waiting in `lane`, summed over every worker.
    public func depth(lane: Lane) -> Int {
        Int(engine.stats(lane: lane).pending)
    }

    /// The counts of (`worker`, `lane`): enqueued, rejected, dropped, handled, failed, pending
    /// (`Engine.stats(worker:lane:)`). Exact between steps.
    public func stats(worker: WorkerID, lane: Lane) -> LaneStats {
        engine.stats(worker: worker, lane: lane)
    }

    /// What kind each waiting event in (`worker`, `lane`) is — the event type's name, or a
    /// source's label ("timer every 1 ms", "timers") — in ring order, source by source: the
    /// worker's own queue (its handlers' posts and its timers), then posts from outside the
    /// engine, then each other worker's ring. The scheduler takes turns between these sources
    /// batch by batch, so this is the order within a source, not across them.
    public func pendingKinds(worker: WorkerID, lane: Lane) -> [String] {
        engine._pendingKinds(worker: worker.rawValue, lane: lane.index).map(\.name)
    }

    /// The waiting events of one kind in (`worker`, `lane`), in ring order source by source (see
    /// ``pendingKinds(worker:lane:)``). Boxed events are read without taking them out.
    ///
    /// ```swift
    /// try test.post(Quote(symbol: 7, bid: 2, ask: 3), as: quote, lane: bulk, to: .key(7))
    /// #expect(test.pending(quote, worker: test.worker(for: .key(7))!, lane: bulk).map(\.symbol) == [7])
    /// ```
    public func pending<E>(_ kind: EventKind<E>, worker: WorkerID, lane: Lane) -> [E] {
        engine._pendingEvents(kind, worker: worker.rawValue, lane: lane.index)
    }

    /// Runs `body` with `worker`'s copy of a per-worker state (`Engine.Builder.coreLocal(_:)`),
    /// between steps — to check what handlers did, or to set a state up before posting.
    ///
    /// ```swift
    /// let count = test.withState(counts, on: WorkerID(0)) { $0 }
    /// ```
    public func withState<State, R>(_ state: CoreLocal<State>, on worker: WorkerID, _ body: (inout State) throws -> R)
        rethrows -> R
    {
        precondition(
            worker.rawValue >= 0 && worker.rawValue < workerCount,
            "\(worker): the test engine has \(workerCount) workers")
        return try engine._withState(state, worker: worker.rawValue, body)
    }

    /// The worker a destination names: `.worker(id)` itself, `.key(k)` the worker the real engine's
    /// key mixer picks for `k` (stable across processes and runs); nil for `.spread` (round robin
    /// per producing thread) and for a worker the engine does not have.
    public func worker(for destination: Destination) -> WorkerID? {
        if case .spread = destination { return nil }
        let raw = Int(destination.raw(workerCount: UInt32(workerCount)))
        return raw < workerCount ? WorkerID(raw) : nil
    }
}
