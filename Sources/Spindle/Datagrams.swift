import CSpindle
import Foundation

/// A bound UDP socket of the engine: a value naming it on its worker.
public struct DatagramSocket: Hashable, Sendable {
    /// The worker it lives on.
    public let worker: WorkerID
    @usableFromInline let id: UInt64
}

/// What a UDP source's handler receives. `~Copyable` and passed `borrowing`: the datagram's bytes
/// are lent from the worker's receive buffers for the length of the call (``withBytes(_:)``).
public struct DatagramEvent: ~Copyable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// A datagram arrived from ``DatagramEvent/sender``.
        case received
        /// A receive failed (``DatagramEvent/error``); the socket goes on.
        case failed
        /// The worker's receive buffers ran out; receiving resumes as batches give them back.
        case buffersExhausted
        /// The last event of a cancelled socket.
        case cancelled
    }

    /// What happened.
    public let kind: Kind
    /// The socket.
    public let socket: DatagramSocket
    /// The sender (`received`).
    public let sender: SocketAddress?
    /// Bytes received.
    public let byteCount: Int
    /// The error, for `failed`.
    public let error: POSIXErrorCode?
    @usableFromInline let base: UnsafeRawPointer?

    init(_ e: sp_io_event, worker: WorkerID) {
        socket = DatagramSocket(worker: worker, id: e.source)
        let op = Int((e.flags >> 8) & 0xFF)
        if e.flags & SP_IO_CANCELLED != 0 {
            kind = .cancelled
        } else if op == SP_OP_NOBUFS {
            kind = .buffersExhausted
        } else if e.result < 0 {
            kind = .failed
        } else {
            kind = .received
        }
        error = kind == .failed ? POSIXErrorCode(rawValue: -e.result) : nil
        byteCount = kind == .received ? Int(e.result) : 0
        base = kind == .received ? UnsafeRawPointer(bitPattern: UInt(e.value)) : nil
        sender = kind == .received ? UnsafeRawPointer(bitPattern: UInt(e.reserved)).flatMap(SocketAddress.init(sockaddr:)) : nil
    }

    /// The datagram's bytes (`received`; empty otherwise), valid only inside `body`.
    @inlinable
    public func withBytes<R>(_ body: (RawSpan) throws -> R) rethrows -> R {
        guard let base else { return try body(RawSpan()) }
        return try body(RawSpan(_unsafeStart: base, byteCount: byteCount))
    }
}

extension SocketAddress {
    /// The address in a `sockaddr_in` / `sockaddr_in6`.
    init?(sockaddr p: UnsafeRawPointer) {
        let family = p.load(as: sa_family_t.self)
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if family == sa_family_t(AF_INET) {
            var a = p.loadUnaligned(as: sockaddr_in.self)
            guard inet_ntop(AF_INET, &a.sin_addr, &text, socklen_t(text.count)) != nil else { return nil }
            try? self.init(host: String(cMessage: text), port: Int(UInt16(bigEndian: a.sin_port)))
        } else if family == sa_family_t(AF_INET6) {
            var a = p.loadUnaligned(as: sockaddr_in6.self)
            guard inet_ntop(AF_INET6, &a.sin6_addr, &text, socklen_t(text.count)) != nil else { return nil }
            try? self.init(host: String(cMessage: text), port: Int(UInt16(bigEndian: a.sin6_port)))
        } else {
            return nil
        }
    }
}

extension WorkerContext {
    /// Sends one datagram from `socket` to `address` (`sendto`, non-blocking, on the socket's worker).
    /// - Returns: the bytes sent.
    /// - Throws: the `POSIXErrorCode` (`EAGAIN`: the socket buffer is full; `ENOENT`: no such socket
    ///   on this worker).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress, on socket: DatagramSocket) throws(POSIXError) -> Int {
        guard socket.worker == worker else { throw POSIXError(.EXDEV) }
        let rc = address.bytes.withUnsafeBytes { a in
            sp_udp_send(_worker, socket.id, bytes.baseAddress, UInt32(clamping: bytes.count), a.baseAddress, UInt32(a.count))
        }
        if rc < 0 { throw POSIXError(POSIXErrorCode(rawValue: -rc) ?? .EIO) }
        return Int(rc)
    }
}

extension Engine.Builder {
    /// A UDP socket bound to `address` on the worker `destination` names: one `received` event per
    /// datagram, in `lane`; reply with ``WorkerContext/send(_:to:on:)``.
    /// - Returns: its handle (``SourceHandle/localPort`` once started, ``SourceHandle/cancel()``).
    @discardableResult
    public mutating func udp(
        bind address: SocketAddress, lane: Lane, on destination: Destination = .worker(WorkerID(0)),
        handler: @escaping @Sendable (borrowing DatagramEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> SourceHandle {
        let w = try _sourceWorkers(lane: lane, on: destination, what: "udp socket")[0]
        let handle = SourceHandle(worker: WorkerID(w), label: "udp \(address)")
        let run: HandlerEntry.Run = { slots, count, ctx in
            let worker = ctx.worker
            return _runBatch(count, ctx) { i throws in
                let e = UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: sp_io_event.self)
                if e.flags & SP_IO_STALE != 0 { return }
                defer { if e.flags & SP_IO_FINAL != 0 { handle.finished.store(true, ordering: .releasing) } }
                try handler(DatagramEvent(e, worker: worker), ctx)
            }
        }
        let kind: EventKind<_IOSlot> = try _append(HandlerEntry(run: run, release: nil, typeName: "udp \(address)"), inline: true)
        var spec = sp_source_spec()
        spec.kind = SP_SOURCE_UDP.rawValue
        spec.lane = UInt32(lane.index)
        spec.handler_kind = kind.index
        sources.append(PendingSource(handle: handle, spec: spec, address: address.bytes))
        return handle
    }
}
