import Foundation
import SpindleProfiles
import Testing

/// Runs the built `spindle` executable, which SwiftPM puts next to the test bundle.
enum SpindleExecutable {
    /// `<build dir>/spindle`, found from this test process's own executable.
    static let path: String = {
        let me = Bundle.main.executableURL ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("spindle").path
    }()

    /// Exit status and standard error of `spindle arguments…`.
    static func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }
}

@Suite("spindle profile: exit 0 valid, 1 refused, 2 usage")
struct CommandLineTests {
    static let two = Support.fixtures + "/two-node"
    static let four = Support.fixtures + "/four-node"

    @Test("the spindle executable is built next to the tests")
    func executableExists() {
        #expect(FileManager.default.isExecutableFile(atPath: SpindleExecutable.path), "\(SpindleExecutable.path)")
    }

    @Test(
        "every usage error under `spindle profile` exits 2",
        arguments: [
            ["profile", "validate", "--bogus", "x.spindle"],  // an unknown flag (ArgumentParser alone exits 64)
            ["profile", "validate", "-z", "x.spindle"],
            ["profile", "validate"],  // no file
            ["profile", "validate", "a.spindle", "b.spindle"],  // a surplus argument
            ["profile", "compile", "in.toml", "-o"],  // an option without its value
            ["profile", "compile", "in.toml"],  // no -o
            ["profile", "inspect", "--strict", "x.spindle"],
            ["profile", "detect", "--bogus"],
            ["profile", "diff", "a.spindle"],
            ["profile", "frobnicate"],  // an unknown subcommand
            ["profile"],  // no subcommand
        ])
    func usageExits2(_ arguments: [String]) throws {
        let (status, stderr) = try SpindleExecutable.run(arguments)
        #expect(status == 2, "\(arguments): \(stderr)")
        #expect(!stderr.isEmpty)
    }

    @Test("--help and --version exit 0; bench keeps ArgumentParser's usage code")
    func helpAndVersion() throws {
        for arguments in [
            ["--help"], ["--version"], ["profile", "--help"], ["profile", "validate", "--help"], ["help", "profile"],
        ] {
            #expect(try SpindleExecutable.run(arguments).status == 0, "\(arguments)")
        }
        #expect(try SpindleExecutable.run(["bench", "--bogus"]).status == 64)
    }

    @Test("validate: 0 for a valid profile, 1 with one line on stderr when refused")
    func validateStatus() throws {
        let path = try TopologyTests.compiled(try HostDetector.detect(root: Self.two))
        defer { unlink(path) }

        let valid = try SpindleExecutable.run(["profile", "validate", path, "--root", Self.two])
        #expect(valid.status == 0, "\(valid.stderr)")
        #expect(valid.stderr.isEmpty)

        // Another host: drift warns (still 0) and refuses under --strict with the first warning.
        let drift = try SpindleExecutable.run(["profile", "validate", path, "--root", Self.four])
        #expect(drift.status == 0)
        #expect(drift.stderr.split(separator: "\n").count == 3)
        let strict = try SpindleExecutable.run(["profile", "validate", "--strict", path, "--root", Self.four])
        #expect(strict.status == 1)
        #expect(
            strict.stderr
                == "\(path): HOST host.cpu_model = \"Fixture Xeon 2-socket\": rule same CPU model as here (\"Fixture EPYC 4-node\"); fix: re-run detect on this host (--strict)\n"
        )

        // A damaged file: the loader's one line.
        var bytes = try ProfileFiles.read(path)
        bytes[0] = 0x58
        let damaged = path + ".damaged"
        defer { unlink(damaged) }
        try ProfileFiles.writeAtomically(bytes, to: damaged)
        let refused = try SpindleExecutable.run(["profile", "validate", damaged, "--root", Self.two])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("\(damaged): header magic = 0x58"))
        #expect(refused.stderr.filter { $0 == "\n" }.count == 1)

        // Writable by others (StrictModes): refused unless allowed.
        let writable = path + ".writable"
        defer { unlink(writable) }
        try ProfileFiles.writeAtomically(try ProfileFiles.read(path), to: writable, mode: 0o666)
        let open = try SpindleExecutable.run(["profile", "validate", writable, "--root", Self.two])
        #expect(open.status == 1)
        #expect(
            open.stderr
                == "\(writable): file mode = 0666: rule not writable by group or others; fix: chmod go-w the file (or allow it explicitly)\n"
        )
        #expect(
            try SpindleExecutable.run(["profile", "validate", "--allow-writable", writable, "--root", Self.two]).status
                == 0)
    }
}
