import Foundation

/// A JSON value with ordered object keys, so the report's layout is stable and diffable.
public indirect enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` / `false`.
    case bool(Bool)
    /// An integer.
    case int(Int)
    /// A number (non-finite values are written as `null`).
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, keys in the given order.
    case object([(String, JSONValue)])

    /// Equality (objects compare keys in order).
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Compact JSON text, or indented with `indent` spaces per level.
    public func serialized(indent: Int = 2) -> String {
        var out = ""
        write(to: &out, indent: indent, level: 0)
        return out
    }

    private func write(to out: inout String, indent: Int, level: Int) {
        let nl = indent > 0 ? "\n" : ""
        let pad = String(repeating: " ", count: indent * (level + 1))
        let endPad = String(repeating: " ", count: indent * level)
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if !d.isFinite {
                out += "null"
            } else if d == d.rounded(), abs(d) < 1e15 {
                out += String(Int(d))
            } else {
                out += "\(d)"
            }
        case .string(let s): out += JSONValue.quote(s)
        case .array(let a):
            if a.isEmpty {
                out += "[]"
                return
            }
            // Arrays of scalars stay on one line.
            let scalar = a.allSatisfy {
                if case .array = $0 { return false }
                if case .object = $0 { return false }
                return true
            }
            if scalar {
                out += "[" + a.map { $0.serialized(indent: 0) }.joined(separator: ", ") + "]"
                return
            }
            out += "[" + nl
            for (i, v) in a.enumerated() {
                out += pad
                v.write(to: &out, indent: indent, level: level + 1)
                out += (i < a.count - 1 ? "," : "") + nl
            }
            out += endPad + "]"
        case .object(let o):
            if o.isEmpty {
                out += "{}"
                return
            }
            out += "{" + nl
            for (i, (k, v)) in o.enumerated() {
                out += pad + JSONValue.quote(k) + (indent > 0 ? ": " : ":")
                v.write(to: &out, indent: indent, level: level + 1)
                out += (i < o.count - 1 ? "," : "") + nl
            }
            out += endPad + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

extension Row {
    /// The row as the JSON report writes it: every key always present, `null` where it does not apply.
    public var json: JSONValue {
        let t = medianTrial
        func ns(_ p: Double) -> JSONValue { percentile(p).map { .int(Int($0.median)) } ?? .null }
        return .object([
            ("scenario", .string(scenario.rawValue)),
            ("system", .string(system.rawValue)),
            ("events", t.map { .int($0.events) } ?? .null),
            ("seconds", t.map { .double($0.seconds) } ?? .null),
            ("events_per_s", trials.isEmpty ? .null : .double(throughput.median.rounded())),
            ("p50_ns", ns(50)),
            ("p99_ns", ns(99)),
            ("p999_ns", ns(99.9)),
            ("max_ns", maxLatency.map { .int(Int($0)) } ?? .null),
            ("mallocs_per_event", mallocsPerEvent.map { .double($0) } ?? .null),
            ("backlog", backlog.map { .int($0) } ?? .null),
        ])
    }

    /// The keys of ``json``, in order (what consumers of the report may rely on).
    public static let jsonKeys = [
        "scenario", "system", "events", "seconds", "events_per_s", "p50_ns", "p99_ns",
        "p999_ns", "max_ns", "mallocs_per_event", "backlog",
    ]
}

extension Report {
    /// `{"machine": {...}, "config": {...}, "results": [ROW, ...]}`.
    public var json: JSONValue {
        .object([("machine", .object(machine)), ("config", .object(config)), ("results", .array(rows.map(\.json)))])
    }

    /// Writes ``json`` to `path`.
    public func writeJSON(to path: String) throws {
        try (json.serialized() + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
