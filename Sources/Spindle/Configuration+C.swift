import CSpindle

extension Engine.Configuration {
    /// Builds the Swift value from the C core's `sp_config`.
    public init(_ raw: sp_config) {
        var raw = raw
        let workers = Int(min(raw.worker_count, UInt32(SP_MAX_WORKERS)))
        let cpus: [Int] = withUnsafeBytes(of: &raw.cpus) { buf in
            (0..<workers).map { Int(buf.load(fromByteOffset: $0 * 2, as: UInt16.self)) }
        }
        let laneCount = Int(min(raw.lane_count, UInt32(SP_MAX_LANES)))
        let lanes: [Engine.LaneConfiguration] = withUnsafeBytes(of: &raw.lanes) { buf in
            (0..<laneCount).map { i in
                Engine.LaneConfiguration(buf.load(fromByteOffset: i * MemoryLayout<sp_lane_config>.stride, as: sp_lane_config.self))
            }
        }
        self.init(
            cpus: cpus, lanes: lanes,
            numaPolicy: NUMAPolicy(rawValue: raw.numa_policy) ?? .local,
            backend: Backend(rawValue: raw.backend) ?? .auto,
            spin: .nanoseconds(Int64(clamping: raw.spin_ns)),
            uringEntries: Int(raw.uring_entries),
            uringDeferTaskrun: raw.uring_flags & UInt32(SP_URING_WANT_DEFER_TASKRUN) != 0,
            eagerRingBytes: Int(clamping: raw.eager_ring_bytes),
            slowBatchThreshold: raw.slow_handler_ns == 0 ? nil : .nanoseconds(Int64(clamping: raw.slow_handler_ns))
        )
    }

    /// The C core's `sp_config` for this value.
    /// - Throws: ``SpindleError`` when a value cannot be represented (too many CPUs or lanes, a
    ///   lane name too long, a negative number).
    public func cValue() throws(SpindleError) -> sp_config {
        var raw = sp_config()
        guard !cpus.isEmpty, cpus.count <= Int(SP_MAX_WORKERS) else {
            throw SpindleError(.invalidConfiguration,
                "engine.cpus = \(cpus.count) CPUs: rule 1...\(SP_MAX_WORKERS) workers; fix: list between 1 and \(SP_MAX_WORKERS) CPUs")
        }
        guard !lanes.isEmpty, lanes.count <= Int(SP_MAX_LANES) else {
            throw SpindleError(.invalidConfiguration,
                "lanes = \(lanes.count) lanes: rule 1...\(SP_MAX_LANES) lanes; fix: define between 1 and \(SP_MAX_LANES) lanes")
        }
        raw.worker_count = UInt32(cpus.count)
        raw.lane_count = UInt32(lanes.count)
        try withUnsafeMutableBytes(of: &raw.cpus) { (buf) throws(SpindleError) in
            for (i, cpu) in cpus.enumerated() {
                guard cpu >= 0, cpu < Int(SP_MAX_CPUS) else {
                    throw SpindleError(.invalidConfiguration,
                        "engine.cpus[\(i)] = \(cpu): rule 0 <= cpu < \(SP_MAX_CPUS); fix: use a CPU number this host has")
                }
                buf.storeBytes(of: UInt16(cpu), toByteOffset: i * 2, as: UInt16.self)
            }
        }
        try withUnsafeMutableBytes(of: &raw.lanes) { (buf) throws(SpindleError) in
            for (i, lane) in lanes.enumerated() {
                let c = try lane.cValue(index: i)
                buf.storeBytes(of: c, toByteOffset: i * MemoryLayout<sp_lane_config>.stride, as: sp_lane_config.self)
            }
        }
        raw.numa_policy = numaPolicy.rawValue
        raw.backend = backend.rawValue
        raw.spin_ns = try Self.nanoseconds(spin, key: "engine.spin")
        guard uringEntries > 0, uringEntries <= Int(UInt32.max) else {
            throw SpindleError(.invalidConfiguration,
                "engine.uring_entries = \(uringEntries): rule power of two in 8...32768; fix: use 256")
        }
        raw.uring_entries = UInt32(uringEntries)
        raw.uring_flags = uringDeferTaskrun ? UInt32(SP_URING_WANT_DEFER_TASKRUN | SP_URING_WANT_COOP_TASKRUN) : 0
        raw.eager_ring_bytes = UInt64(max(0, eagerRingBytes))
        raw.slow_handler_ns = try slowBatchThreshold.map { d throws(SpindleError) in try Self.nanoseconds(d, key: "engine.slow_batch") } ?? 0
        return raw
    }

    static func nanoseconds(_ d: Duration, key: String) throws(SpindleError) -> UInt64 {
        let (s, atto) = d.components
        guard s >= 0, atto >= 0, s < 1_000_000 else {
            throw SpindleError(.invalidConfiguration, "\(key) = \(d): rule a non-negative duration; fix: use a positive value")
        }
        return UInt64(s) * 1_000_000_000 + UInt64(atto / 1_000_000_000)
    }
}

extension Engine.LaneConfiguration {
    init(_ c: sp_lane_config) {
        var c = c
        let name = withUnsafeBytes(of: &c.name) { buf -> String in
            let bytes = buf.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        let policy: Policy = c.policy == SP_POLICY_STRICT.rawValue ? .strict(budget: Int(c.budget)) : .weighted(weight: Int(c.weight))
        let onFull: OnFull
        switch c.on_full {
        case SP_ON_FULL_DROP.rawValue: onFull = .drop
        case SP_ON_FULL_BLOCK.rawValue: onFull = .block(timeout: c.block_timeout_ns == 0 ? nil : .nanoseconds(Int64(clamping: c.block_timeout_ns)))
        default: onFull = .reject
        }
        self.init(name: name, policy: policy, capacity: Int(c.capacity), onFull: onFull, maxBatch: Int(c.max_batch))
    }

    func cValue(index: Int) throws(SpindleError) -> sp_lane_config {
        var c = sp_lane_config()
        let utf8 = Array(name.utf8)
        guard !utf8.isEmpty, utf8.count < Int(SP_LANE_NAME_MAX), !utf8.contains(0) else {
            throw SpindleError(.invalidConfiguration,
                "lanes[\(index)].name = \"\(name)\": rule 1...\(SP_LANE_NAME_MAX - 1) bytes of UTF-8; fix: use a shorter name")
        }
        withUnsafeMutableBytes(of: &c.name) { buf in
            for (i, b) in utf8.enumerated() { buf[i] = b }
        }
        func u32(_ v: Int, _ key: String) throws(SpindleError) -> UInt32 {
            guard v >= 0, v <= Int(UInt32.max) else {
                throw SpindleError(.invalidConfiguration, "lanes.\(name).\(key) = \(v): rule 0...\(UInt32.max); fix: use a smaller value")
            }
            return UInt32(v)
        }
        switch policy {
        case .strict(let budget):
            c.policy = SP_POLICY_STRICT.rawValue
            c.budget = try u32(budget, "budget")
        case .weighted(let weight):
            c.policy = SP_POLICY_WEIGHTED.rawValue
            c.weight = try u32(weight, "weight")
        }
        c.capacity = try u32(capacity, "capacity")
        c.max_batch = try u32(maxBatch, "max_batch")
        switch onFull {
        case .reject: c.on_full = SP_ON_FULL_REJECT.rawValue
        case .drop: c.on_full = SP_ON_FULL_DROP.rawValue
        case .block(let timeout):
            c.on_full = SP_ON_FULL_BLOCK.rawValue
            c.block_timeout_ns = try timeout.map { d throws(SpindleError) in try Engine.Configuration.nanoseconds(d, key: "lanes.\(name).block_timeout") } ?? 0
        }
        return c
    }
}
