import Spindle

/// Differences between two profiles, key by key (`spindle profile diff A B`).
public enum ProfileDiff {
    /// One key whose value differs (`nil`: absent on that side).
    public struct Change: Sendable, Hashable, CustomStringConvertible {
        /// The TOML key path, e.g. `lanes.bulk.weight`.
        public var key: String
        /// Value in the first profile.
        public var old: String?
        /// Value in the second profile.
        public var new: String?
        /// "lanes.bulk.weight: 1 -> 2"
        public var description: String { "\(key): \(old ?? "(absent)") -> \(new ?? "(absent)")" }
    }

    /// Key-by-key differences, in the first profile's key order, then keys only in the second.
    public static func changes(_ a: ProfileSource, _ b: ProfileSource) -> [Change] {
        let left = a.keyValues, right = b.keyValues
        let rmap = Dictionary(right.map { ($0.key, $0.value) }, uniquingKeysWith: { x, _ in x })
        let lkeys = Set(left.map(\.key))
        var out: [Change] = []
        for (k, v) in left where rmap[k] != v { out.append(Change(key: k, old: v, new: rmap[k])) }
        for (k, v) in right where !lkeys.contains(k) { out.append(Change(key: k, old: nil, new: v)) }
        return out
    }

    /// Loads either a compiled profile or a TOML source (by content: compiled files start with
    /// the magic `SPNDLPRF`).
    public static func load(_ path: String) throws(SpindleError) -> ProfileSource {
        let bytes = try ProfileFiles.read(path)
        if bytes.starts(with: Array("SPNDLPRF".utf8)) { return try ProfileSource.decode(bytes, name: path).0 }
        return try ProfileSource.parse(toml: bytes, name: path)
    }
}
