import Spindle
import SpindleRESP
import Synchronization

/// One worker's part of the server: its keys, the connections it accepted, the hops it lent out.
/// Touched only on its worker's thread (handlers run there), so nothing in it is locked; the
/// counters are atomics only so that INFO on another worker can read them.
final class Shard {
    let worker: Int
    let core: ServerCore
    var store = Store()
    var sessions: [Connection: Session] = [:]
    var nextSerial: UInt64 = 0
    /// Recycled hops (reused: no allocation per forwarded command once warm).
    var pool: [Hop] = []
    /// Hops lent to each owner, per lane (counted from creation to the reply's arrival).
    var inflight: [[Int]]
    var parkedSessions: [Session] = []
    var sendWaiters: [Session] = []
    /// Replies to other workers whose post found the lane full, retried at the next event.
    var stalled: [(bits: UInt, to: Int, lane: Int)] = []
    var scratch: [RESPArgument] = []
    var keyOwner: [Int] = []
    var indices: [Int] = []
    var partOf: [Int]
    var ownerOrder: [Int] = []
    var assembly: [UInt8] = []
    var assemblyStarts: [Int] = []
    let counters = Counters()

    init(worker: Int, core: ServerCore) {
        self.worker = worker
        self.core = core
        self.inflight = Array(repeating: Array(repeating: 0, count: core.workers), count: core.laneCount)
        self.partOf = Array(repeating: -1, count: core.workers)
    }

    var options: KeyValueOptions { core.options }

    // MARK: connection events

    func onConnection(_ e: borrowing ConnectionEvent, lane: Int, _ ctx: borrowing WorkerContext) {
        if !stalled.isEmpty { retryStalled(ctx) }
        switch e.kind {
        case .accepted:
            guard e.error == nil else { return }
            nextSerial &+= 1
            sessions[e.connection] = Session(connection: e.connection, serial: nextSerial, lane: lane,
                                             workers: core.workers, limits: options.limits)
            counters.add(counters.connections, 1)
            counters.add(counters.accepted, 1)
        case .data:
            guard let s = sessions[e.connection], !s.closing else { return }
            e.withBytes { span in span.withUnsafeBytes { receive(s, $0, ctx) } }
        case .sent:
            guard let s = sessions[e.connection] else { return }
            s.inEngine -= e.byteCount
            if e.error != nil { s.closing = true }
            flush(s, ctx)
            if !sendWaiters.isEmpty { serveSendWaiters(ctx) }
        case .closed:
            guard let s = sessions.removeValue(forKey: e.connection) else { return }
            s.closing = true
            s.slots.removeAll()  // hops still in flight find no session and are dropped on return
            s.parts.removeAll()
            counters.add(counters.connections, -1)
        default: break
        }
    }

    /// Bytes arrived on `s`: parsed in place while no partial frame is held; otherwise appended
    /// to its buffer (bounded) and parsed from there.
    func receive(_ s: Session, _ bytes: UnsafeRawBufferPointer, _ ctx: borrowing WorkerContext) {
        if !s.hasInput && !s.parked {
            let used = process(s, bytes, ctx)
            if used < bytes.count && !s.closeAfterFlush && !s.closing {
                _ = keep(s, UnsafeRawBufferPointer(rebasing: bytes[used...]))
            }
        } else if keep(s, bytes) && !s.parked {
            processInput(s, ctx)
        }
        postBuilt(s, ctx)
        drain(s)
        flush(s, ctx)
    }

    /// Appends to the session's input, refusing (protocol error, then close) past `maxInput`.
    func keep(_ s: Session, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let held = s.input.count - s.inputStart
        if held + bytes.count > options.maxInput {
            protocolError(s, "Protocol error: unfinished request over the connection's input limit of \(options.maxInput) bytes")
            s.input = []
            s.inputStart = 0
            return false
        }
        if s.inputStart > 0 && s.inputStart == s.input.count {
            s.input.removeAll(keepingCapacity: true)
            s.inputStart = 0
        }
        if let need = s.parser.bytesNeeded, need <= options.maxInput, s.input.capacity < need {
            s.input.reserveCapacity(need)  // a large value: one allocation of its size, not log(n)
        }
        s.input.append(contentsOf: bytes)
        return true
    }

    /// Parses and runs what the session's buffer holds.
    func processInput(_ s: Session, _ ctx: borrowing WorkerContext) {
        let start = s.inputStart
        let used = s.input.withUnsafeBytes { all in process(s, UnsafeRawBufferPointer(rebasing: all[start...]), ctx) }
        if s.closeAfterFlush || s.closing {
            s.input = []
            s.inputStart = 0
            return
        }
        s.inputStart += used
        if s.inputStart == s.input.count {
            if s.input.capacity > 64 << 10 { s.input = [] } else { s.input.removeAll(keepingCapacity: true) }
            s.inputStart = 0
        } else if s.inputStart > 0 {
            s.input.removeFirst(s.inputStart)  // the parser's offsets are relative to the frame start
            s.inputStart = 0
        }
    }

    /// Runs every whole frame at the start of `bytes`; returns the bytes consumed.
    func process(_ s: Session, _ bytes: UnsafeRawBufferPointer, _ ctx: borrowing WorkerContext) -> Int {
        var pos = 0
        while !s.closeAfterFlush && !s.closing {
            if s.parser.isAtFrameStart && mustPark(s) {
                park(s)
                break
            }
            let rest = UnsafeRawBufferPointer(rebasing: bytes[pos...])
            switch s.parser.next(rest) {
            case .command(let n):
                if !s.parser.arguments.isEmpty { dispatch(s, rest.baseAddress!, ctx) }
                pos += n
            case .needMore:
                if let need = s.parser.bytesNeeded, need > options.maxInput {
                    protocolError(s, "Protocol error: a request of \(need) bytes is over the connection's input limit of \(options.maxInput) bytes")
                }
                return pos
            case .failure(let error):
                protocolError(s, error.description)
                return pos
            }
        }
        return pos
    }

    func protocolError(_ s: Session, _ text: String) {
        counters.add(counters.protocolErrors, 1)
        emit(s) { $0.appendRESPError("ERR " + text) }
        s.closeAfterFlush = true
    }

    // MARK: backpressure

    /// A session waits (its input kept) while it owes `maxPipeline` replies or this worker has lent
    /// as many hops to some owner on its lane as the lane's ring can take back.
    func mustPark(_ s: Session) -> Bool {
        if s.owed >= options.maxPipeline { return true }
        if core.workers == 1 { return false }
        let cap = core.hopCap[s.lane]
        var o = 0
        while o < core.workers {  // an index loop: an array's iterator allocates in a debug build
            if inflight[s.lane][o] >= cap { return true }
            o += 1
        }
        return false
    }

    func park(_ s: Session) {
        guard !s.parked else { return }
        s.parked = true
        parkedSessions.append(s)
        counters.add(counters.parks, 1)
    }

    /// Sessions that waited for room go on, when they can.
    func resumeParked(_ ctx: borrowing WorkerContext) {
        let waiting = parkedSessions
        parkedSessions.removeAll(keepingCapacity: true)
        for s in waiting {
            guard !s.closing, sessions[s.connection] === s else { continue }
            if mustPark(s) {
                parkedSessions.append(s)
                continue
            }
            s.parked = false
            processInput(s, ctx)
            postBuilt(s, ctx)
            drain(s)
            flush(s, ctx)
        }
    }

    // MARK: output

    /// Writes a reply computed on this worker: straight to the output when nothing is owed
    /// before it, else into a ready slot behind the others.
    @inline(__always)
    func emit(_ s: Session, _ body: (inout [UInt8]) -> Void) {
        if s.head == s.slots.count {
            body(&s.out)
        } else {
            let a = s.deferred.count
            body(&s.deferred)
            s.slots.append(Slot(kind: .ready, op: .unknown, hop: nil, a: a, b: s.deferred.count))
        }
    }

    /// Moves every reply at the head of the queue that is complete into the output, in order.
    func drain(_ s: Session) {
        loop: while s.head < s.slots.count {
            let slot = s.slots[s.head]
            switch slot.kind {
            case .ready:
                s.out.append(contentsOf: s.deferred[slot.a..<slot.b])
            case .remote:
                let hop = slot.hop!
                guard hop.done else { break loop }
                let r = hop.replyRange(slot.a)
                hop.reply.withUnsafeBytes { s.out.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[r])) }
                release(hop)
            case .multi:
                for p in s.parts[slot.a..<slot.b] where p.hop != nil && !p.hop!.done { break loop }
                assemble(s, slot)
                for p in s.parts[slot.a..<slot.b] where p.hop != nil { release(p.hop!) }
            }
            s.slots[s.head].hop = nil
            s.head += 1
        }
        if s.head == s.slots.count {
            if s.head > 0 {
                s.slots.removeAll(keepingCapacity: s.slots.capacity <= 4096)
                s.head = 0
            }
            if !s.deferred.isEmpty { s.deferred.removeAll(keepingCapacity: s.deferred.capacity <= 1 << 20) }
            if !s.parts.isEmpty { s.parts.removeAll(keepingCapacity: true) }
            if !s.aux.isEmpty { s.aux.removeAll(keepingCapacity: true) }
        } else if s.head >= 256 && s.head * 2 >= s.slots.count {
            compact(s)
        }
    }

    /// Drops the consumed head of a queue that never empties (a client that streams commands).
    func compact(_ s: Session) {
        var dMin = s.deferred.count, pMin = s.parts.count, aMin = s.aux.count
        for slot in s.slots[s.head...] {
            switch slot.kind {
            case .ready: dMin = min(dMin, slot.a)
            case .remote: break
            case .multi:
                pMin = min(pMin, slot.a)
                aMin = min(aMin, slot.c)
                for p in s.parts[slot.a..<slot.b] where p.hop == nil { dMin = min(dMin, p.a) }
            }
        }
        s.slots.removeFirst(s.head)
        s.head = 0
        s.deferred.removeFirst(dMin)
        s.parts.removeFirst(pMin)
        s.aux.removeFirst(aMin)
        for i in s.slots.indices {
            switch s.slots[i].kind {
            case .ready:
                s.slots[i].a -= dMin
                s.slots[i].b -= dMin
            case .remote: break
            case .multi:
                s.slots[i].a -= pMin
                s.slots[i].b -= pMin
                s.slots[i].c -= aMin
                s.slots[i].d -= aMin
            }
        }
        for i in s.parts.indices where s.parts[i].hop == nil {
            s.parts[i].a -= dMin
            s.parts[i].b -= dMin
        }
    }

    /// Hands the output to the engine: ≤ 64 KiB per `send`, at most `inEngineLimit` bytes in flight
    /// per connection (so one slow reader cannot take every send chunk of the worker); closes a
    /// connection whose unsent replies pass `maxOutput` (a client that sends and never reads).
    func flush(_ s: Session, _ ctx: borrowing WorkerContext) {
        guard !s.closing else { return }
        if s.out.count - s.outStart + s.inEngine > options.maxOutput {
            counters.add(counters.outputOverflows, 1)
            s.out = []
            s.outStart = 0
            close(s, ctx)
            return
        }
        while s.outStart < s.out.count && s.inEngine < ServerCore.inEngineLimit {
            let n = min(s.out.count - s.outStart, ConnectionError.maxSend)
            let start = s.outStart
            let failure: ConnectionError? = s.out.withUnsafeBytes { b -> ConnectionError? in
                do throws(ConnectionError) {
                    try ctx.send(UnsafeRawBufferPointer(rebasing: b[start..<(start + n)]), on: s.connection)
                    return nil
                } catch { return error }
            }
            if let failure {
                if failure.code == .sendQueueFull {
                    if !s.waitingForChunks {
                        s.waitingForChunks = true
                        sendWaiters.append(s)
                    }
                } else {
                    s.closing = true
                }
                break
            }
            s.outStart += n
            s.inEngine += n
        }
        if s.outStart == s.out.count {
            if s.out.capacity > 1 << 20 { s.out = [] } else if !s.out.isEmpty { s.out.removeAll(keepingCapacity: true) }
            s.outStart = 0
            if s.closeAfterFlush && s.head == s.slots.count { close(s, ctx) }
        } else if s.outStart >= 64 << 10 {
            s.out.removeFirst(s.outStart)
            s.outStart = 0
        }
    }

    func close(_ s: Session, _ ctx: borrowing WorkerContext) {
        guard !s.closing else { return }
        s.closing = true
        try? ctx.close(s.connection)
    }

    func serveSendWaiters(_ ctx: borrowing WorkerContext) {
        let waiting = sendWaiters
        sendWaiters.removeAll(keepingCapacity: true)
        for s in waiting {
            s.waitingForChunks = false
            if !s.closing { flush(s, ctx) }
        }
    }
}

/// Counters INFO reads from any worker. Each is written by its own worker only (load + store,
/// no locked instruction).
final class Counters: Sendable {
    let keys = Atomic<Int>(0)
    let expires = Atomic<Int>(0)
    let expired = Atomic<Int>(0)
    let commands = Atomic<Int>(0)
    let connections = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    let hopsSent = Atomic<Int>(0)
    let hopsServed = Atomic<Int>(0)
    let protocolErrors = Atomic<Int>(0)
    let outputOverflows = Atomic<Int>(0)
    let parks = Atomic<Int>(0)
    let busy = Atomic<Int>(0)
    let stalledReplies = Atomic<Int>(0)

    @inline(__always)
    func add(_ a: borrowing Atomic<Int>, _ n: Int) { a.store(a.load(ordering: .relaxed) &+ n, ordering: .relaxed) }
    @inline(__always)
    func set(_ a: borrowing Atomic<Int>, _ n: Int) { a.store(n, ordering: .relaxed) }
}
