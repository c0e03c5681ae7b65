import SpindleRESP

extension Shard {
    /// Runs a checked command on this worker's keys (the owner's side), its reply appended to `r`.
    /// `a` holds the arguments after the command's name.
    func run(_ op: Op, _ a: Args, into r: inout [UInt8]) {
        var now = Clock()
        switch op {
        case .get:
            let key = a[0]
            if let e = store.find(key, hash: Store.hash(key), now: &now) {
                store.withValue(e) { r.appendRESPBulk($0) }
            } else {
                r.appendRESPNull()
            }
        case .set:
            guard case .success(let o) = SetOptions.parse(a) else { return r.appendRESPError("ERR syntax error") }
            let key = a[0], h = Store.hash(key)
            if o.onlyIfMissing || o.onlyIfPresent {
                let present = store.find(key, hash: h, now: &now) != nil
                if present == o.onlyIfMissing { return r.appendRESPNull() }
            }
            store.set(key, hash: h, value: a[1], expiresAt: o.ttlNanoseconds == 0 ? 0 : now.read() &+ o.ttlNanoseconds, keepTTL: o.keepTTL)
            r.appendRESPSimple("OK")
        case .incr:
            let key = a[0], h = Store.hash(key)
            var v = 0
            let e = store.find(key, hash: h, now: &now)
            if let e {
                guard let x = store.withValue(e, { RESPParser.parseInteger($0) }) else {
                    return r.appendRESPError("ERR value is not an integer or out of range")
                }
                v = x
            }
            guard v != Int.max else { return r.appendRESPError("ERR increment or decrement would overflow") }
            v += 1
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buf in
                var n = 0
                var x = v < 0 ? UInt64(-(v + 1)) + 1 : UInt64(v)
                repeat {
                    buf[23 - n] = UInt8(truncatingIfNeeded: x % 10) &+ 0x30
                    x /= 10
                    n += 1
                } while x > 0
                if v < 0 {
                    buf[23 - n] = UInt8(ascii: "-")
                    n += 1
                }
                let bytes = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buf[(24 - n)...]))
                if let e { store.setValue(e, bytes) } else { store.set(key, hash: h, value: bytes, expiresAt: 0) }
            }
            r.appendRESPInteger(v)
        case .del, .exists:
            var n = 0
            for i in 0..<a.count {
                let key = a[i], h = Store.hash(key)
                if op == .del {
                    if store.delete(key, hash: h, now: &now) { n += 1 }
                } else if store.find(key, hash: h, now: &now) != nil {
                    n += 1
                }
            }
            r.appendRESPInteger(n)
        case .mget:
            r.appendRESPArrayHeader(a.count)
            for i in 0..<a.count {
                let key = a[i]
                if let e = store.find(key, hash: Store.hash(key), now: &now) {
                    store.withValue(e) { r.appendRESPBulk($0) }
                } else {
                    r.appendRESPNull()
                }
            }
        case .mset:
            var i = 0
            while i + 1 < a.count {
                let key = a[i]
                store.set(key, hash: Store.hash(key), value: a[i + 1], expiresAt: 0)
                i += 2
            }
            r.appendRESPSimple("OK")
        case .dbsize:
            // Keys whose time ran out but were not looked at yet are not counted.
            r.appendRESPInteger(store.count - expiredNotSwept(&now))
        case .flushall:
            store.removeAll()
            r.appendRESPSimple("OK")
        default:
            r.appendRESPError("ERR this command does not run on a key owner")
        }
        counters.set(counters.keys, store.count)
        counters.set(counters.expires, store.volatileCount)
        counters.set(counters.expired, store.expired)
    }

    /// Expired keys still in the table (0 without expiring keys; else one pass over the table).
    func expiredNotSwept(_ now: inout Clock) -> Int {
        guard store.volatileCount > 0 else { return 0 }
        let t = now.read()
        return store.entries.reduce(0) { $0 + ($1.expiresAt != 0 && $1.expiresAt <= t ? 1 : 0) }
    }

    /// The periodic sweep (active expiry), bounded per tick.
    func sweep() {
        _ = store.sweep(now: monotonicNanoseconds(), budget: 20_000)
        counters.set(counters.keys, store.count)
        counters.set(counters.expires, store.volatileCount)
        counters.set(counters.expired, store.expired)
    }
}
