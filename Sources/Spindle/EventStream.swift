import CSpindle

extension Engine.Builder {
    /// Registers an inline event kind whose events go to an `AsyncSequence` instead of a handler,
    /// for a consumer who prefers `for await`.
    ///
    /// ```swift
    /// let (quotes, stream) = try builder.stream(Quote.self, capacity: 1024)
    /// let engine = try builder.start()
    /// Task { for await q in stream { print(q) } }      // ends when the engine has shut down
    /// try engine.post(Quote(...), as: quotes, lane: bulk, to: .worker(WorkerID(0)))
    /// ```
    ///
    /// The worker appends each run of events to a bounded buffer under one lock (one per run of
    /// same-kind events in a batch, not per event) and resumes the waiting consumer. **Backpressure:**
    /// the buffer holds at most `capacity` events; when it is full the newest event is discarded and
    /// counted (``EventStream/dropped``), never silently: the worker does not wait for the consumer.
    /// Order is the lanes' order: per (producer thread, lane, destination worker). One consumer.
    /// - Throws: ``SpindleError/Code/eventTooLarge`` (as `register(_:handler:)`), or
    ///   ``SpindleError/Code/invalidConfiguration`` for a capacity outside 1...1,048,576.
    public mutating func stream<E: InlineEvent>(_ type: E.Type, capacity: Int)
        throws(SpindleError) -> (kind: EventKind<E>, events: EventStream<E>)
    {
        try Self._checkInline(E.self)
        let buffer = try EventBuffer<E>(capacity: capacity)
        let run: HandlerEntry.Run = { slots, count, _ in
            buffer.append(count) { i in UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: E.self) }
            return UInt64(count) << 32
        }
        stopHooks.append { buffer.finish() }
        let kind: EventKind<E> = try _append(HandlerEntry(run: run, release: nil, typeName: "\(E.self)"), inline: true)
        return (kind, EventStream(buffer: buffer))
    }

    /// `stream(_:capacity:)` for a boxed event type.
    public mutating func stream<E: Event>(_ type: E.Type, capacity: Int)
        throws(SpindleError) -> (kind: EventKind<E>, events: EventStream<E>)
    {
        let buffer = try EventBuffer<E>(capacity: capacity)
        let run: HandlerEntry.Run = { slots, count, _ in
            buffer.append(count) { i in _takeBox(slots + i, E.self) }
            return UInt64(count) << 32
        }
        stopHooks.append { buffer.finish() }
        let kind: EventKind<E> = try _append(
            HandlerEntry(run: run, release: { _releaseBox($0, E.self) }, typeName: "\(E.self)"), inline: false)
        return (kind, EventStream(buffer: buffer))
    }
}

/// The events of one kind, as an `AsyncSequence` (`stream(_:capacity:)`).
///
/// Yields each event once, in the lanes' order; finishes (the `for await` loop ends) once the engine
/// has shut down and the buffer is empty, or when the consuming task is cancelled. One consumer: a
/// second iterator waiting at the same time is a programming error (trap).
public struct EventStream<E: Event>: AsyncSequence, Sendable {
    /// The event type.
    public typealias Element = E
    /// Never fails: the sequence just ends.
    public typealias Failure = Never
    let buffer: EventBuffer<E>

    /// Events the buffer accepted so far.
    public var received: UInt64 { buffer.state.withLock { $0.received } }
    /// Events discarded because the buffer was full (the newest each time).
    public var dropped: UInt64 { buffer.state.withLock { $0.dropped } }
    /// Events waiting in the buffer.
    public var buffered: Int { buffer.state.withLock { $0.count } }

    /// The iterator.
    public func makeAsyncIterator() -> Iterator { Iterator(buffer: buffer) }

    /// Waits for the next event.
    public struct Iterator: AsyncIteratorProtocol {
        /// The event type.
        public typealias Element = E
        /// Never fails: the sequence just ends.
        public typealias Failure = Never
        let buffer: EventBuffer<E>
        /// The next event, or `nil` once the engine has shut down (and the buffer is empty) or the
        /// task is cancelled.
        public mutating func next() async -> E? { await buffer.next() }
        /// The next event (`isolation` is accepted for the protocol; the buffer is thread-safe).
        public mutating func next(isolation actor: isolated (any Actor)?) async -> E? { await buffer.next() }
    }
}

/// A bounded ring of events behind a lock, and the consumer's continuation.
final class EventBuffer<E: Event>: @unchecked Sendable {
    struct State {
        var ring: [E?]
        var head = 0
        var count = 0
        var waiter: UnsafeContinuation<E?, Never>?
        var finished = false
        var received: UInt64 = 0
        var dropped: UInt64 = 0

        mutating func pop() -> E {
            let e = ring[head].take()!
            head = head + 1 == ring.count ? 0 : head + 1
            count -= 1
            return e
        }
    }
    let state: Locked<State>

    init(capacity: Int) throws(SpindleError) {
        guard capacity >= 1 && capacity <= 1 << 20 else {
            throw SpindleError(
                .invalidConfiguration,
                "stream capacity \(capacity) is out of range; rule: 1...1048576; fix: choose a capacity in range")
        }
        state = Locked(State(ring: Array(repeating: nil, count: capacity)))
    }

    /// On the worker: `count` events from `event(i)`; the first wakes a waiting consumer.
    func append(_ count: Int, _ event: (Int) -> E) {
        var wake: (UnsafeContinuation<E?, Never>, E)?
        state.withLock { s in
            for i in 0..<count {
                let e = event(i)  // read (and for a boxed event, release) every slot exactly once
                if let w = s.waiter {
                    s.waiter = nil
                    s.received += 1
                    wake = (w, e)
                } else if s.count < s.ring.count {
                    s.ring[(s.head + s.count) % s.ring.count] = e
                    s.count += 1
                    s.received += 1
                } else {
                    s.dropped += 1
                }
            }
        }
        if let (w, e) = wake { w.resume(returning: e) }
    }

    func next() async -> E? {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<E?, Never>) in
                let now: E?? = state.withLock { s in
                    if s.count > 0 { return .some(s.pop()) }
                    if s.finished || Task.isCancelled { return .some(nil) }
                    precondition(s.waiter == nil, "an EventStream has one consumer: two iterators waited at once")
                    s.waiter = c
                    return .none
                }
                if let value = now { c.resume(returning: value) }
            }
        } onCancel: {
            state.withLock { s in
                defer { s.waiter = nil }
                return s.waiter
            }?.resume(returning: nil)
        }
    }

    /// After shutdown: the consumer gets what is buffered, then `nil`.
    func finish() {
        state.withLock { s in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }?.resume(returning: nil)
    }
}
