import Spindle
import SpindleRESP

extension Shard {
    /// The worker that owns `key` (the engine's `.key` mixer over the key's hash).
    @inline(__always)
    func owner(of key: UnsafeRawBufferPointer) -> Int {
        Int(Destination.key(Store.hash(key)).raw(workerCount: UInt32(core.workers)))
    }

    /// Runs one parsed command (arguments relative to `base`): checks it, then runs it here or
    /// sends it (or its parts) to the owners of its keys.
    func dispatch(_ s: Session, _ base: UnsafeRawPointer, _ ctx: borrowing WorkerContext) {
        counters.add(counters.commands, 1)
        s.parser.arguments.withUnsafeBufferPointer { all in
            let name = Args(base: base, list: all)[0]
            let op = Op.lookup(name)
            let a = Args(base: base, list: UnsafeBufferPointer(rebasing: all[1...]))
            switch op {
            case .ping:
                guard a.count <= 1 else { return arity(s, op) }
                emit(s) { if a.count == 0 { $0.appendRESPSimple("PONG") } else { $0.appendRESPBulk(a[0]) } }
            case .echo:
                guard a.count == 1 else { return arity(s, op) }
                emit(s) { $0.appendRESPBulk(a[0]) }
            case .quit:
                emit(s) { $0.appendRESPSimple("OK") }
                s.closeAfterFlush = true
            case .command:
                emit(s) { $0.appendRESPArrayHeader(0) }  // enough for redis-cli (no command docs)
            case .config:
                config(s, a)
            case .info:
                let text = core.info(section: a.count > 0 ? String(decoding: a[0], as: UTF8.self) : nil)
                emit(s) { $0.appendRESPBulk(Array(text.utf8)) }
            case .get, .incr:
                guard a.count == 1 else { return arity(s, op) }
                single(s, op, a, ctx)
            case .set:
                guard a.count >= 2 else { return arity(s, op) }
                if case .failure(let e) = SetOptions.parse(a) {
                    return emit(s) { $0.appendRESPError(e == .syntax ? "ERR syntax error" : "ERR invalid expire time in 'set' command") }
                }
                single(s, op, a, ctx)
            case .del, .exists, .mget:
                guard a.count >= 1 else { return arity(s, op) }
                multi(s, op, a, stride: 1, ctx)
            case .mset:
                guard a.count >= 2 && a.count % 2 == 0 else { return arity(s, op) }
                multi(s, op, a, stride: 2, ctx)
            case .dbsize:
                guard a.count == 0 else { return arity(s, op) }
                everyShard(s, op, a, ctx)
            case .flushall:
                guard a.count == 0 || (a.count == 1 && (a.is(0, "ASYNC") || a.is(0, "SYNC"))) else {
                    return emit(s) { $0.appendRESPError("ERR syntax error") }
                }
                everyShard(s, op, Args(base: base, list: UnsafeBufferPointer(rebasing: all[1..<1])), ctx)
            case .unknown:
                unknown(s, Args(base: base, list: all))
            }
        }
    }

    func arity(_ s: Session, _ op: Op) {
        emit(s) { $0.appendRESPError("ERR wrong number of arguments for '\(op.name)' command") }
    }

    /// `-ERR unknown command 'x', with args beginning with: 'a' 'b' ` (Redis 7's text; names and
    /// arguments cut at 128 bytes).
    func unknown(_ s: Session, _ all: Args) {
        func quoted(_ b: UnsafeRawBufferPointer) -> String {
            "'" + String(decoding: UnsafeRawBufferPointer(rebasing: b.prefix(128)), as: UTF8.self) + "'"
        }
        var text = "ERR unknown command \(quoted(all[0])), with args beginning with: "
        for i in 1..<min(all.count, 17) { text += quoted(all[i]) + " " }
        emit(s) { $0.appendRESPError(text) }
    }

    /// `CONFIG GET save|appendonly` answered as a server without persistence (redis-benchmark
    /// asks for both at start); other parameters: an empty list.
    func config(_ s: Session, _ a: Args) {
        guard a.count == 2, a.is(0, "GET") else {
            return emit(s) { $0.appendRESPError("ERR CONFIG: only CONFIG GET <parameter> is supported") }
        }
        emit(s) { r in
            if a.is(1, "save") {
                r.appendRESPArrayHeader(2)
                r.appendRESPBulk(Array("save".utf8))
                r.appendRESPBulk([])
            } else if a.is(1, "appendonly") {
                r.appendRESPArrayHeader(2)
                r.appendRESPBulk(Array("appendonly".utf8))
                r.appendRESPBulk(Array("no".utf8))
            } else {
                r.appendRESPArrayHeader(0)
            }
        }
    }

    /// A command on one key: run here when this worker owns it, else added to the owner's hop.
    func single(_ s: Session, _ op: Op, _ a: Args, _ ctx: borrowing WorkerContext) {
        let o = core.workers == 1 ? worker : owner(of: a[0])
        if o == worker {
            emit(s) { run(op, a, into: &$0) }
            return
        }
        guard let hop = hop(for: s, owner: o, ctx) else { return busy(s) }
        let i = hop.add(op, a, 0..<a.count)
        hop.refs += 1
        s.slots.append(Slot(kind: .remote, op: op, hop: hop, a: i, b: 0))
    }

    /// DEL, EXISTS, MGET, MSET: keys with one owner go as one command; keys of several owners are
    /// split into one part per owner and the replies reassembled (MGET in key order).
    func multi(_ s: Session, _ op: Op, _ a: Args, stride: Int, _ ctx: borrowing WorkerContext) {
        let n = a.count / stride
        if core.workers == 1 {
            emit(s) { run(op, a, into: &$0) }
            return
        }
        keyOwner.removeAll(keepingCapacity: true)
        var same = true
        for k in 0..<n {
            let o = owner(of: a[k * stride])
            keyOwner.append(o)
            if o != keyOwner[0] { same = false }
        }
        if same {
            let o = keyOwner[0]
            if o == worker {
                emit(s) { run(op, a, into: &$0) }
                return
            }
            guard let hop = hop(for: s, owner: o, ctx) else { return busy(s) }
            let i = hop.add(op, a, 0..<a.count)
            hop.refs += 1
            s.slots.append(Slot(kind: .remote, op: op, hop: hop, a: i, b: 0))
            return
        }
        for o in 0..<core.workers { partOf[o] = -1 }
        ownerOrder.removeAll(keepingCapacity: true)
        let auxStart = s.aux.count
        for k in 0..<n {
            let o = keyOwner[k]
            if partOf[o] < 0 {
                partOf[o] = ownerOrder.count
                ownerOrder.append(o)
            }
            if op == .mget { s.aux.append(Int32(partOf[o])) }
        }
        let partsStart = s.parts.count
        for o in ownerOrder {
            indices.removeAll(keepingCapacity: true)
            for k in 0..<n where keyOwner[k] == o {
                for i in (k * stride)..<(k * stride + stride) { indices.append(i) }
            }
            if o == worker {
                scratch.removeAll(keepingCapacity: true)
                for i in indices { scratch.append(a.list[i]) }
                let start = s.deferred.count
                scratch.withUnsafeBufferPointer { run(op, Args(base: a.base, list: $0), into: &s.deferred) }
                s.parts.append(Part(hop: nil, a: start, b: s.deferred.count))
            } else if let hop = hop(for: s, owner: o, ctx) {
                let i = hop.add(op, a, indices)
                hop.refs += 1
                s.parts.append(Part(hop: hop, a: i, b: 0))
            } else {
                let start = s.deferred.count
                s.deferred.appendRESPError("ERR server busy: a worker's lane is full, retry")
                s.parts.append(Part(hop: nil, a: start, b: s.deferred.count))
            }
        }
        s.slots.append(Slot(kind: .multi, op: op, hop: nil, a: partsStart, b: s.parts.count, c: auxStart, d: s.aux.count))
    }

    /// DBSIZE, FLUSHALL: one part per worker, in worker order.
    func everyShard(_ s: Session, _ op: Op, _ a: Args, _ ctx: borrowing WorkerContext) {
        if core.workers == 1 {
            emit(s) { run(op, a, into: &$0) }
            return
        }
        let partsStart = s.parts.count
        for o in 0..<core.workers {
            if o == worker {
                let start = s.deferred.count
                run(op, a, into: &s.deferred)
                s.parts.append(Part(hop: nil, a: start, b: s.deferred.count))
            } else if let hop = hop(for: s, owner: o, ctx) {
                let i = hop.add(op, a, 0..<a.count)
                hop.refs += 1
                s.parts.append(Part(hop: hop, a: i, b: 0))
            } else {
                let start = s.deferred.count
                s.deferred.appendRESPError("ERR server busy: a worker's lane is full, retry")
                s.parts.append(Part(hop: nil, a: start, b: s.deferred.count))
            }
        }
        s.slots.append(Slot(kind: .multi, op: op, hop: nil, a: partsStart, b: s.parts.count, c: 0, d: 0))
    }

    func busy(_ s: Session) {
        counters.add(counters.busy, 1)
        emit(s) { $0.appendRESPError("ERR server busy: a worker's lane is full, retry") }
    }

    /// The hop being filled for `owner` during this read, or a new one (nil when this worker has
    /// lent as many to that owner as its lane can take: the caller answers busy — `mustPark`
    /// normally stops the session before that).
    func hop(for s: Session, owner o: Int, _ ctx: borrowing WorkerContext) -> Hop? {
        if let h = s.building[o] {
            if h.request.count < 64 << 10 { return h }
            post(h, ctx)  // a deep pipeline: send what is there, start another
            s.building[o] = nil
        }
        guard inflight[s.lane][o] < core.hopCap[s.lane] else { return nil }
        let h = pool.popLast() ?? Hop()
        h.prepare(connection: s.connection, serial: s.serial, origin: worker, owner: o, lane: s.lane)
        inflight[s.lane][o] += 1
        s.building[o] = h
        return h
    }

    /// Posts every hop filled during this read (one per owner).
    func postBuilt(_ s: Session, _ ctx: borrowing WorkerContext) {
        guard core.workers > 1 else { return }
        for o in 0..<core.workers {
            if let h = s.building[o] {
                s.building[o] = nil
                post(h, ctx)
            }
        }
    }

    func post(_ h: Hop, _ ctx: borrowing WorkerContext) {
        let raw = Unmanaged.passRetained(h).toOpaque()
        do {
            try ctx.post(HopMessage(bits: UInt(bitPattern: raw)), as: core.requestKind, lane: Lane(index: h.lane),
                         to: .worker(WorkerID(h.owner)))
            counters.add(counters.hopsSent, 1)
        } catch {
            Unmanaged<Hop>.fromOpaque(raw).release()
            inflight[h.lane][h.owner] -= 1
            counters.add(counters.busy, 1)
            h.fail("ERR server busy: a worker's lane is full, retry")
        }
    }

    /// On the owner: runs a hop's commands against this worker's store and sends the replies back.
    func serve(_ m: HopMessage, _ ctx: borrowing WorkerContext) {
        if !stalled.isEmpty { retryStalled(ctx) }
        let h = Unmanaged<Hop>.fromOpaque(UnsafeRawPointer(bitPattern: m.bits)!).takeUnretainedValue()
        h.runCommands(on: self)
        counters.add(counters.hopsServed, 1)
        sendBack(m.bits, to: h.origin, lane: h.lane, ctx)
    }

    func sendBack(_ bits: UInt, to origin: Int, lane: Int, _ ctx: borrowing WorkerContext) {
        do {
            try ctx.post(HopMessage(bits: bits), as: core.replyKind, lane: Lane(index: lane), to: .worker(WorkerID(origin)))
        } catch {
            // Cannot happen while hops per pair stay under the ring's room (hopCap); kept, not lost.
            stalled.append((bits, origin, lane))
            counters.add(counters.stalledReplies, 1)
        }
    }

    func retryStalled(_ ctx: borrowing WorkerContext) {
        let waiting = stalled
        stalled.removeAll(keepingCapacity: true)
        for w in waiting { sendBack(w.bits, to: w.to, lane: w.lane, ctx) }
    }

    /// On the origin: a hop came back with its replies.
    func received(_ m: HopMessage, _ ctx: borrowing WorkerContext) {
        if !stalled.isEmpty { retryStalled(ctx) }
        let h = Unmanaged<Hop>.fromOpaque(UnsafeRawPointer(bitPattern: m.bits)!).takeRetainedValue()
        inflight[h.lane][h.owner] -= 1
        h.done = true
        if let c = h.connection, let s = sessions[c], s.serial == h.serial, !s.closing {
            drain(s)
            flush(s, ctx)
        }
        if !parkedSessions.isEmpty { resumeParked(ctx) }
    }

    /// One slot no longer needs `hop`: recycled when it was the last.
    @inline(__always)
    func release(_ hop: Hop) {
        hop.refs -= 1
        if hop.refs == 0 && hop.done {
            hop.recycle()
            if pool.count < 1024 { pool.append(hop) }
        }
    }

    /// The reply of a split command from its parts, in order.
    func assemble(_ s: Session, _ slot: Slot) {
        assembly.removeAll(keepingCapacity: assembly.capacity <= 1 << 20)
        assemblyStarts.removeAll(keepingCapacity: true)
        for p in s.parts[slot.a..<slot.b] {
            assemblyStarts.append(assembly.count)
            if let hop = p.hop {
                let r = hop.replyRange(p.a)
                hop.reply.withUnsafeBytes { assembly.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[r])) }
            } else {
                assembly.append(contentsOf: s.deferred[p.a..<p.b])
            }
        }
        assemblyStarts.append(assembly.count)
        assembly.withUnsafeBytes { all in
            // A part that failed answers for the whole command.
            for i in 0..<(assemblyStarts.count - 1) where all[assemblyStarts[i]] == UInt8(ascii: "-") {
                s.out.append(contentsOf: UnsafeRawBufferPointer(rebasing: all[assemblyStarts[i]..<assemblyStarts[i + 1]]))
                return
            }
            switch slot.op {
            case .del, .exists, .dbsize:
                var sum = 0
                for i in 0..<(assemblyStarts.count - 1) { sum += RESPReply.integer(all, from: assemblyStarts[i]) ?? 0 }
                s.out.appendRESPInteger(sum)
            case .mget:
                s.out.appendRESPArrayHeader(slot.d - slot.c)
                var cursor = [Int](repeating: 0, count: assemblyStarts.count - 1)
                for i in cursor.indices {  // skip each part's `*<n>\r\n`
                    var p = assemblyStarts[i]
                    while all[p] != 0x0A { p += 1 }
                    cursor[i] = p + 1
                }
                for k in slot.c..<slot.d {
                    let part = Int(s.aux[k])
                    let len = RESPReply.length(all, from: cursor[part]) ?? 0
                    s.out.append(contentsOf: UnsafeRawBufferPointer(rebasing: all[cursor[part]..<(cursor[part] + len)]))
                    cursor[part] += len
                }
            default:
                s.out.appendRESPSimple("OK")
            }
        }
    }
}
