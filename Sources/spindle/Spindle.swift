import ArgumentParser
import Spindle

/// `spindle` — run the benchmark harness and manage per-host profiles.
@main
struct SpindleCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spindle",
        abstract: "Spindle: an event engine for latency-sensitive Swift services on Linux.",
        version: SpindleVersion.current,
        subcommands: [BenchCommand.self, ProfileCommand.self]
    )
}
