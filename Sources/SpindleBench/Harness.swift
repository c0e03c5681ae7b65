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
    public init(system: System, scenarios: Set<Scenario>, trial: @escaping @Sendable (Scenario, BenchConfig) throws -> Trial) {
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
        self.contenders = SpindleRows.contenders + CPeers.contenders + SwiftPeers.contenders + extra
    }

    /// Whether the malloc interposer is linked in (the Spindle rows' mallocs per event need it).
    public static var mallocCounterActive: Bool {
        _ = spmc_total()
        return spmc_active() != 0
    }

    /// Measures every contender in every scenario it supports, in scenario order. A row that fails
    /// is reported on stderr and left out; the others still run.
    public func run(_ scenarios: [Scenario], progress showProgress: Bool = true) throws(BenchError) -> Report {
        try config.validate()
        let progress = Progress(enabled: showProgress)
        var rows: [Row] = []
        let jobs = scenarios.flatMap { s in contenders.filter { $0.scenarios.contains(s) }.map { (s, $0) } }
        for (index, (scenario, contender)) in jobs.enumerated() {
            var trials: [Trial] = []
            let total = config.warmups + config.runs
            do {
                for round in 0..<total {
                    let label = round < config.warmups ? "warm-up" : "run \(round - config.warmups + 1)/\(config.runs)"
                    progress.update("[\(index + 1)/\(jobs.count)] \(scenario.rawValue) \(contender.system): \(label)")
                    let t = try contender.trial(scenario, config)
                    if round >= config.warmups { trials.append(t) }
                }
                let backlog = scenario == .priorityIsolation ? config.backlog : nil
                rows.append(Row(scenario: scenario, system: contender.system, trials: trials, backlog: backlog))
            } catch {
                progress.finish()
                progress.update("\(scenario.rawValue) \(contender.system): failed: \(error)")
                progress.finish()
                if showProgress { print("warning: \(scenario.rawValue) \(contender.system) failed: \(error)", to: &standardError) }
            }
        }
        progress.finish()
        return Report(machine: Machine.describe(), config: config.json, rows: rows)
    }
}

/// Allocations made in the whole process so far (the interposer's counter; 0 when it is absent).
@inline(__always) func mallocsSoFar() -> UInt64 { spmc_total() }

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
nonisolated(unsafe) var standardError = StandardError()
