import ArgumentParser
import Foundation
import Logging
import Spindle
import SpindleBench
import SpindleProfiles

/// `spindle bench [SCENARIO...] [--profile FILE] [--runs N] [--quick] [--json FILE] [--plot FILE.svg]`
///
/// Runs the benchmark scenarios for Spindle and its peers in one process and prints a table
/// (scenario × system: events/s, p50, p99, p99.9, max, mallocs per event, ratio to Spindle).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Spindle against its peers (raw C rings, Dispatch, AsyncStream, a mutex queue).",
        discussion: """
            Scenarios: \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")). With none named, all run.
            `services` (alone) runs scripts/bench-services.sh: spindle-kv, redis-server and a SwiftNIO server under redis-benchmark (docs/services.md).
            `echo` names echo-1 and echo-64; io-priority also runs io-priority-unloaded (its target's baseline).
            Each row: a warm-up round, then --runs rounds; the median is reported with min–max.
            Example: spindle bench cross-core        (Spindle next to a raw C SPSC ring and DispatchQueue)
            """
    )

    @Argument(help: "Scenarios to run (default: all).")
    var scenarios: [String] = []

    @Option(help: "A compiled profile for the Spindle rows (default: the embedded default).")
    var profile: String?

    @Option(help: "Measured rounds per row (default 5; 3 with --quick).")
    var runs: Int?

    @Flag(help: "Smaller rounds: the whole suite in under a minute.")
    var quick = false

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(help: "Write latency percentile curves (wake, priority, timer, echo, io-priority) as SVG to this file.")
    var plot: String?

    @Option(help: "priority-isolation: the backlog D every system is held at (default 4000).")
    var backlog: Int?

    @Option(
        help: "priority-isolation: handler work per flood event in ~1 ns steps, the same for every system (default 40)."
    )
    var work: Int?

    @Option(help: "Also write the table as Markdown to this file (for docs/benchmarks.md).")
    var markdown: String?

    @Option(
        help: "Seconds a round may go without handling an event before the run ends with exit 1 and a diagnostic (default 5)."
    )
    var stallTimeout: Double?

    @Flag(help: "No progress line on stderr.")
    var noProgress = false

    /// `profile-load`: the `--profile` file, or a typical profile — what `spindle profile detect`
    /// writes for this host, with its `[host]` fingerprint — compiled to a temporary file.
    func profileLoad(_ engine: Engine.Configuration) throws -> (Contender, temporary: String?) {
        var path = profile
        if path == nil {
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("spindle-bench-\(getpid()).spindle")
                .path
            let toml = (try? HostDetector.detect().toml) ?? BenchCommand.defaultProfileTOML(cpus: engine.cpus)
            let bytes = try ProfileFiles.compile(toml: toml, name: "this host (detect)")
            try ProfileFiles.writeAtomically(bytes, to: tmp)
            path = tmp
        }
        let file = path!
        return (
            ProfileLoad.contender { n in
                try ProfileLoadBenchmark.run(path: file, iterations: n).map {
                    UInt64($0.components.seconds) * 1_000_000_000 + UInt64($0.components.attoseconds / 1_000_000_000)
                }
            }, profile == nil ? file : nil
        )
    }

    /// The embedded default as profile source: the host's CPUs and the four default lanes.
    static func defaultProfileTOML(cpus: [Int]) -> String {
        var s = "[engine]\ncpus = [\(cpus.map(String.init).joined(separator: ", "))]\n"
        for (name, policy) in [
            ("critical", "policy = \"strict\"\nbudget = 64"), ("high", "policy = \"weighted\"\nweight = 8"),
            ("normal", "policy = \"weighted\"\nweight = 4"), ("bulk", "policy = \"weighted\"\nweight = 1"),
        ] {
            s += "\n[[lanes]]\nname = \"\(name)\"\n\(policy)\ncapacity = 4096\non_full = \"reject\"\nmax_batch = 32\n"
        }
        return s
    }

    /// The `--profile` file as the Spindle rows will run it, or exit 1 before anything runs with the
    /// loader's one line on stderr: the format and every rule (`Profile(contentsOf:)`), this host's
    /// rules (`Engine.Configuration(profile:)`; drift is a warning line), and an engine started and
    /// stopped once with it (pinning, io_uring). Without this a broken profile left the Spindle rows
    /// out with a warning each, ran only the peers and exited 0.
    static func refuseOrLoad(_ path: String) throws -> Engine.Configuration {
        func refuse(_ line: String) -> ExitCode {
            FileHandle.standardError.write(Data((line + "\n").utf8))
            return ExitCode.failure
        }
        let config: Engine.Configuration
        do {
            config = try Engine.Configuration(profile: path) { warning in
                FileHandle.standardError.write(Data(("warning: " + warning + "\n").utf8))
            }
        } catch { throw refuse(error.message) }
        do {
            var quiet = Logger(label: "spindle")
            quiet.logLevel = .error
            let engine = try Engine.Builder(configuration: config, logger: quiet).start()
            _ = try engine.shutdownBlocking(deadline: .now + .seconds(5))
        } catch { throw refuse("\(path): the engine does not start with this profile: \(error.message)") }
        return config
    }

    /// `spindle bench services`: the real-services benchmark (redis-benchmark against spindle-kv,
    /// redis-server and nio-kv, docs/services.md) is `scripts/bench-services.sh` in this checkout;
    /// the harness runs it with `--quick` and `--json` passed on, and exits with its status.
    func runServices() throws {
        guard scenarios == ["services"] else {
            throw ValidationError("services runs alone (it drives external servers for ~12 minutes): spindle bench services [--quick] [--json FILE]")
        }
        // This file is Sources/spindle/BenchCommand.swift in the checkout the binary was built from.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/bench-services.sh").path
        guard FileManager.default.isExecutableFile(atPath: script) else {
            throw ValidationError("services: \(script) not found; run scripts/bench-services.sh from a Spindle checkout")
        }
        var arguments = [script]
        if quick { arguments.append("--quick") }
        if let json { arguments += ["--json", json] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = arguments
        process.currentDirectoryURL = root
        try process.run()
        process.waitUntilExit()  // the script bounds every run it starts (its own timeouts)
        if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
    }

    func run() async throws {
        if scenarios.contains("services") { return try runServices() }
        let options = BenchOptions(
            scenarios: scenarios, profile: profile, runs: runs, quick: quick, json: json, plot: plot,
            backlog: backlog, work: work, stallTimeout: stallTimeout)
        let selected: [Scenario]
        do { selected = try options.resolve() } catch { throw ValidationError(error.description) }
        let engineConfig: Engine.Configuration
        let source: String
        if let profile {
            engineConfig = try Self.refuseOrLoad(profile)
            source = profile
        } else {
            engineConfig = .hostDefault
            source = "embedded default"
        }
        var config = BenchConfig(engine: engineConfig, engineSource: source, quick: quick, runs: runs)
        options.apply(to: &config)
        if !Harness.mallocCounterActive {
            FileHandle.standardError.write(
                Data("warning: the malloc interposer is not active: mallocs per event cannot be measured\n".utf8))
        }
        // The profile-load row's temporary profile only when that scenario runs: a run that ends
        // early (a stalled round exits 1) would leave the file behind.
        var extra: [Contender] = []
        var temporary: String?
        if selected.contains(.profileLoad) {
            let (loader, file) = try profileLoad(engineConfig)
            extra = [loader]
            temporary = file
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        let harness = Harness(config: config, extra: extra)
        let progress = !noProgress
        // The harness blocks and pins its own threads: run it off the cooperative pool.
        let report: Report = try await withCheckedThrowingContinuation { cont in
            let t = Thread {
                do { cont.resume(returning: try harness.run(selected, progress: progress)) } catch {
                    cont.resume(throwing: error)
                }
            }
            t.stackSize = 8 << 20
            t.start()
        }
        print(
            "spindle bench — \(config.engineSource), \(config.runs) runs per row (median, min–max), \(quick ? "quick" : "full") sizes"
        )
        print(TableReport(report).render())
        print(report.renderTargets())
        if let json {
            try report.writeJSON(to: json)
            print("wrote \(json)")
        }
        if let plot {
            try SVGPlot(report).write(to: plot)
            print("wrote \(plot)")
        }
        if let markdown {
            try TableReport(report).markdown().write(toFile: markdown, atomically: true, encoding: .utf8)
            print("wrote \(markdown)")
        }
    }
}
