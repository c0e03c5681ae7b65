import CSpindle
import Foundation

/// A TCP connection the engine accepted. It lives on the worker its listener lives on; its events
/// go to the listener's handler, in the listener's lane. Send and close from that worker's handlers
/// (``WorkerContext/send(_:on:)-(UnsafeRawBufferPointer,_)``, ``WorkerContext/close(_:)``).
public struct Connection: Hashable, Sendable, CustomStringConvertible {
    /// The worker the connection lives on.
    public let worker: WorkerID
    @usableFromInline let id: UInt64
    /// "connection 3 on worker 1"
    public var description: String { "connection \(UInt32(truncatingIfNeeded: id)) on worker \(worker.rawValue)" }
}

/// An IPv4 or IPv6 address and port to listen on.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    let bytes: [UInt8]
    /// "127.0.0.1:6380"
    public let description: String

    /// `host` (a numeric IPv4 or IPv6 address) and `port` (0: any free port).
    /// - Throws: ``SpindleError`` for a host that is not a numeric address or a port out of range.
    public init(host: String, port: Int) throws(SpindleError) {
        guard (0...65535).contains(port) else {
            throw SpindleError(.invalidConfiguration, "port \(port): rule 0...65535")
        }
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            description = "\(host):\(port)"
            return
        }
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            description = "[\(host)]:\(port)"
            return
        }
        throw SpindleError(.invalidConfiguration, "address \"\(host)\": rule a numeric IPv4 or IPv6 address; fix: e.g. 127.0.0.1 or ::1")
    }

    /// The port (0: any free port).
    public var port: Int {
        bytes.withUnsafeBytes { raw in
            Int(UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self)))  // sin_port and sin6_port share offset 2
        }
    }

    /// The same address on `port`.
    func with(port: Int) -> SocketAddress {
        var b = bytes
        let p = UInt16(port).bigEndian
        withUnsafeBytes(of: p) { b[2] = $0[0]; b[3] = $0[1] }
        let host = description.hasPrefix("[") ? String(description.dropFirst().prefix { $0 != "]" }) : String(description.prefix { $0 != ":" })
        return SocketAddress(bytes: b, description: description.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)")
    }

    init(bytes: [UInt8], description: String) {
        self.bytes = bytes
        self.description = description
    }

    /// A free port for this address that SO_REUSEPORT listeners can share: the kernel picks it
    /// for a socket bound here, which is closed again (so one port 0 means one port for every
    /// worker's listener, not one each).
    func reservedReusePort() throws(SpindleError) -> Int {
        let family = Int32(bytes.withUnsafeBytes { $0.load(as: sa_family_t.self) })
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SpindleError(.startFailed, "listener \(self): socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = bytes.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count)) == 0
        } && withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw SpindleError(.startFailed, "listener \(self): cannot pick a free port: \(String(cString: strerror(errno)))") }
        return withUnsafeBytes(of: &storage) { Int(UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self))) }
    }

    /// 127.0.0.1 on `port`.
    public static func loopback(port: Int) throws(SpindleError) -> SocketAddress { try SocketAddress(host: "127.0.0.1", port: port) }
    /// 0.0.0.0 on `port`.
    public static func any(port: Int) throws(SpindleError) -> SocketAddress { try SocketAddress(host: "0.0.0.0", port: port) }
}

/// What a listener's handler receives, for the listener and every connection it accepted. Passed
/// `borrowing` and `~Copyable`: received bytes are lent by the engine's buffer ring for the length
/// of the handler call and go back when the batch ends, so they can only be read inside
/// ``withBytes(_:)``.
public struct ConnectionEvent: ~Copyable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// A new connection (``ConnectionEvent/connection``); or, with ``ConnectionEvent/error``, an
        /// accept that failed (e.g. `EMFILE`) — the listener goes on.
        case accepted
        /// Bytes arrived (``ConnectionEvent/withBytes(_:)``, ``ConnectionEvent/byteCount``).
        case data
        /// The last event of a connection: closed by us, EOF from the peer (no error), or ended by an
        /// error (reset: `ECONNRESET`). The engine closes the socket.
        case closed
        /// One ``WorkerContext/send(_:on:)-(UnsafeRawBufferPointer,_)`` call completed (all its bytes, or ``ConnectionEvent/error``).
        case sent
        /// The worker's receive buffers ran out; receiving resumes as handlers' batches give them back.
        case buffersExhausted
        /// The last event of a cancelled listener.
        case cancelled
    }

    /// What happened.
    public let kind: Kind
    /// The connection it is about (for `accepted`: the new one).
    public let connection: Connection
    /// The error, where there is one.
    public let error: POSIXErrorCode?
    /// `data`: bytes received; `sent`: bytes of the send call.
    public let byteCount: Int
    /// `sent`: the sequence number ``WorkerContext/send(_:on:)-(UnsafeRawBufferPointer,_)`` returned.
    public let sequence: UInt64
    @usableFromInline let base: UnsafeRawPointer?

    @usableFromInline
    init(_ e: sp_io_event, worker: WorkerID) {
        let op = (e.flags >> 8) & 0xFF
        var conn = e.source
        switch Int(op) {
        case SP_OP_ACCEPTED: kind = .accepted; conn = e.value
        case SP_OP_DATA: kind = .data
        case SP_OP_CLOSED: kind = .closed
        case SP_OP_SENT: kind = .sent
        case SP_OP_NOBUFS: kind = .buffersExhausted
        default: kind = .cancelled
        }
        connection = Connection(worker: worker, id: conn)
        error = e.result < 0 && kind != .buffersExhausted ? POSIXErrorCode(rawValue: -e.result) : nil
        byteCount = e.result > 0 ? Int(e.result) : 0
        sequence = kind == .sent ? e.value : 0
        base = kind == .data ? UnsafeRawPointer(bitPattern: UInt(e.value)) : nil
    }

    /// The received bytes (`data` events; empty otherwise), valid only inside `body`.
    @inlinable
    public func withBytes<R>(_ body: (RawSpan) throws -> R) rethrows -> R {
        guard let base else { return try body(RawSpan()) }
        return try body(RawSpan(_unsafeStart: base, byteCount: byteCount))
    }
}

/// Why a send or close was refused.
public struct ConnectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reason.
    public enum Code: Sendable, Hashable {
        /// The connection is closed (or closing).
        case closed
        /// Every send chunk of this worker is queued: wait for `sent` events.
        case sendQueueFull
        /// One send call carries at most ``ConnectionError/maxSend`` bytes.
        case tooLarge
        /// Called on another worker than the connection's.
        case wrongWorker
    }
    /// The reason.
    public let code: Code
    /// The connection.
    public let connection: Connection
    /// Bytes one send call may carry.
    public static let maxSend = Int(SP_SEND_MAX)
    /// One line.
    public var description: String {
        switch code {
        case .closed: return "\(connection) is closed"
        case .sendQueueFull: return "\(connection): the worker's send queue is full; wait for sent events"
        case .tooLarge: return "\(connection): one send carries at most \(Self.maxSend) bytes"
        case .wrongWorker: return "\(connection): send and close on the connection's own worker"
        }
    }
}

extension WorkerContext {
    /// Sends `bytes` (copied) on `connection`, in order after its earlier sends; one `sent` event
    /// per call follows (the engine finishes a short send). Returns the call's sequence number.
    /// - Throws: ``ConnectionError`` (`closed`, `sendQueueFull`, `tooLarge`, `wrongWorker`).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, on connection: Connection) throws(ConnectionError) -> UInt64 {
        guard connection.worker == worker else { throw ConnectionError(code: .wrongWorker, connection: connection) }
        var seq: UInt64 = 0
        let rc = sp_conn_send(_worker, connection.id, bytes.baseAddress, UInt32(clamping: bytes.count), &seq)
        if rc == SP_OK.rawValue { return seq }
        let code: ConnectionError.Code =
            rc == SP_ENOSPC.rawValue ? .sendQueueFull : rc == SP_EINVAL.rawValue ? .tooLarge : .closed
        throw ConnectionError(code: code, connection: connection)
    }

    /// Sends the bytes of a contiguous collection (see ``send(_:on:)``).
    @discardableResult
    public func send(_ bytes: [UInt8], on connection: Connection) throws(ConnectionError) -> UInt64 {
        let r: Result<UInt64, ConnectionError> = bytes.withUnsafeBytes { b in Result { () throws(ConnectionError) in try send(b, on: connection) } }
        return try r.get()
    }

    /// Closes `connection` once its queued sends are out; its final `closed` event follows.
    /// - Throws: ``ConnectionError`` (`closed` when it already is, `wrongWorker`).
    public func close(_ connection: Connection) throws(ConnectionError) {
        guard connection.worker == worker else { throw ConnectionError(code: .wrongWorker, connection: connection) }
        if sp_conn_close(_worker, connection.id) != SP_OK.rawValue { throw ConnectionError(code: .closed, connection: connection) }
    }

    /// Resets `connection` now — for a peer that stopped reading, whose queued sends would hold
    /// this worker's send chunks until it reads: the peer gets an RST, queued sends are not sent
    /// (each call still gets its `sent` event, with an error), and one final `closed` event follows.
    /// Works on a connection already closing with ``close(_:)``.
    /// - Throws: ``ConnectionError`` (`closed` when its final event already came, `wrongWorker`).
    public func abort(_ connection: Connection) throws(ConnectionError) {
        guard connection.worker == worker else { throw ConnectionError(code: .wrongWorker, connection: connection) }
        if sp_conn_abort(_worker, connection.id) != SP_OK.rawValue { throw ConnectionError(code: .closed, connection: connection) }
    }
}

extension Engine.Builder {
    /// Listens for TCP connections on `address`, on the worker `destination` names (with `.spread`:
    /// one listener per worker on the same port, `SO_REUSEPORT`, the kernel spreading connections).
    /// Every event of the listener and of its connections goes to `handler`, in `lane` — a control
    /// port on a strict lane stays fast while a bulk port floods a weighted one.
    ///
    /// ```swift
    /// try builder.listen(on: .loopback(port: 7000), lane: bulk) { event, ctx in
    ///     if event.kind == .data {
    ///         event.withBytes { bytes in bytes.withUnsafeBytes { _ = try? ctx.send($0, on: event.connection) } }
    ///     }
    /// }
    /// ```
    /// - Returns: one handle per listener (``SourceHandle/localPort`` once started).
    @discardableResult
    public mutating func listen(
        on address: SocketAddress, lane: Lane, on destination: Destination = .worker(WorkerID(0)), backlog: Int = 1024,
        handler: @escaping @Sendable (borrowing ConnectionEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> [SourceHandle] {
        let workers = try _sourceWorkers(lane: lane, on: destination, what: "listener", everyWorker: true)
        // Port 0 on several workers: one free port for all of them (each would get its own).
        let address = workers.count > 1 && address.port == 0 ? address.with(port: try address.reservedReusePort()) : address
        let run: HandlerEntry.Run = { slots, count, ctx in
            let worker = ctx.worker
            return _runBatch(count, ctx) { i throws in
                let e = UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: sp_io_event.self)
                if e.flags & SP_IO_STALE != 0 { return }
                try handler(ConnectionEvent(e, worker: worker), ctx)
            }
        }
        let kind: EventKind<_IOSlot> = try _append(HandlerEntry(run: run, release: nil, typeName: "listener \(address)"), inline: true)
        var handles: [SourceHandle] = []
        for w in workers {
            var spec = sp_source_spec()
            spec.kind = SP_SOURCE_LISTEN.rawValue
            spec.lane = UInt32(lane.index)
            spec.handler_kind = kind.index
            spec.backlog = UInt32(clamping: backlog)
            spec.reuse_port = workers.count > 1 ? 1 : 0
            let handle = SourceHandle(worker: WorkerID(w), label: "listener \(address)")
            sources.append(PendingSource(handle: handle, spec: spec, address: address.bytes))
            handles.append(handle)
        }
        return handles
    }
}
