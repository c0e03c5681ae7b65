#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spindle
import SpindleProfiles

/// `spindle profile …`: the operator's tools for per-host profiles.
///
///     spindle profile detect -o host.toml --measure     # read this host, write commented TOML
///     $EDITOR host.toml                                 # adjust lanes, CPUs, spin
///     spindle profile compile host.toml -o host.spindle # strict schema, atomic write
///     spindle profile validate host.spindle             # loader checks + this host's rules
///     spindle profile inspect host.spindle              # back to TOML (compile(inspect(x)) == x)
struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Per-host profiles: detect, compile, inspect, validate, diff.",
        subcommands: [Detect.self, Compile.self, Inspect.self, Validate.self, Diff.self])

    /// Prints one line to stderr.
    static func complain(_ line: String) {
        FileHandleStderr.write(line + "\n")
    }

    /// Runs `body`; a SpindleError becomes its one line on stderr and exit code 1.
    static func run(_ body: () throws(SpindleError) -> Void) throws {
        do { try body() } catch {
            complain(error.message)
            throw ExitCode(1)
        }
    }

    /// The exit code of every usage error under `spindle profile` (ArgumentParser's own parse
    /// errors are mapped to it in ``SpindleCLI/main()``).
    static let usageExitCode = ExitCode(2)

    /// Usage errors exit 2, as documented for `validate`.
    static func usage(_ line: String) -> ExitCode {
        complain("usage: \(line)")
        return usageExitCode
    }

    /// `spindle profile` without a subcommand is a usage error: the help on stderr, exit 2.
    func run() throws {
        ProfileCommand.complain(SpindleCLI.helpMessage(for: ProfileCommand.self))
        throw ProfileCommand.usageExitCode
    }

    struct Detect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read this host (CPUs, affinity, NUMA, caches, io_uring, kernel) and write TOML tuned to it.")
        @Option(name: .short, help: "Write to FILE instead of standard output.") var output: String?
        @Flag(help: "Measure wake-up latency here and derive the spin time from it.") var measure = false
        @Option(help: ArgumentHelp("Read a sysfs/procfs-shaped tree instead of /.", visibility: .hidden)) var root = "/"

        func run() throws {
            try ProfileCommand.run { () throws(SpindleError) in
                let d = try HostDetector.detect(root: root, measure: measure)
                if let output {
                    try ProfileFiles.writeAtomically(Array(d.toml.utf8), to: output)
                } else {
                    print(d.toml, terminator: "")
                }
            }
        }
    }

    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compile a TOML profile to the binary format (temp file + fsync + rename).")
        @Argument(help: "The TOML source.") var input: String?
        @Option(name: .short, help: "The compiled profile to write.") var output: String?

        func run() throws {
            guard let input, let output else { throw ProfileCommand.usage("spindle profile compile IN.toml -o OUT.spindle") }
            try ProfileCommand.run { () throws(SpindleError) in try ProfileFiles.compile(input: input, output: output) }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a compiled profile as TOML (documented keys only).")
        @Argument(help: "The compiled profile.") var file: String?

        func run() throws {
            guard let file else { throw ProfileCommand.usage("spindle profile inspect FILE") }
            try ProfileCommand.run { () throws(SpindleError) in
                print(try ProfileFiles.inspect(bytes: try ProfileFiles.read(file), name: file), terminator: "")
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Loader checks plus this host's rules. Exit 0 valid (warnings on stderr), 1 refused, 2 usage.")
        @Argument(help: "The compiled profile.") var file: String?
        @Flag(help: "Refuse on host drift (CPU model, NUMA layout, kernel) instead of warning.") var strict = false
        @Flag(help: "Accept a file writable by group or others.") var allowWritable = false
        @Option(help: ArgumentHelp("Check against a sysfs/procfs-shaped tree instead of this host.", visibility: .hidden)) var root: String?

        func run() throws {
            guard let file else { throw ProfileCommand.usage("spindle profile validate FILE [--strict]") }
            try ProfileCommand.run { () throws(SpindleError) in
                for w in try ProfileFiles.validate(path: file, strict: strict, root: root, allowWritable: allowWritable) {
                    ProfileCommand.complain("warning: \(w)")
                }
            }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Differences between two profiles (compiled or TOML), by key. Exit 0 same, 1 different, 2 trouble.")
        @Argument(help: "First profile.") var a: String?
        @Argument(help: "Second profile.") var b: String?

        func run() throws {
            guard let a, let b else { throw ProfileCommand.usage("spindle profile diff A B") }
            // Exit codes as diff(1): 0 same, 1 different, 2 trouble.
            let changes: [ProfileDiff.Change]
            do { changes = ProfileDiff.changes(try ProfileDiff.load(a), try ProfileDiff.load(b)) } catch {
                ProfileCommand.complain(error.message)
                throw ExitCode(2)
            }
            for c in changes { print(c) }
            if !changes.isEmpty { throw ExitCode(1) }
        }
    }
}

/// Unbuffered writes to stderr (messages must not interleave with stdout's buffer).
enum FileHandleStderr {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
    }
}
