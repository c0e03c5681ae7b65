import Foundation

/// The `--plot` figure: latency percentile curves of the wake, priority and I/O scenarios for every
/// system, log-log (x: percentile as 1/(1−p), y: nanoseconds), one labelled panel per scenario.
/// Written by hand: no plotting dependency.
public struct SVGPlot: Sendable {
    /// The report plotted.
    public let report: Report

    /// A plot of `report`'s latency rows.
    public init(_ report: Report) { self.report = report }

    static let palette = [
        "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
    ]
    /// One colour per system in every panel (Spindle red), so curves can be followed across panels.
    static let systemOrder: [System] = [
        .spindle, .rawMsgring, .rawEventfd, .rawMPSC, .mutexQueue, .dispatch, .asyncStream,
        .nioEventLoop, .spindleBatch, .rawCRing,
    ]
    /// The I/O scenarios' peers: colours distinct from Spindle's within their panels.
    static let ioColors: [System: String] = [
        .rawTimerfd: "#2ca02c", .rawUringTimeout: "#1f77b4", .rawUring: "#1f77b4", .rawEpoll: "#ff7f0e",
    ]
    static func color(_ system: System) -> String {
        if let c = ioColors[system] { return c }
        let i = systemOrder.firstIndex(of: system) ?? system.rawValue.unicodeScalars.reduce(0) { $0 &+ Int($1.value) }
        return palette[i % palette.count]
    }
    static let width = 960.0, panelHeight = 340.0, left = 80.0, right = 250.0, top = 56.0, bottom = 50.0
    static let xDecades = 5.0  // 0 % … 99.999 %

    /// One panel per plotted scenario present; `priority-baseline` is drawn in the
    /// `priority-isolation` panel (dashed) so the flooded and unflooded curves can be compared, and
    /// `io-priority-unloaded` in the `io-priority` panel.
    var panels: [(title: String, rows: [Row])] {
        var out: [(String, [Row])] = []
        for s in [Scenario.wakeWorker, .wakeForeign] {
            let rows = report.rows.filter { $0.scenario == s && $0.hasLatency }
            if !rows.isEmpty { out.append(("\(s.rawValue): \(s.summary)", rows)) }
        }
        let prio = report.rows.filter {
            ($0.scenario == .priorityIsolation || $0.scenario == .priorityBaseline) && $0.hasLatency
        }
        if !prio.isEmpty {
            let d =
                report.rows.first { $0.scenario == .priorityIsolation }?.backlog.map { " at backlog D = \($0)" } ?? ""
            out.append(
                ("priority-isolation: lane-0 probe latency under a lane-3 flood\(d) (dashed: unflooded baseline)", prio)
            )
        }
        for s in [Scenario.timer, .echo1, .echo64] {
            let rows = report.rows.filter { $0.scenario == s && $0.hasLatency }
            if !rows.isEmpty { out.append(("\(s.rawValue): \(s.summary)", rows)) }
        }
        let io = report.rows.filter { ($0.scenario == .ioPriority || $0.scenario == .ioPriorityUnloaded) && $0.hasLatency }
        if !io.isEmpty {
            out.append(
                ("io-priority: control ping round trip, strict-lane listener, 64 connections flooding the bulk lane (dashed: unloaded)", io))
        }
        return out
    }

    /// The SVG document.
    public func render() -> String {
        let panels = self.panels
        let h = Double(max(1, panels.count)) * SVGPlot.panelHeight + 40
        var s = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(SVGPlot.width))" height="\(Int(h))" viewBox="0 0 \(Int(SVGPlot.width)) \(Int(h))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect x="0" y="0" width="\(Int(SVGPlot.width))" height="\(Int(h))" fill="white"/>
            <text x="\(Int(SVGPlot.width / 2))" y="24" text-anchor="middle" font-size="16" font-weight="bold">spindle bench — latency percentiles (lower is better)</text>

            """
        if panels.isEmpty {
            s +=
                "<text x=\"40\" y=\"70\">no latency scenario in this run (run wake-worker, wake-foreign, priority-isolation, timer, echo or io-priority)</text>\n"
        }
        for (i, p) in panels.enumerated() {
            s += panel(p.title, p.rows, y0: 40 + Double(i) * SVGPlot.panelHeight)
        }
        return s + "</svg>\n"
    }

    func panel(_ title: String, _ rows: [Row], y0: Double) -> String {
        let x0 = SVGPlot.left
        let pw = SVGPlot.width - SVGPlot.left - SVGPlot.right
        let py = y0 + SVGPlot.top - 20
        let ph = SVGPlot.panelHeight - SVGPlot.top - SVGPlot.bottom + 20
        let curves = rows.map { ($0, $0.merged.curve().filter { $0.percentile < 100 }) }
        let values = curves.flatMap { $0.1.map { Double(max($0.nanoseconds, 1)) } }
        let lo = floor(log10(values.min() ?? 100))
        let hi = max(lo + 1, ceil(log10(values.max() ?? 1000)))
        func x(_ p: Double) -> Double {
            x0 + min(SVGPlot.xDecades, log10(1 / max(1e-9, 1 - p / 100))) / SVGPlot.xDecades * pw
        }
        func y(_ ns: Double) -> Double { py + ph - (log10(max(ns, 1)) - lo) / (hi - lo) * ph }
        var s =
            "<g>\n<text x=\"\(fmt(x0))\" y=\"\(fmt(y0 + 22))\" font-size=\"13\" font-weight=\"bold\">\(SVGPlot.escape(title))</text>\n"
        s +=
            "<rect x=\"\(fmt(x0))\" y=\"\(fmt(py))\" width=\"\(fmt(pw))\" height=\"\(fmt(ph))\" fill=\"none\" stroke=\"#444\"/>\n"
        // y grid: decades of nanoseconds
        var d = lo
        while d <= hi {
            let yy = y(pow(10, d))
            s +=
                "<line x1=\"\(fmt(x0))\" y1=\"\(fmt(yy))\" x2=\"\(fmt(x0 + pw))\" y2=\"\(fmt(yy))\" stroke=\"#ddd\"/>\n"
            s +=
                "<text x=\"\(fmt(x0 - 6))\" y=\"\(fmt(yy + 4))\" text-anchor=\"end\">\(SVGPlot.escape(TableReport.duration(pow(10, d))))</text>\n"
            d += 1
        }
        // x grid: 0 %, 90 %, 99 %, …
        for k in 0...Int(SVGPlot.xDecades) {
            let p = 100 * (1 - pow(10, -Double(k)))
            let xx = x(p)
            s +=
                "<line x1=\"\(fmt(xx))\" y1=\"\(fmt(py))\" x2=\"\(fmt(xx))\" y2=\"\(fmt(py + ph))\" stroke=\"#ddd\"/>\n"
            let label = k == 0 ? "p0" : (k == 1 ? "p90" : "p" + String(format: "%g", p))
            s += "<text x=\"\(fmt(xx))\" y=\"\(fmt(py + ph + 16))\" text-anchor=\"middle\">\(label)</text>\n"
        }
        s +=
            "<text x=\"\(fmt(x0 + pw / 2))\" y=\"\(fmt(py + ph + 34))\" text-anchor=\"middle\">percentile (log scale of 1/(1−p))</text>\n"
        s +=
            "<text x=\"\(fmt(x0 - 58))\" y=\"\(fmt(py + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 \(fmt(x0 - 58)) \(fmt(py + ph / 2)))\">latency (log)</text>\n"
        for (i, (row, pts)) in curves.enumerated() where !pts.isEmpty {
            let color = SVGPlot.color(row.system)
            let baseline = row.scenario == .priorityBaseline || row.scenario == .ioPriorityUnloaded
            let dash = baseline ? " stroke-dasharray=\"6 4\"" : ""
            let path = pts.map { "\(fmt(x($0.percentile))),\(fmt(y(Double($0.nanoseconds))))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(path)\"/>\n"
            let ly = py + 14 + Double(i) * 18
            let name =
                row.scenario == .priorityBaseline
                ? "\(row.system) (unflooded)"
                : (row.scenario == .ioPriorityUnloaded ? "\(row.system) (unloaded)" : row.system.rawValue)
            let p99 = row.percentile(99).map { " p99 " + TableReport.duration($0.median) } ?? ""
            s +=
                "<line x1=\"\(fmt(x0 + pw + 12))\" y1=\"\(fmt(ly - 4))\" x2=\"\(fmt(x0 + pw + 36))\" y2=\"\(fmt(ly - 4))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(fmt(x0 + pw + 42))\" y=\"\(fmt(ly))\">\(SVGPlot.escape(name + p99))</text>\n"
        }
        return s + "</g>\n"
    }

    func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    /// XML text escaping.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Writes ``render()`` to `path`.
    public func write(to path: String) throws {
        try render().write(toFile: path, atomically: true, encoding: .utf8)
    }
}
