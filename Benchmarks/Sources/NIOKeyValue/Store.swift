import NIOCore

/// The key space: a Dictionary from key to value, with optional expiry. Keys that have expired are
/// dropped when touched (as redis-server does lazily) and by `sweep`, run every 100 ms on the loop.
///
/// Only the server's one event loop touches it; every handler is on that loop.
final class Store: @unchecked Sendable {
    struct Entry {
        var value: ByteBuffer
        var expiry: NIODeadline?
    }

    private(set) var entries: [ByteBuffer: Entry] = [:]
    /// Keys that carry an expiry, for the sweep.
    private var volatileKeys: Set<ByteBuffer> = []
    private(set) var expiredCount = 0

    var count: Int { entries.count }

    func get(_ key: ByteBuffer, now: NIODeadline) -> ByteBuffer? {
        guard let entry = entries[key] else { return nil }
        if let expiry = entry.expiry, expiry <= now {
            remove(key)
            expiredCount += 1
            return nil
        }
        return entry.value
    }

    /// Stores copies of key and value: slices of the read buffer would keep the whole buffer alive.
    func set(_ key: ByteBuffer, _ value: ByteBuffer, expiry: NIODeadline?) {
        let key = ByteBuffer(copying: key)
        entries[key] = Entry(value: ByteBuffer(copying: value), expiry: expiry)
        if expiry != nil { volatileKeys.insert(key) } else if !volatileKeys.isEmpty { volatileKeys.remove(key) }
    }

    @discardableResult
    func remove(_ key: ByteBuffer) -> Bool {
        if !volatileKeys.isEmpty { volatileKeys.remove(key) }
        return entries.removeValue(forKey: key) != nil
    }

    func removeAll() {
        entries.removeAll()
        volatileKeys.removeAll()
    }

    /// Drops up to `limit` expired keys.
    func sweep(now: NIODeadline, limit: Int = 1000) {
        var dead: [ByteBuffer] = []
        for key in volatileKeys.prefix(limit) {
            if let expiry = entries[key]?.expiry, expiry <= now { dead.append(key) }
        }
        for key in dead {
            remove(key)
            expiredCount += 1
        }
    }
}

extension ByteBuffer {
    /// A new buffer holding exactly `other`'s readable bytes.
    init(copying other: ByteBuffer) {
        self = ByteBufferAllocator().buffer(capacity: other.readableBytes)
        self.writeImmutableBuffer(other)
    }
}
