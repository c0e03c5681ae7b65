/// The options of `spindle bench`, independent of the CLI parser (so they can be tested).
///
/// `spindle bench [SCENARIO...] [--profile FILE] [--runs N] [--quick] [--json FILE] [--plot FILE.svg]`
public struct BenchOptions: Sendable, Hashable {
    /// Scenario names; empty means every scenario.
    public var scenarios: [String] = []
    /// A compiled profile to run the Spindle rows with (the embedded default when `nil`).
    public var profile: String?
    /// Measured rounds per row (default 5, or 3 with `quick`).
    public var runs: Int?
    /// Smaller rounds: the whole suite in under a minute.
    public var quick = false
    /// Where to write the JSON report.
    public var json: String?
    /// Where to write the SVG plot.
    public var plot: String?
    /// Priority isolation: the credit window D (default 4000).
    public var backlog: Int?
    /// Priority isolation: handler work per flood event, in cbp_work iterations (default 40).
    public var work: Int?
    /// Seconds without a handled event after which a round counts as stalled and the run ends
    /// with exit code 1 (default 5).
    public var stallTimeout: Double?

    /// Options.
    public init(
        scenarios: [String] = [], profile: String? = nil, runs: Int? = nil, quick: Bool = false,
        json: String? = nil, plot: String? = nil, backlog: Int? = nil, work: Int? = nil, stallTimeout: Double? = nil
    ) {
        self.stallTimeout = stallTimeout
        self.scenarios = scenarios
        self.profile = profile
        self.runs = runs
        self.quick = quick
        self.json = json
        self.plot = plot
        self.backlog = backlog
        self.work = work
    }

    /// Checks the options and resolves the scenarios.
    /// - Throws: ``BenchError`` naming the bad option and the fix.
    public func resolve() throws(BenchError) -> [Scenario] {
        if let runs, runs < 1 || runs > 1000 { throw .invalidOption("--runs \(runs): must be 1...1000") }
        if let plot, !plot.hasSuffix(".svg") {
            throw .invalidOption("--plot \(plot): the plot is SVG; name the file *.svg")
        }
        if let json, json.isEmpty { throw .invalidOption("--json: needs a file name") }
        if let backlog, backlog < 1 || backlog >= 4096 {
            throw .invalidOption("--backlog \(backlog): must be 1...4095 (below the lane capacity)")
        }
        if let work, work < 0 || work > 100_000 { throw .invalidOption("--work \(work): must be 0...100000") }
        if let stallTimeout, !(0.1...3600).contains(stallTimeout) {
            throw .invalidOption("--stall-timeout \(stallTimeout): must be 0.1...3600 seconds")
        }
        return try Scenario.parse(scenarios)
    }

    /// Applies the priority and watchdog options to `config`.
    public func apply(to config: inout BenchConfig) {
        if let backlog { config.backlog = backlog }
        if let work { config.workIterations = work }
        if let stallTimeout { config.stallSeconds = stallTimeout }
    }
}
