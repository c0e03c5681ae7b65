import CSpindle

// Sources a handler adds at run time on its own worker (the worker owns its ring, so only it can
// arm them): fd watches, TCP listeners and UDP sockets, next to run-time timers
// (RuntimeTimers.swift). Each kind's handler is registered on the builder, like any handler; the
// source is a record in the worker's table, named by a ``SourceID``.

/// A source a handler added at run time: a value naming it on its worker.
public struct SourceID: Sendable, Hashable {
    /// The worker it lives on (the one that added it).
    public let worker: WorkerID
    @usableFromInline let id: UInt64
}

/// The handler kind of fd watches handlers add at run time (``WorkerContext/watch(fd:for:as:tag:)``).
public struct WatchKind: Sendable, Hashable {
    @usableFromInline let index: UInt32
    /// The lane its events enter.
    public let lane: Lane
}

/// The handler kind of TCP listeners handlers open at run time (``WorkerContext/listen(on:as:backlog:)``):
/// the listener's `accepted` events and its connections' events go to this handler, in this lane.
public struct ListenerKind: Sendable, Hashable {
    @usableFromInline let index: UInt32
    /// The lane its events enter.
    public let lane: Lane
}

/// The handler kind of UDP sockets handlers bind at run time (``WorkerContext/udp(bind:as:)``).
public struct DatagramKind: Sendable, Hashable {
    @usableFromInline let index: UInt32
    /// The lane its events enter.
    public let lane: Lane
}

extension Engine.Builder {
    /// Registers the handler of fd watches that handlers add at run time on their worker
    /// (``WorkerContext/watch(fd:for:as:tag:)``); each event carries the watch's ``Readiness/tag``.
    /// - Throws: ``SpindleError`` for a lane the configuration does not have.
    public mutating func watches(
        lane: Lane, handler: @escaping @Sendable (Readiness, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> WatchKind {
        let index = try _runtimeKind(lane: lane, what: "fd watches") { e, ctx throws in try handler(Readiness(e), ctx) }
        return WatchKind(index: index, lane: lane)
    }

    /// Registers the handler of TCP listeners that handlers open at run time on their worker
    /// (``WorkerContext/listen(on:as:backlog:)``), and of the connections they accept.
    /// - Throws: ``SpindleError`` for a lane the configuration does not have.
    public mutating func listeners(
        lane: Lane, handler: @escaping @Sendable (borrowing ConnectionEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> ListenerKind {
        let index = try _runtimeKind(lane: lane, what: "listeners") { e, ctx throws in
            try handler(ConnectionEvent(e, worker: ctx.worker), ctx)
        }
        return ListenerKind(index: index, lane: lane)
    }

    /// Registers the handler of UDP sockets that handlers bind at run time on their worker
    /// (``WorkerContext/udp(bind:as:)``).
    /// - Throws: ``SpindleError`` for a lane the configuration does not have.
    public mutating func datagrams(
        lane: Lane, handler: @escaping @Sendable (borrowing DatagramEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> DatagramKind {
        let index = try _runtimeKind(lane: lane, what: "udp sockets") { e, ctx throws in
            try handler(DatagramEvent(e, worker: ctx.worker), ctx)
        }
        return DatagramKind(index: index, lane: lane)
    }

    /// One handler entry for a run-time source kind: stale events (queued before a cancel) are
    /// skipped, as for every source.
    mutating func _runtimeKind(
        lane: Lane, what: String, _ call: @escaping @Sendable (sp_io_event, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> UInt32 {
        _ = try _sourceWorkers(lane: lane, on: .worker(WorkerID(0)), what: what)  // checks the lane
        let run: HandlerEntry.Run = { slots, count, ctx in
            _runBatch(count, ctx) { i throws in
                let e = UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: sp_io_event.self)
                if e.flags & SP_IO_STALE != 0 { return }
                try call(e, ctx)
            }
        }
        let kind: EventKind<_IOSlot> = try _append(HandlerEntry(run: run, release: nil, typeName: what), inline: true)
        return kind.index
    }
}

extension WorkerContext {
    /// Watches `fd` on this worker: one event per change of readiness, to `kind`'s handler in its
    /// lane, carrying `tag`. Keep the fd open until the watch's final event (cancel it first).
    /// - Throws: ``SpindleError`` (`invalidConfiguration` for a closed fd or an empty event set;
    ///   `startFailed` with the kernel's reason, or when the worker's source table is full).
    @discardableResult
    public func watch(fd: Int32, for events: PollEvents = .readable, as kind: WatchKind, tag: UInt64 = 0)
        throws(SpindleError) -> SourceID
    {
        var spec = try sp_source_spec._fdWatch(fd, events, tag: tag)
        return try _addSource(&spec, lane: kind.lane, handlerKind: kind.index, what: "watch fd \(fd)")
    }

    /// Opens a TCP listener on this worker (bound to `address`; port 0 lets the kernel pick, see
    /// ``localPort(of:)``). Its `accepted` events and its connections' events go to `kind`'s handler.
    /// - Throws: ``SpindleError`` (`startFailed` with the reason: the address is in use, the
    ///   worker's source table is full, …).
    @discardableResult
    public func listen(on address: SocketAddress, as kind: ListenerKind, backlog: Int = 1024) throws(SpindleError)
        -> SourceID
    {
        var spec = sp_source_spec()
        spec.kind = SP_SOURCE_LISTEN.rawValue
        spec.backlog = UInt32(clamping: backlog)
        return try _withAddress(address, &spec) { (spec) throws(SpindleError) in
            try _addSource(&spec, lane: kind.lane, handlerKind: kind.index, what: "listener \(address)")
        }
    }

    /// Binds a UDP socket on this worker: one event per datagram, to `kind`'s handler.
    /// - Throws: ``SpindleError`` (`startFailed` with the reason).
    @discardableResult
    public func udp(bind address: SocketAddress, as kind: DatagramKind) throws(SpindleError) -> SourceID {
        var spec = sp_source_spec()
        spec.kind = SP_SOURCE_UDP.rawValue
        return try _withAddress(address, &spec) { (spec) throws(SpindleError) in
            try _addSource(&spec, lane: kind.lane, handlerKind: kind.index, what: "udp \(address)")
        }
    }

    /// The local port of a listener or UDP socket this worker added (the one the kernel picked for
    /// port 0); nil for another worker's source or one that ended.
    public func localPort(of source: SourceID) -> Int? {
        guard source.worker == worker else { return nil }
        let p = sp_source_local_port(_worker, source.id)
        return p > 0 ? Int(p) : nil
    }

    /// Cancels a source this worker added: no event of it is handled after this returns except
    /// exactly one final `cancelled` event. False when it already ended or lives on another worker.
    @discardableResult
    public func cancel(_ source: SourceID) -> Bool {
        source.worker == worker && sp_worker_cancel_source(_worker, source.id) == SP_OK.rawValue
    }

    /// Calls `body` with `spec.addr` pointing at `address`'s bytes for the length of the call.
    func _withAddress(
        _ address: SocketAddress, _ spec: inout sp_source_spec,
        _ body: (inout sp_source_spec) throws(SpindleError) -> SourceID
    ) throws(SpindleError) -> SourceID {
        let result: Result<SourceID, SpindleError> = address.bytes.withUnsafeBytes { raw in
            spec.addr = raw.baseAddress
            spec.addr_len = UInt32(raw.count)
            defer { spec.addr = nil }
            return Result { () throws(SpindleError) in try body(&spec) }
        }
        return try result.get()
    }

    func _addSource(_ spec: inout sp_source_spec, lane: Lane, handlerKind: UInt32, what: String) throws(SpindleError)
        -> SourceID
    {
        spec.lane = UInt32(lane.index)
        spec.handler_kind = handlerKind
        var id: UInt64 = 0
        var msg = [CChar](repeating: 0, count: 256)
        let rc = msg.withUnsafeMutableBufferPointer { sp_worker_add_source(_worker, &spec, &id, $0.baseAddress, $0.count) }
        guard rc == SP_OK.rawValue else {
            let why = msg[0] != 0 ? String(decoding: msg.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : String(cString: sp_strerror(rc))
            throw SpindleError(.startFailed, "\(what) on worker \(worker.rawValue): \(why)")
        }
        return SourceID(worker: worker, id: id)
    }
}
