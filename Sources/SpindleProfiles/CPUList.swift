/// Kernel-style CPU lists ("0-3,8,10-11"): how sysfs writes CPU sets and how the TOML source
/// writes a NUMA node's CPUs.
public enum CPUList {
    /// Parses a CPU list; `nil` on bad syntax, a descending range or a CPU of 4096 or more.
    public static func parse(_ text: String) -> [Int]? {
        var result: [Int] = []
        let trimmed = text.trimmingCharacters(in: " \n\t")
        if trimmed.isEmpty { return [] }
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                let a = Int(bounds[0].trimmingCharacters(in: " ")),
                let b = Int(bounds.last!.trimmingCharacters(in: " ")), a >= 0, a <= b, b < 4096
            else { return nil }
            result.append(contentsOf: a...b)
        }
        return result
    }

    /// Formats CPUs as a canonical list: ascending, ranges merged ("0-3,8").
    public static func format(_ cpus: some Sequence<Int>) -> String {
        let sorted = Array(Set(cpus)).sorted()
        var parts: [String] = []
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count, sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(j == i ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s.removeFirst() }
        while let l = s.last, chars.contains(l) { s.removeLast() }
        return String(s)
    }
}
