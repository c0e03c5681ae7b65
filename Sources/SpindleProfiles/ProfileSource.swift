import CSpindle
import Spindle

/// A profile as the operator edits it: the engine configuration (every bit of `sp_config`) and
/// the host facts `detect` recorded. Parsed strictly from TOML, encoded to the binary format,
/// decoded back, rendered as canonical TOML.
public struct ProfileSource {
    /// The engine configuration, exactly as the binary holds it.
    public var config: sp_config
    /// What `detect` saw on the target host (never filled in from the compiling machine).
    public var host: HostFacts

    /// A source from its parts.
    public init(config: sp_config, host: HostFacts) {
        self.config = config
        self.host = host
    }

    static let numaPolicies = ["local", "interleave", "none"]
    static let backends = ["auto", "io_uring", "epoll"]
    static let policies = ["strict", "weighted"]
    static let onFull = ["reject", "drop", "block"]

    /// Parses TOML with the strict schema: an unknown key is an error with a "did you mean"
    /// suggestion, a wrong type names the key; ranges are left to the loader's checks, which
    /// ``encode(name:)`` runs. `name` stands for the file in messages.
    public static func parse(toml text: String, name: String) throws(SpindleError) -> ProfileSource {
        try parse(toml: Array(text.utf8), name: name)
    }

    /// Parses TOML source bytes as the text form does; bytes that are not
    /// UTF-8 are refused with their line and column (a file is read this way, never repaired).
    public static func parse(toml bytes: [UInt8], name: String) throws(SpindleError) -> ProfileSource {
        let root: TOMLTable
        do { root = try TOMLParser.parse(bytes) } catch {
            let fix = bytes.count > TOMLParser.maxBytes ? "check the path (a profile source is a few kilobytes)" : "correct the TOML syntax"
            throw SpindleError(
                .invalidProfile,
                "\(name): line \(error.line), column \(error.column): \(TOMLTableReader.oneLine(error.message, limit: 200)); fix: \(fix)")
        }
        let top = TOMLTableReader(table: root, section: "(top level)", prefix: "", file: name)
        try top.rejectUnknownKeys(TOMLSchema.topLevel)
        var cfg = sp_config()
        guard let engineValue = root["engine"] else {
            throw top.missing("engine", rule: "a profile has an [engine] table", example: "{ cpus = [0, 1] }")
        }
        guard let engine = engineValue.table else {
            throw top.typeError("engine", engineValue, "a table", example: "{ cpus = [0, 1] }")
        }
        try parseEngine(TOMLTableReader(table: engine, section: "[engine]", prefix: "engine.", file: name), &cfg)
        guard let lanesValue = root["lanes"] else {
            throw top.missing("lanes", rule: "at least one [[lanes]] table", example: "[{ name = \"normal\", policy = \"weighted\", weight = 1 }]")
        }
        guard let lanes = lanesValue.array else {
            throw top.typeError("lanes", lanesValue, "an array of tables ([[lanes]])", example: "[{ name = \"normal\", policy = \"weighted\", weight = 1 }]")
        }
        guard lanes.count >= 1, lanes.count <= Int(SP_MAX_LANES) else {
            throw top.error("lanes", "\(lanes.count) lanes", rule: "1...8 lanes", fix: "define between 1 and 8 [[lanes]] tables")
        }
        cfg.lane_count = UInt32(lanes.count)
        for (i, v) in lanes.enumerated() {
            guard let t = v.table else {
                throw top.error("lanes[\(i)]", TOMLTableReader.show(v), rule: "a table ([[lanes]])", fix: "write each lane as a [[lanes]] table")
            }
            let lane = try parseLane(TOMLTableReader(table: t, section: "[[lanes]]", prefix: "lanes[\(i)].", file: name), index: i)
            withUnsafeMutableBytes(of: &cfg.lanes) { buf in
                buf.storeBytes(of: lane, toByteOffset: i * MemoryLayout<sp_lane_config>.stride, as: sp_lane_config.self)
            }
        }
        var host = HostFacts()
        if let hv = root["host"] {
            guard let ht = hv.table else { throw top.typeError("host", hv, "a table", example: "{ cpu_model = \"…\" }") }
            host = try parseHost(TOMLTableReader(table: ht, section: "[host]", prefix: "host.", file: name))
        }
        return ProfileSource(config: cfg, host: host)
    }

    static func parseEngine(_ r: TOMLTableReader, _ cfg: inout sp_config) throws(SpindleError) {
        try r.rejectUnknownKeys(TOMLSchema.engine)
        guard let cpus = try r.intArray("cpus", example: "[0, 1]") else {
            throw r.missing("cpus", rule: "the CPUs the workers run on (worker i on the i-th)", example: "[0, 1]")
        }
        guard !cpus.isEmpty, cpus.count <= Int(SP_MAX_WORKERS) else {
            throw r.error("cpus", "\(cpus.count) CPUs", rule: "1...256 CPUs", fix: "list between 1 and 256 CPUs")
        }
        for (i, cpu) in cpus.enumerated() {
            guard cpu < Int(SP_MAX_CPUS) else {
                throw r.error("cpus[\(i)]", "\(cpu)", rule: "a CPU number below 4096", fix: "use a CPU the target host has")
            }
            if i > 0, cpu <= cpus[i - 1] {
                let fixed = Array(Set(cpus)).sorted().map(String.init).joined(separator: ", ")
                throw r.error(
                    "cpus", "[\(cpus.map(String.init).joined(separator: ", "))]",
                    rule: "ascending, distinct CPU numbers (worker i runs on the i-th)", fix: "write cpus = [\(fixed)]")
            }
        }
        cfg.worker_count = UInt32(cpus.count)
        withUnsafeMutableBytes(of: &cfg.cpus) { buf in
            for (i, cpu) in cpus.enumerated() { buf.storeBytes(of: UInt16(cpu), toByteOffset: i * 2, as: UInt16.self) }
        }
        cfg.numa_policy = UInt32(numaPolicies.firstIndex(of: try r.choice("numa_policy", numaPolicies) ?? "local")!)
        cfg.backend = UInt32(backends.firstIndex(of: try r.choice("backend", backends) ?? "auto")!)
        cfg.spin_ns = UInt64(try r.int("spin_us", example: "50", max: 1 << 40) ?? 50) * 1000
        cfg.uring_entries = UInt32(try r.int("uring_entries", example: "256", max: Int(UInt32.max)) ?? 256)
        let deferTaskrun = try r.bool("uring_defer_taskrun") ?? true
        let coopTaskrun = try r.bool("uring_coop_taskrun") ?? true
        cfg.uring_flags = (deferTaskrun ? UInt32(SP_URING_WANT_DEFER_TASKRUN) : 0) | (coopTaskrun ? UInt32(SP_URING_WANT_COOP_TASKRUN) : 0)
        cfg.eager_ring_bytes = UInt64(try r.int("eager_ring_bytes", example: "67108864") ?? 64 << 20)
        cfg.slow_handler_ns = UInt64(try r.int("slow_batch_us", example: "10000", max: 1 << 40) ?? 10_000) * 1000
    }

    /// 1...31 bytes of ASCII letters, digits, '_' or '-' (the loader's rule for lane names).
    static func isLaneName(_ name: String) -> Bool {
        let utf8 = name.utf8
        return !utf8.isEmpty && utf8.count < Int(SP_LANE_NAME_MAX)
            && utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x5f || $0 == 0x2d }
    }

    static func parseLane(_ reader: TOMLTableReader, index: Int) throws(SpindleError) -> sp_lane_config {
        var r = reader
        // A lane is named by its name in every message once it has a valid one (an unknown key
        // included); by its index only when the name is missing or invalid.
        if let name = r.table["name"]?.string, isLaneName(name) {
            r.prefix = "lanes.\(name)."
        }
        try r.rejectUnknownKeys(TOMLSchema.lane)
        guard let name = try r.string("name", example: "\"normal\"") else {
            throw r.missing("name", rule: "every lane has a name", example: "\"normal\"")
        }
        guard isLaneName(name) else {
            throw r.error("name", "\"\(name)\"", rule: "1...31 letters, digits, '_' or '-'", fix: "give the lane a short name like \"bulk\"")
        }
        let utf8 = Array(name.utf8)
        var lane = sp_lane_config()
        withUnsafeMutableBytes(of: &lane.name) { buf in for (i, b) in utf8.enumerated() { buf[i] = b } }
        guard let policy = try r.choice("policy", policies) else {
            throw r.missing("policy", rule: "every lane is \"strict\" or \"weighted\"", example: "\"weighted\"")
        }
        if policy == "strict" {
            lane.policy = SP_POLICY_STRICT.rawValue
            if let w = r.table["weight"] {
                throw r.error("weight", TOMLTableReader.show(w), rule: "a strict lane has no weight", fix: "remove weight or set policy = \"weighted\"")
            }
            guard let budget = try r.int("budget", example: "64", max: Int(UInt32.max)) else {
                throw r.missing("budget", rule: "a strict lane has a budget (events per round)", example: "64")
            }
            lane.budget = UInt32(budget)
        } else {
            lane.policy = SP_POLICY_WEIGHTED.rawValue
            if let b = r.table["budget"] {
                throw r.error("budget", TOMLTableReader.show(b), rule: "a weighted lane has no budget", fix: "remove budget or set policy = \"strict\"")
            }
            guard let weight = try r.int("weight", example: "1", max: Int(UInt32.max)) else {
                throw r.missing("weight", rule: "a weighted lane has a weight", example: "1")
            }
            lane.weight = UInt32(weight)
        }
        lane.capacity = UInt32(try r.int("capacity", example: "4096", max: Int(UInt32.max)) ?? 4096)
        lane.on_full = UInt32(onFull.firstIndex(of: try r.choice("on_full", onFull) ?? "reject")!)
        lane.max_batch = UInt32(try r.int("max_batch", example: "32", max: Int(UInt32.max)) ?? 32)
        lane.block_timeout_ns = UInt64(try r.int("block_timeout_us", example: "1000", max: 1 << 40) ?? 0) * 1000
        return lane
    }

    static func parseHost(_ r: TOMLTableReader) throws(SpindleError) -> HostFacts {
        try r.rejectUnknownKeys(TOMLSchema.host)
        var h = HostFacts()
        for key in ["cpu_model", "kernel"] {
            guard let s = try r.string(key, example: "\"…\"") else { continue }
            guard s.utf8.count < Int(SP_HOST_STRING_MAX), s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
                throw r.error(key, "\"\(s)\"", rule: "at most 63 bytes of printable ASCII", fix: "copy the value `detect` wrote")
            }
            if key == "cpu_model" { h.cpuModel = s } else { h.kernel = s }
        }
        if let lists = try r.array("numa_node_cpus", example: "[\"0-3\", \"4-7\"]") {
            for (i, v) in lists.enumerated() {
                guard let text = v.string, let cpus = CPUList.parse(text), !cpus.isEmpty else {
                    throw r.error("numa_node_cpus[\(i)]", TOMLTableReader.show(v), rule: "a non-empty CPU list string like \"0-3,8\"", fix: "copy /sys/devices/system/node/node\(i)/cpulist")
                }
                h.nodeCPUs.append(cpus)
            }
            var seen = Set<Int>()
            for (i, cpus) in h.nodeCPUs.enumerated() {
                for cpu in cpus where !seen.insert(cpu).inserted {
                    throw r.error("numa_node_cpus[\(i)]", "\"\(CPUList.format(cpus))\"", rule: "each CPU on one node", fix: "remove CPU \(cpu) from all but one node")
                }
            }
            guard let rows = try r.array("numa_distances", example: "[[10, 21], [21, 10]]") else {
                throw r.missing("numa_distances", rule: "numa_node_cpus comes with a distance row per node", example: "[[10]]")
            }
            guard rows.count == h.nodeCPUs.count else {
                throw r.error("numa_distances", "\(rows.count) rows", rule: "one row per node (\(h.nodeCPUs.count))", fix: "copy /sys/devices/system/node/node*/distance")
            }
            for (i, row) in rows.enumerated() {
                guard let a = row.array, a.count == h.nodeCPUs.count, a.allSatisfy({ $0.int != nil }) else {
                    throw r.error("numa_distances[\(i)]", TOMLTableReader.show(row), rule: "\(h.nodeCPUs.count) integers", fix: "copy /sys/devices/system/node/node\(i)/distance")
                }
                h.distances.append(a.map { $0.int ?? 0 })
            }
        } else if let d = r.table["numa_distances"] {
            throw r.error("numa_distances", TOMLTableReader.show(d), rule: "only with numa_node_cpus", fix: "add numa_node_cpus or remove numa_distances")
        }
        if let names = try r.array("uring_features", example: "[\"single_issuer\", \"msg_ring\"]") {
            let known = HostFacts.UringFeatures.names.map(\.0)
            for (i, v) in names.enumerated() {
                guard let s = v.string, let f = HostFacts.UringFeatures.names.first(where: { $0.0 == s }) else {
                    let hint = v.string.flatMap { TOMLSchema.suggestion(for: $0, among: known) }.map { "did you mean \"\($0)\"?" }
                    throw r.error("uring_features[\(i)]", TOMLTableReader.show(v), rule: "one of \(known.joined(separator: ", "))", fix: hint ?? "remove it")
                }
                h.uringFeatures.insert(f.1)
            }
        }
        h.wakeNanoseconds = try r.int("wake_ns", example: "20000", max: Int(UInt32.max)) ?? 0
        h.cacheLine = try r.int("cache_line", example: "64", max: Int(UInt32.max)) ?? 0
        h.l2Bytes = try r.int("l2_bytes", example: "1048576", max: Int(UInt32.max)) ?? 0
        h.l3Bytes = try r.int("l3_bytes", example: "33554432", max: Int(UInt32.max)) ?? 0
        return h
    }
}
