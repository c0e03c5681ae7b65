import Foundation

/// The text table `spindle bench` prints: scenario × system with events/s (median, min–max over
/// the rounds), latency percentiles, mallocs per event and the ratio to Spindle.
public struct TableReport: Sendable {
    /// The report rendered.
    public let report: Report

    /// A table of `report`.
    public init(_ report: Report) { self.report = report }

    static let headers = [
        "scenario", "system", "events/s median (min–max)", "p50", "p99", "p99.9", "max", "mallocs/ev", "vs spindle",
    ]

    /// The table's cells, one array per row, headers first.
    public var cells: [[String]] {
        var out = [TableReport.headers]
        for row in report.rows {
            let t = row.throughput
            var ratio = "—"
            if let r = report.ratioToSpindle(row) {
                ratio =
                    row.system == .spindle
                    ? "1" : (row.scenario.isLatency ? "p99 ×\(TableReport.ratio(r))" : "×\(TableReport.ratio(r))")
            }
            var system = row.system.rawValue
            if let d = row.meanDepth { system += " (D≈\(Int(d.rounded())))" }
            out.append([
                row.scenario.rawValue, system,
                "\(TableReport.rate(t.median)) (\(TableReport.rate(t.min))–\(TableReport.rate(t.max)))",
                row.percentile(50).map { TableReport.duration($0.median) } ?? "—",
                row.percentile(99).map { TableReport.duration($0.median) } ?? "—",
                row.percentile(99.9).map { TableReport.duration($0.median) } ?? "—",
                row.maxLatency.map { TableReport.duration(Double($0)) } ?? "—",
                row.mallocsPerEvent.map { TableReport.mallocs($0) } ?? "—",
                ratio,
            ])
        }
        return out
    }

    /// Fixed-width text, columns separated by two spaces; a blank line between scenarios.
    public func render() -> String {
        let cells = self.cells
        var widths = [Int](repeating: 0, count: TableReport.headers.count)
        for r in cells { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var lines: [String] = []
        var last = ""
        for (n, r) in cells.enumerated() {
            if n > 1 && r[0] != last { lines.append("") }
            last = r[0]
            let line = r.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i >= 2 ? pad + c : c + pad
            }.joined(separator: "  ")
            lines.append(line.trimmingTrailingSpaces())
            if n == 0 { lines.append(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A Markdown table of the same cells (for docs/benchmarks.md).
    public func markdown() -> String {
        let cells = self.cells
        var out = "| " + cells[0].joined(separator: " | ") + " |\n"
        out += "|" + cells[0].enumerated().map { i, _ in i >= 2 ? " ---: " : " --- " }.joined(separator: "|") + "|\n"
        for r in cells.dropFirst() { out += "| " + r.joined(separator: " | ") + " |\n" }
        return out
    }

    /// "61.5 M", "770 k".
    static func rate(_ x: Double) -> String {
        if x >= 1e9 { return String(format: "%.2f G", x / 1e9) }
        if x >= 1e6 { return String(format: x >= 1e8 ? "%.0f M" : "%.1f M", x / 1e6) }
        if x >= 1e3 { return String(format: "%.0f k", x / 1e3) }
        return String(format: "%.0f", x)
    }

    /// "850 ns", "1.23 µs", "42.1 ms".
    public static func duration(_ ns: Double) -> String {
        if ns < 1000 { return String(format: "%.0f ns", ns) }
        if ns < 1e6 { return String(format: ns < 1e4 ? "%.2f µs" : (ns < 1e5 ? "%.1f µs" : "%.0f µs"), ns / 1e3) }
        if ns < 1e9 { return String(format: ns < 1e7 ? "%.2f ms" : "%.1f ms", ns / 1e6) }
        return String(format: "%.2f s", ns / 1e9)
    }

    static func ratio(_ r: Double) -> String {
        if r >= 100 { return String(format: "%.0f", r) }
        if r >= 10 { return String(format: "%.1f", r) }
        return String(format: "%.2f", r)
    }

    static func mallocs(_ m: Double) -> String {
        if m == 0 { return "0" }
        if m < 0.001 { return String(format: "%.1e", m) }
        return String(format: "%.3f", m)
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
