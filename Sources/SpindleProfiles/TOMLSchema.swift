import Spindle

/// The documented keys of the TOML source, and strict typed reads that name the key on error.
enum TOMLSchema {
    static let topLevel = ["engine", "lanes", "host"]
    static let engine = [
        "cpus", "numa_policy", "backend", "spin_us", "uring_entries", "uring_defer_taskrun", "uring_coop_taskrun",
        "eager_ring_bytes", "slow_batch_us",
    ]
    static let lane = ["name", "policy", "budget", "weight", "capacity", "on_full", "max_batch", "block_timeout_us"]
    static let host = [
        "cpu_model", "kernel", "numa_node_cpus", "numa_distances", "uring_features", "wake_ns", "cache_line",
        "l2_bytes", "l3_bytes",
    ]

    /// The closest documented key, when one is close enough to be what was meant.
    static func suggestion(for key: String, among keys: [String]) -> String? {
        let best = keys.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (candidate, d) = best else { return nil }
        let limit = max(2, key.count / 3)
        if d <= limit || candidate.hasPrefix(key) || key.hasPrefix(candidate) { return candidate }
        return nil
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
}

/// Reads one TOML table strictly: every key must be documented; each read names its key.
struct TOMLTableReader {
    let table: TOMLTable
    /// "[engine]", "[[lanes]]", "[host]"
    let section: String
    /// Key prefix in messages: "engine.", "lanes.high.", "host."
    var prefix: String
    let file: String

    func error(_ key: String, _ value: String, rule: String, fix: String) -> SpindleError {
        SpindleError(
            .invalidProfile,
            "\(file): \(section) \(prefix)\(Self.oneLine(key, limit: 64)) = \(Self.oneLine(value, limit: 120)): rule \(rule); fix: \(fix)")
    }

    /// What came from the file, on one line and short: control characters escaped, runs of
    /// whitespace (a multi-line array's layout) made one space, cut at `limit` characters. A
    /// refusal is one line whatever the input (found by the TOML fuzzer: an unknown key holding a
    /// multi-line array was quoted with its newlines).
    static func oneLine(_ s: String, limit: Int) -> String {
        var out = ""
        var space = false
        for u in s.unicodeScalars {
            if u == " " || u == "\n" || u == "\r" || u == "\t" {
                space = true
                continue
            }
            if space && !out.isEmpty { out += " " }
            space = false
            if u.value < 0x20 || u.value == 0x7F || (u.value >= 0x80 && u.value < 0xA0) || u == "\u{2028}" || u == "\u{2029}" {
                out += "\\u{" + String(u.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
            if out.count > limit { return String(out.prefix(limit)) + "…" }
        }
        return out
    }

    func rejectUnknownKeys(_ documented: [String]) throws(SpindleError) {
        for key in table.keys.sorted() where !documented.contains(key) {
            let value = TOMLTableReader.show(table[key]!)
            if let s = TOMLSchema.suggestion(for: key, among: documented) {
                throw error(key, value, rule: "a documented key of \(section)", fix: "did you mean `\(s)`?")
            }
            throw error(
                key, value, rule: "a documented key of \(section)",
                fix: "remove it (keys: \(documented.joined(separator: ", ")))")
        }
    }

    /// A value from the file for a message: as written in TOML, a table as "(a table)".
    static func show(_ v: TOMLValue) -> String {
        if case .table = v { return "(a table)" }
        return v.rendered
    }

    func typeError(_ key: String, _ v: TOMLValue, _ want: String, example: String) -> SpindleError {
        error(key, TOMLTableReader.show(v), rule: "\(want), not \(v.typeName)", fix: "write \(key) = \(example)")
    }

    func missing(_ key: String, rule: String, example: String) -> SpindleError {
        error(key, "(missing)", rule: rule, fix: "add \(key) = \(example)")
    }

    func int(_ key: String, example: String, max: Int = Int.max) throws(SpindleError) -> Int? {
        guard let v = table[key] else { return nil }
        guard let i = v.int else { throw typeError(key, v, "an integer", example: example) }
        guard i >= 0 else { throw error(key, "\(i)", rule: "a non-negative integer", fix: "write \(key) = \(example)") }
        guard i <= max else { throw error(key, "\(i)", rule: "at most \(max)", fix: "write \(key) = \(example)") }
        return i
    }

    func bool(_ key: String) throws(SpindleError) -> Bool? {
        guard let v = table[key] else { return nil }
        guard let b = v.bool else { throw typeError(key, v, "true or false", example: "true") }
        return b
    }

    func string(_ key: String, example: String) throws(SpindleError) -> String? {
        guard let v = table[key] else { return nil }
        guard let s = v.string else { throw typeError(key, v, "a string", example: example) }
        return s
    }

    func choice(_ key: String, _ options: [String]) throws(SpindleError) -> String? {
        guard let s = try string(key, example: "\"\(options[0])\"") else { return nil }
        guard options.contains(s) else {
            let hint = TOMLSchema.suggestion(for: s, among: options).map { "did you mean \"\($0)\"?" }
            throw error(
                key, "\"\(s)\"", rule: "one of \(options.map { "\"\($0)\"" }.joined(separator: ", "))",
                fix: hint ?? "write \(key) = \"\(options[0])\"")
        }
        return s
    }

    func array(_ key: String, example: String) throws(SpindleError) -> [TOMLValue]? {
        guard let v = table[key] else { return nil }
        guard let a = v.array else { throw typeError(key, v, "an array", example: example) }
        return a
    }

    func intArray(_ key: String, example: String) throws(SpindleError) -> [Int]? {
        guard let a = try array(key, example: example) else { return nil }
        var out: [Int] = []
        for (i, v) in a.enumerated() {
            guard let n = v.int, n >= 0 else {
                throw error(
                    "\(key)[\(i)]", TOMLTableReader.show(v), rule: "a non-negative integer",
                    fix: "write \(key) = \(example)")
            }
            out.append(n)
        }
        return out
    }
}
