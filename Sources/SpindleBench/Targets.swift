import Foundation

/// The issue's targets, checked against one report (ratios of medians within the same run).
public struct TargetCheck: Sendable, Hashable {
    /// "1 cross-core vs raw-c-ring" …
    public var name: String
    /// What was required.
    public var requirement: String
    /// What was measured (`nil` when a row is missing from the run).
    public var measured: String?
    /// Whether it holds (`nil` when it could not be evaluated).
    public var holds: Bool?
}

extension Report {
    func row(_ s: Scenario, _ sys: System) -> Row? { rows.first { $0.scenario == s && $0.system == sys } }

    /// Every target the run can evaluate.
    public var targets: [TargetCheck] {
        var out: [TargetCheck] = []
        func ratio(_ n: String, _ s: Scenario, _ a: System, _ b: System, atLeast: Double) {
            guard let ra = row(s, a), let rb = row(s, b), rb.throughput.median > 0 else {
                out.append(TargetCheck(name: n, requirement: "\(a) ≥ \(atLeast) × \(b)", measured: nil, holds: nil))
                return
            }
            let r = ra.throughput.median / rb.throughput.median
            out.append(
                TargetCheck(
                    name: n, requirement: "\(a) ≥ \(atLeast) × \(b)", measured: String(format: "%.2f ×", r),
                    holds: r >= atLeast))
        }
        ratio("1 cross-core", .crossCore, .spindle, .rawCRing, atLeast: 0.6)
        ratio("1 cross-core", .crossCore, .spindleBatch, .rawCRing, atLeast: 0.6)
        ratio("1 cross-core", .crossCore, .spindle, .dispatch, atLeast: 15)
        if row(.crossCore, .nioEventLoop) != nil {
            ratio("1 cross-core", .crossCore, .spindle, .nioEventLoop, atLeast: 25)
        }
        ratio("2 same-core", .sameCore, .spindle, .rawCRing, atLeast: 0.5)
        ratio("2 same-core", .sameCore, .spindleBatch, .rawCRing, atLeast: 0.5)
        ratio("3 foreign-thread", .foreignThread, .spindle, .rawMPSC, atLeast: 0.6)

        // 4: priority isolation.
        if let f = row(.priorityIsolation, .spindle)?.percentile(99)?.median,
            let b = row(.priorityBaseline, .spindle)?.percentile(99)?.median, b > 0
        {
            out.append(
                TargetCheck(
                    name: "4 priority-isolation", requirement: "spindle p99 ≤ 2 × its unflooded p99",
                    measured:
                        "\(TableReport.duration(f)) vs \(TableReport.duration(b)) = \(String(format: "%.2f", f / b)) ×",
                    holds: f <= 2 * b))
        } else {
            out.append(
                TargetCheck(
                    name: "4 priority-isolation", requirement: "spindle p99 ≤ 2 × its unflooded p99", measured: nil,
                    holds: nil))
        }
        // Only FIFO peers that really held the backlog ("at the same backlog D"): a peer whose
        // producer is slower than its consumer never builds the queue its probes would wait behind.
        let held = rows.filter { r in
            r.scenario == .priorityIsolation && !r.system.isSpindle
                && (r.backlog == nil || r.meanDepth == nil || r.meanDepth! >= 0.9 * Double(r.backlog!))
        }
        let fifo = held.compactMap { r in r.percentile(99).map { (r.system, $0.median) } }
        if let f = row(.priorityIsolation, .spindle)?.percentile(99)?.median, f > 0,
            let best = fifo.min(by: { $0.1 < $1.1 })
        {
            out.append(
                TargetCheck(
                    name: "4 priority-isolation", requirement: "best FIFO peer p99 ≥ 100 × spindle p99",
                    measured:
                        "\(best.0) (of \(fifo.count) peers that held D) \(TableReport.duration(best.1)) = \(String(format: "%.0f", best.1 / f)) ×",
                    holds: best.1 >= 100 * f))
        } else {
            out.append(
                TargetCheck(
                    name: "4 priority-isolation", requirement: "best FIFO peer p99 ≥ 100 × spindle p99", measured: nil,
                    holds: nil))
        }

        // 5: wake-ups.
        for (s, peer) in [(Scenario.wakeWorker, System.rawMsgring), (.wakeForeign, .rawEventfd)] {
            let req = "spindle p50 ≤ 1.2 × \(peer) p50"
            if let a = row(s, .spindle)?.percentile(50)?.median, let b = row(s, peer)?.percentile(50)?.median, b > 0 {
                out.append(
                    TargetCheck(
                        name: "5 \(s.rawValue)", requirement: req,
                        measured:
                            "\(TableReport.duration(a)) vs \(TableReport.duration(b)) = \(String(format: "%.2f", a / b)) ×",
                        holds: a <= 1.2 * b))
            } else {
                out.append(TargetCheck(name: "5 \(s.rawValue)", requirement: req, measured: nil, holds: nil))
            }
        }

        // 6: no allocation per event on Spindle rows.
        // (profile-load is a cold path, not an event: its allocations are reported, not targeted)
        let spindleRows = rows.filter { $0.system.isSpindle && $0.scenario != .profileLoad }
        if !spindleRows.isEmpty {
            let bad = spindleRows.filter { ($0.mallocsPerEvent ?? 1) != 0 }
            let worst = spindleRows.compactMap(\.mallocsPerEvent).max() ?? 0
            out.append(
                TargetCheck(
                    name: "6 mallocs", requirement: "0 mallocs per event on every Spindle row",
                    measured: bad.isEmpty
                        ? "0 on \(spindleRows.count) rows"
                        : "\(bad.map { "\($0.scenario.rawValue)/\($0.system)" }.joined(separator: ", ")) (worst \(worst))",
                    holds: bad.isEmpty))
        }

        // Executors (issue 10): a hop onto a worker against the global concurrent executor's.
        ratio("10 executor", .executor, .spindle, .globalExecutor, atLeast: 5)

        // 7: TCP echo, messages/s of the same closed loops against the raw servers.
        ratio("7 echo-64", .echo64, .spindle, .rawUring, atLeast: 0.8)
        ratio("7 echo-64", .echo64, .spindle, .rawEpoll, atLeast: 1.3)
        ratio("7 echo-1", .echo1, .spindle, .rawEpoll, atLeast: 0.9)

        // 8: I/O priority: the control connection's p99 under the bulk flood against its own unloaded p99.
        out.append(
            p99Within(
                "8 io-priority", flooded: row(.ioPriority, .spindle), unloaded: row(.ioPriorityUnloaded, .spindle),
                factor: 2, requirement: "spindle control p99 under flood ≤ 2 × its unloaded p99"))
        return out
    }

    /// "`flooded`'s p99 ≤ `factor` × `unloaded`'s p99", or not evaluated (`holds == nil`) without both rows.
    func p99Within(_ name: String, flooded: Row?, unloaded: Row?, factor: Double, requirement: String) -> TargetCheck {
        guard let f = flooded?.percentile(99)?.median, let u = unloaded?.percentile(99)?.median, u > 0 else {
            return TargetCheck(name: name, requirement: requirement, measured: nil, holds: nil)
        }
        return TargetCheck(
            name: name, requirement: requirement,
            measured: "\(TableReport.duration(f)) vs \(TableReport.duration(u)) = \(String(format: "%.2f", f / u)) ×",
            holds: f <= factor * u)
    }

    /// The targets this run could evaluate, as text lines ("holds" or "MISSED").
    public func renderTargets() -> String {
        targets.filter { $0.holds != nil }.map { t in
            let verdict = t.holds.map { $0 ? "holds " : "MISSED" } ?? "n/a   "
            return "\(verdict)  \(t.name): \(t.requirement)" + (t.measured.map { " — measured \($0)" } ?? "")
        }.joined(separator: "\n") + "\n"
    }
}
