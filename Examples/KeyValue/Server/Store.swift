import Glibc

/// One worker's share of the keys: an open-addressing hash table (linear probing, backward-shift
/// deletion, no tombstones) whose lookups take the key as borrowed bytes — a GET allocates nothing.
/// Keys and values are byte arrays; overwriting a value reuses its storage when it fits.
struct Store {
    struct Entry {
        var hash: UInt64
        var key: [UInt8]
        var value: [UInt8]
        /// CLOCK_MONOTONIC ns after which the key is gone; 0: no expiry.
        var expiresAt: UInt64
    }

    /// Entry index per slot, -1 when empty. Power-of-two count, at most half full.
    private(set) var slots: [Int32] = Array(repeating: -1, count: 16)
    private(set) var entries: [Entry] = []
    /// Entries with an expiry (for INFO and to skip the sweep when there are none).
    private(set) var volatileCount = 0
    private var sweepCursor = 0

    var count: Int { entries.count }

    /// SipHash-1-3 with the process's random seed (Swift's `Hasher`): a client cannot choose keys
    /// that collide, so probing stays short whatever it sends.
    @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var h = Hasher()
        h.combine(bytes: key)
        return UInt64(bitPattern: Int64(h.finalize()))
    }

    /// The slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func probe(_ key: UnsafeRawBufferPointer, _ hash: UInt64) -> (slot: Int, entry: Int?) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let e = Int(slots[i])
            if e < 0 { return (i, nil) }
            if entries[e].hash == hash && entries[e].key.count == key.count {
                let same = entries[e].key.withUnsafeBytes { k in key.count == 0 || memcmp(k.baseAddress!, key.baseAddress!, key.count) == 0 }
                if same { return (i, e) }
            }
            i = (i + 1) & mask
        }
    }

    /// The entry index of a live `key` (an expired one is deleted on the way: lazy expiry).
    mutating func find(_ key: UnsafeRawBufferPointer, hash: UInt64, now: inout Clock) -> Int? {
        let (slot, e) = probe(key, hash)
        guard let e else { return nil }
        if entries[e].expiresAt != 0 && entries[e].expiresAt <= now.read() {
            remove(slot: slot)
            expired &+= 1
            return nil
        }
        return e
    }

    /// Keys removed because their time ran out (lazily or by the sweep).
    var expired = 0

    func value(_ e: Int) -> [UInt8] { entries[e].value }

    func withValue<R>(_ e: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        entries[e].value.withUnsafeBytes(body)
    }

    /// Sets `key` to `value` with `expiresAt` (0: none); `keepTTL` keeps an existing expiry.
    mutating func set(_ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer, expiresAt: UInt64, keepTTL: Bool = false) {
        let (slot, found) = probe(key, hash)
        if let e = found {
            let old = entries[e].expiresAt
            let newExpiry = keepTTL ? old : expiresAt
            if (old != 0) != (newExpiry != 0) { volatileCount += newExpiry != 0 ? 1 : -1 }
            entries[e].expiresAt = newExpiry
            Self.assign(&entries[e].value, value)
            return
        }
        if expiresAt != 0 { volatileCount += 1 }
        entries.append(Entry(hash: hash, key: Array(key), value: Array(value), expiresAt: expiresAt))
        slots[slot] = Int32(entries.count - 1)
        if entries.count * 2 > slots.count { grow() }
    }

    /// Replaces an entry's value in place (its storage is reused when it fits; a buffer far larger
    /// than the new value is given back).
    @inline(__always)
    static func assign(_ target: inout [UInt8], _ value: UnsafeRawBufferPointer) {
        if target.capacity > 4096 && target.capacity > 4 * value.count {
            target = Array(value)
            return
        }
        target.removeAll(keepingCapacity: true)
        target.append(contentsOf: value)
    }

    mutating func setValue(_ e: Int, _ value: UnsafeRawBufferPointer) {
        Self.assign(&entries[e].value, value)
    }

    /// Deletes `key`; false when it was not there (or had expired).
    mutating func delete(_ key: UnsafeRawBufferPointer, hash: UInt64, now: inout Clock) -> Bool {
        let (slot, e) = probe(key, hash)
        guard let e else { return false }
        let wasLive = entries[e].expiresAt == 0 || entries[e].expiresAt > now.read()
        remove(slot: slot)
        if !wasLive { expired &+= 1 }
        return wasLive
    }

    mutating func removeAll() {
        entries.removeAll()
        slots = Array(repeating: -1, count: 16)
        volatileCount = 0
        sweepCursor = 0
    }

    /// Removes the entry in `slot`: backward-shift the probe run behind it, then move the last
    /// entry into the hole of `entries` and repoint its slot.
    private mutating func remove(slot: Int) {
        let mask = slots.count - 1
        let e = Int(slots[slot])
        if entries[e].expiresAt != 0 { volatileCount -= 1 }
        var hole = slot
        var i = (slot + 1) & mask
        while slots[i] >= 0 {
            let home = Int(truncatingIfNeeded: entries[Int(slots[i])].hash) & mask
            // The entry at i may move into the hole if its home is not in (hole, i] cyclically.
            let movable = hole <= i ? (home <= hole || home > i) : (home <= hole && home > i)
            if movable {
                slots[hole] = slots[i]
                hole = i
            }
            i = (i + 1) & mask
        }
        slots[hole] = -1
        let last = entries.count - 1
        if e != last {
            // Find the slot that points at `last` and repoint it at `e`.
            var j = Int(truncatingIfNeeded: entries[last].hash) & mask
            while Int(slots[j]) != last { j = (j + 1) & mask }
            slots[j] = Int32(e)
            entries.swapAt(e, last)
        }
        entries.removeLast()
        if slots.count > 64 && entries.count * 8 < slots.count { rebuild(slots.count / 2) }
    }

    private mutating func grow() { rebuild(slots.count * 2) }

    private mutating func rebuild(_ size: Int) {
        slots = Array(repeating: -1, count: size)
        let mask = size - 1
        for (n, entry) in entries.enumerated() {
            var i = Int(truncatingIfNeeded: entry.hash) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(n)
        }
    }

    /// Active expiry: looks at up to `budget` entries from where the last sweep stopped and removes
    /// the expired ones (bounded work per tick, like Redis's expire cycle). Returns how many.
    mutating func sweep(now: UInt64, budget: Int) -> Int {
        guard volatileCount > 0, !entries.isEmpty else { return 0 }
        var removed = 0
        var looked = 0
        if sweepCursor >= entries.count { sweepCursor = 0 }
        while looked < budget && !entries.isEmpty {
            if sweepCursor >= entries.count { sweepCursor = 0 }
            let x = entries[sweepCursor].expiresAt
            looked += 1
            if x != 0 && x <= now {
                let (slot, _) = entries[sweepCursor].key.withUnsafeBytes { probe($0, entries[sweepCursor].hash) }
                remove(slot: slot)  // the last entry moved into the cursor's place: look at it next
                removed += 1
            } else {
                sweepCursor += 1
            }
        }
        expired &+= removed
        return removed
    }
}

/// The time of one command, read at most once and only when a key with an expiry is touched.
struct Clock {
    var value: UInt64 = 0
    @inline(__always)
    mutating func read() -> UInt64 {
        if value == 0 { value = monotonicNanoseconds() }
        return value
    }
}

/// CLOCK_MONOTONIC in ns (the vDSO: no syscall).
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
