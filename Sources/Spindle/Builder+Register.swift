import CSpindle

extension Engine.Builder {
    /// Registers the handler for an inline event type with per-worker state.
    ///
    /// The handler runs on the worker the event was posted to, with that worker's `State`
    /// `inout`. Handlers are cooperative: one that blocks delays its whole core.
    /// - Throws: ``SpindleError/Code/eventTooLarge`` for a type over 48 bytes or aligned over 16.
    @inlinable
    public mutating func register<E: InlineEvent, State>(
        _ type: E.Type, using state: CoreLocal<State>,
        handler: @escaping @Sendable (E, inout State, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> EventKind<E> {
        try Self._checkInline(E.self)
        let stateIndex = state.index
        let run: HandlerEntry.Run = { slots, count, ctx in
            let s = ctx._state(stateIndex).assumingMemoryBound(to: State.self)
            return _runBatch(count, ctx) { i throws in
                try handler(UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: E.self), &s.pointee, ctx)
            }
        }
        return try _append(HandlerEntry(run: run, release: nil, typeName: "\(E.self)"), inline: true)
    }

    /// Registers the handler for an inline event type.
    /// - Throws: ``SpindleError/Code/eventTooLarge`` for a type over 48 bytes or aligned over 16.
    @inlinable
    public mutating func register<E: InlineEvent>(
        _ type: E.Type, handler: @escaping @Sendable (E, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> EventKind<E> {
        try Self._checkInline(E.self)
        let run: HandlerEntry.Run = { slots, count, ctx in
            _runBatch(count, ctx) { i throws in
                try handler(UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: E.self), ctx)
            }
        }
        return try _append(HandlerEntry(run: run, release: nil, typeName: "\(E.self)"), inline: true)
    }

    /// Registers the handler for a boxed event type (not ``InlineEvent``) with per-worker state.
    /// Each post allocates a box; it is released exactly once: after the handler, when the post is
    /// rejected or dropped, or at shutdown if never handled.
    @inlinable
    public mutating func register<E: Event, State>(
        _ type: E.Type, using state: CoreLocal<State>,
        handler: @escaping @Sendable (E, inout State, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> EventKind<E> {
        let stateIndex = state.index
        let run: HandlerEntry.Run = { slots, count, ctx in
            let s = ctx._state(stateIndex).assumingMemoryBound(to: State.self)
            return _runBatch(count, ctx) { i throws in try handler(_takeBox(slots + i, E.self), &s.pointee, ctx) }
        }
        return try _append(HandlerEntry(run: run, release: { _releaseBox($0, E.self) }, typeName: "\(E.self)"), inline: false)
    }

    /// Registers the handler for a boxed event type (not ``InlineEvent``).
    @inlinable
    public mutating func register<E: Event>(
        _ type: E.Type, handler: @escaping @Sendable (E, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> EventKind<E> {
        let run: HandlerEntry.Run = { slots, count, ctx in
            _runBatch(count, ctx) { i throws in try handler(_takeBox(slots + i, E.self), ctx) }
        }
        return try _append(HandlerEntry(run: run, release: { _releaseBox($0, E.self) }, typeName: "\(E.self)"), inline: false)
    }
}

/// The loop every handler kind shares: calls `body` for each slot, counts throws (reported to the
/// error hook), and stops after the current event when a strict lane has work (weighted lanes
/// only). Returns `(handled << 32) | failed`. Always inlined, so the handler call stays direct.
@inlinable @inline(__always)
func _runBatch(_ count: Int, _ ctx: borrowing WorkerContext, _ body: (Int) throws -> Void) -> UInt64 {
    var failed: UInt64 = 0
    for i in 0..<count {
        do { try body(i) } catch { failed &+= 1; ctx._report(error) }
        if ctx._shouldYield && i &+ 1 < count { return UInt64(i &+ 1) << 32 | failed }
    }
    return UInt64(count) << 32 | failed
}

/// Takes the value out of a boxed slot and releases the box (exactly once: the slot is consumed).
@inlinable
func _takeBox<E: Event>(_ slot: UnsafePointer<sp_slot>, _: E.Type) -> E {
    let raw = UnsafeRawPointer(slot).load(fromByteOffset: 16, as: UnsafeMutableRawPointer.self)
    return Unmanaged<EventBox<E>>.fromOpaque(raw).takeRetainedValue().value
}

/// Releases a boxed slot's payload that will never be handled.
@inlinable
func _releaseBox<E: Event>(_ slot: UnsafePointer<sp_slot>, _: E.Type) {
    let raw = UnsafeRawPointer(slot).load(fromByteOffset: 16, as: UnsafeMutableRawPointer.self)
    Unmanaged<EventBox<E>>.fromOpaque(raw).release()
}
