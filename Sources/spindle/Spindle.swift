import ArgumentParser
import Spindle

#if canImport(Glibc)
    import Glibc
#endif

/// `spindle` — run the benchmark harness and manage per-host profiles.
@main
struct SpindleCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spindle",
        abstract: "Spindle: an event engine for latency-sensitive Swift services on Linux.",
        version: SpindleVersion.current,
        subcommands: [BenchCommand.self, ProfileCommand.self, MetricsDemoCommand.self]
    )

    /// ArgumentParser's `main`, except that `spindle profile …` exits 2 on a usage error (an unknown
    /// flag, a missing or surplus argument, a bad value), as `validate` documents, where
    /// ArgumentParser would exit 64. `--help` and `--version` still exit 0; `spindle bench` keeps
    /// ArgumentParser's codes.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try await asyncParseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if arguments.first == ProfileCommand.configuration.commandName,
                exitCode(for: error) == .validationFailure
            {
                FileHandleStderr.write(fullMessage(for: error) + "\n")
                Glibc.exit(ProfileCommand.usageExitCode.rawValue)
            }
            exit(withError: error)
        }
    }
}
