import CMallocCounter
import Foundation

/// One system's implementation of some scenarios: Spindle's rows and every peer are contenders, and
/// the Benchmarks package adds its own (SwiftNIO) to the same run.
public struct Contender: Sendable {
    /// The system measured.
    public var system: System
    /// The scenarios it can express.
    public var scenarios: Set<Scenario>
    /// Runs one round of `scenario` and returns what it measured.
    public var trial: @Sendable (Scenario, BenchConfig) throws -> Trial

    /// A contender.
    public init(
        system: System, scenarios: Set<Scenario>, trial: @escaping @Sendable (Scenario, BenchConfig) throws -> Trial
    ) {
        self.system = system
        self.scenarios = scenarios
        self.trial = trial
    }
}

/// Runs scenarios × contenders: per row a warm-up, then `runs` measured rounds.
///
/// ```swift
/// let harness = Harness(config: BenchConfig(engine: .hostDefault, engineSource: "embedded default"))
/// let report = try harness.run([.crossCore])
/// print(TableReport(report).render())
/// ```
public struct Harness: Sendable {
    /// The configuration.
    public var config: BenchConfig
    /// Every system, in table order: Spindle's rows, the raw peers, the Swift peers, then extras.
    public var contenders: [Contender]

    /// A harness with the built-in contenders plus `extra` (e.g. SwiftNIO from the Benchmarks package).
    public init(config: BenchConfig, extra: [Contender] = []) {
        self.config = config
        self.contenders = SpindleRows.contenders + CPeers.contenders + SwiftPeers.contenders + ExecutorHop.contenders + extra
    }

    /// Whether the malloc interposer is linked in (the Spindle rows' mallocs per event need it).
    public static var mallocCounterActive: Bool {
        _ = spmc_total()
        return spmc_active() != 0
    }

    /// Measures every contender in every scenario it supports, in scenario order. Within a scenario
    /// the rounds are interleaved (round 1 of every system, then round 2, …), so a change of the
    /// machine's state during the run (this VM's cross-core speed flips between modes) hits every
    /// system alike and the ratios of medians stay meaningful. A system that fails is reported on
    /// stderr and left out; the others still run.
    public func run(_ scenarios: [Scenario], progress showProgress: Bool = true) throws(BenchError) -> Report {
        try config.validate()
        let progress = Progress(enabled: showProgress)
        var rows: [Row] = []
        for (si, scenario) in scenarios.enumerated() {
            let systems = contenders.filter { $0.scenarios.contains(scenario) && Self.selected($0.system) }
            var trials = [[Trial]](repeating: [], count: systems.count)
            var failed = [Bool](repeating: false, count: systems.count)
            for round in 0..<(config.warmups + config.runs) {
                let label = round < config.warmups ? "warm-up" : "run \(round - config.warmups + 1)/\(config.runs)"
                for (i, contender) in systems.enumerated() where !failed[i] {
                    progress.update(
                        "[\(si + 1)/\(scenarios.count)] \(scenario.rawValue): \(label), \(contender.system)")
                    Watchdog.shared.begin(
                        "\(scenario.rawValue): \(label), \(contender.system)", stallSeconds: config.stallSeconds)
                    defer { Watchdog.shared.end() }
                    do {
                        let t = try contender.trial(scenario, config)
                        if round >= config.warmups { trials[i].append(t) }
                    } catch {
                        failed[i] = true
                        progress.finish()
                        print("warning: \(scenario.rawValue) \(contender.system) failed: \(error)", to: &standardError)
                    }
                }
            }
            let backlog = scenario == .priorityIsolation ? config.backlog : nil
            for (i, contender) in systems.enumerated() where !failed[i] {
                rows.append(Row(scenario: scenario, system: contender.system, trials: trials[i], backlog: backlog))
            }
        }
        progress.finish()
        return Report(machine: Machine.describe(), config: config.json, rows: rows)
    }
}

extension Harness {
    /// `SPINDLE_BENCH_SYSTEMS=spindle,global-executor`: only these rows run (for profiling one row
    /// with `perf record`; the table then has no baseline for the others' ratios).
    static let onlySystems: Set<String>? = ProcessInfo.processInfo.environment["SPINDLE_BENCH_SYSTEMS"].map {
        Set($0.split(separator: ",").map { String($0) })
    }

    static func selected(_ system: System) -> Bool { onlySystems?.contains(system.rawValue) ?? true }
}

/// Allocations made in the whole process so far (the interposer's counter; 0 when it is absent).
@inline(__always) func mallocsSoFar() -> UInt64 { spmc_total() }

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
nonisolated(unsafe) var standardError = StandardError()
