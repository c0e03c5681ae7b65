import CSpindle
import Spindle

extension ProfileSource {
    /// Every documented key with its canonical value, in file order (`engine.spin_us`,
    /// `lanes.high.weight`, `host.kernel`, …). ``render(comments:header:)`` writes these lines
    /// and ``ProfileDiff`` compares them.
    public var keyValues: [(key: String, value: String)] {
        var out: [(String, String)] = []
        let c = config
        out.append(("engine.cpus", "[" + cpus.map(String.init).joined(separator: ", ") + "]"))
        out.append(("engine.numa_policy", Self.quote(Self.numaPolicies[safe: c.numa_policy])))
        out.append(("engine.backend", Self.quote(Self.backends[safe: c.backend])))
        out.append(("engine.spin_us", "\(c.spin_ns / 1000)"))
        out.append(("engine.uring_entries", "\(c.uring_entries)"))
        out.append(("engine.uring_defer_taskrun", "\(c.uring_flags & UInt32(SP_URING_WANT_DEFER_TASKRUN) != 0)"))
        out.append(("engine.uring_coop_taskrun", "\(c.uring_flags & UInt32(SP_URING_WANT_COOP_TASKRUN) != 0)"))
        out.append(("engine.eager_ring_bytes", "\(c.eager_ring_bytes)"))
        out.append(("engine.slow_batch_us", "\(c.slow_handler_ns / 1000)"))
        for lane in lanes {
            let p = "lanes.\(Self.laneName(lane))."
            out.append((p + "name", Self.quote(Self.laneName(lane))))
            let strict = lane.policy == SP_POLICY_STRICT.rawValue
            out.append((p + "policy", Self.quote(strict ? "strict" : "weighted")))
            out.append(strict ? (p + "budget", "\(lane.budget)") : (p + "weight", "\(lane.weight)"))
            out.append((p + "capacity", "\(lane.capacity)"))
            out.append((p + "on_full", Self.quote(Self.onFull[safe: lane.on_full])))
            out.append((p + "max_batch", "\(lane.max_batch)"))
            if lane.on_full == SP_ON_FULL_BLOCK.rawValue {
                out.append((p + "block_timeout_us", "\(lane.block_timeout_ns / 1000)"))
            }
        }
        // Any recorded fact writes the table (found by the TOML fuzzer: a [host] with only wake_ns
        // and cache sizes was dropped by inspect, so compiling its output changed the bytes).
        if host != HostFacts() {
            let h = host
            out.append(("host.cpu_model", Self.quote(h.cpuModel)))
            out.append(("host.kernel", Self.quote(h.kernel)))
            if h.isKnown {
                out.append(("host.numa_node_cpus", "[" + h.nodeCPUs.map { Self.quote(CPUList.format($0)) }.joined(separator: ", ") + "]"))
                out.append(("host.numa_distances", "[" + h.distances.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: ", ") + "]"))
            }
            let features = HostFacts.UringFeatures.names.filter { h.uringFeatures.contains($0.1) }.map { Self.quote($0.0) }
            out.append(("host.uring_features", "[" + features.joined(separator: ", ") + "]"))
            out.append(("host.wake_ns", "\(h.wakeNanoseconds)"))
            out.append(("host.cache_line", "\(h.cacheLine)"))
            out.append(("host.l2_bytes", "\(h.l2Bytes)"))
            out.append(("host.l3_bytes", "\(h.l3Bytes)"))
        }
        return out
    }

    /// Canonical TOML: documented keys only, every value explicit. `comments` maps a key (as in
    /// ``keyValues``) to lines written above it; `header` lines open the file.
    public func render(comments: [String: [String]] = [:], header: [String] = []) -> String {
        var text = header.map { "# \($0)\n" }.joined()
        var table = ""
        for (key, value) in keyValues {
            let parts = key.split(separator: ".", maxSplits: 2).map(String.init)
            let tableName = parts[0] == "lanes" ? "lanes.\(parts[1])" : parts[0]
            if tableName != table {
                table = tableName
                if let c = comments[parts[0] == "lanes" ? "lanes.\(parts[1])" : parts[0]] {
                    text += "\n" + c.map { "# \($0)\n" }.joined()
                } else {
                    text += "\n"
                }
                text += parts[0] == "lanes" ? "[[lanes]]\n" : "[\(parts[0])]\n"
            }
            for line in comments[key] ?? [] { text += "# \(line)\n" }
            text += "\(parts.last!) = \(value)\n"
        }
        return text
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }
}

extension Array where Element == String {
    subscript(safe i: UInt32) -> String { Int(i) < count ? self[Int(i)] : "\(i)" }
}
