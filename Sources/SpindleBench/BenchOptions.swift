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

    /// Options.
    public init(scenarios: [String] = [], profile: String? = nil, runs: Int? = nil, quick: Bool = false,
                json: String? = nil, plot: String? = nil) {
        self.scenarios = scenarios
        self.profile = profile
        self.runs = runs
        self.quick = quick
        self.json = json
        self.plot = plot
    }

    /// Checks the options and resolves the scenarios.
    /// - Throws: ``BenchError`` naming the bad option and the fix.
    public func resolve() throws(BenchError) -> [Scenario] {
        if let runs, runs < 1 || runs > 1000 { throw .invalidOption("--runs \(runs): must be 1...1000") }
        if let plot, !plot.hasSuffix(".svg") { throw .invalidOption("--plot \(plot): the plot is SVG; name the file *.svg") }
        if let json, json.isEmpty { throw .invalidOption("--json: needs a file name") }
        return try Scenario.parse(scenarios)
    }
}
