/// One line of the results: a system in a scenario, summarised over its measured rounds.
public struct Row: Sendable {
    /// The scenario.
    public var scenario: Scenario
    /// The system.
    public var system: System
    /// Every measured round.
    public var trials: [Trial]
    /// Priority rows: the credit window D every system is held at.
    public var backlog: Int?

    /// A row.
    public init(scenario: Scenario, system: System, trials: [Trial], backlog: Int? = nil) {
        self.scenario = scenario
        self.system = system
        self.trials = trials
        self.backlog = backlog
    }

    /// Events per second over the rounds: median, min, max.
    public var throughput: Spread { Spread(trials.map(\.eventsPerSecond)) }

    /// The round whose throughput is the median (the lower middle one for an even count).
    public var medianTrial: Trial? {
        let sorted = trials.sorted { $0.eventsPerSecond < $1.eventsPerSecond }
        return sorted.isEmpty ? nil : sorted[(sorted.count - 1) / 2]
    }

    /// Whether the row carries latency samples.
    public var hasLatency: Bool { trials.contains { !$0.latencies.isEmpty } }

    /// Every round's samples in one distribution (for the plot).
    public var merged: LatencyDistribution {
        var d = LatencyDistribution()
        for t in trials { d.record(t.latencies) }
        return d
    }

    /// A latency percentile over the rounds: the median of each round's value.
    public func percentile(_ p: Double) -> Spread? {
        guard hasLatency else { return nil }
        return Spread(
            trials.filter { !$0.latencies.isEmpty }.map {
                Double(LatencyDistribution($0.latencies).value(atPercentile: p))
            })
    }

    /// The largest latency of every round.
    public var maxLatency: UInt64? {
        guard hasLatency else { return nil }
        return trials.map { $0.latencies.max() ?? 0 }.max()
    }

    /// Allocations per handled event over all rounds (`nil`: not measured).
    public var mallocsPerEvent: Double? {
        var total: UInt64 = 0
        var events = 0
        for t in trials {
            guard let m = t.mallocs else { return nil }
            total += m
            events += t.events
        }
        return events > 0 ? Double(total) / Double(events) : nil
    }

    /// Mean queue depth ahead of the probes (priority rows).
    public var meanDepth: Double? {
        let d = trials.compactMap(\.meanDepth)
        return d.isEmpty ? nil : Spread(d).median
    }
}

/// Everything a harness run produced, in scenario order.
public struct Report: Sendable {
    /// Facts about the machine.
    public var machine: [(String, JSONValue)]
    /// The harness configuration.
    public var config: [(String, JSONValue)]
    /// The rows.
    public var rows: [Row]

    /// A report.
    public init(machine: [(String, JSONValue)], config: [(String, JSONValue)], rows: [Row]) {
        self.machine = machine
        self.config = config
        self.rows = rows
    }

    /// The Spindle row of `scenario` (the per-event one).
    public func spindleRow(_ scenario: Scenario) -> Row? {
        rows.first { $0.scenario == scenario && $0.system == .spindle }
    }

    /// Median throughput of `row` divided by Spindle's in the same scenario (`nil` without one).
    public func ratioToSpindle(_ row: Row) -> Double? {
        guard let s = spindleRow(row.scenario) else { return nil }
        if row.scenario.isLatency {
            guard let mine = row.percentile(99)?.median, let theirs = s.percentile(99)?.median, theirs > 0 else {
                return nil
            }
            return mine / theirs
        }
        let base = s.throughput.median
        return base > 0 ? row.throughput.median / base : nil
    }
}
