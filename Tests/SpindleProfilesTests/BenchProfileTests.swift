import CSpindle
import Foundation
import Spindle
import SpindleProfiles
import Testing

/// A broken profile is refused where it enters — `Engine.Configuration(profile:)` and
/// `spindle bench --profile` — with the loader's one line, before anything runs.
@Suite("Broken profiles are refused by Engine.Configuration(profile:) and spindle bench")
struct BenchProfileTests {
    /// The profile-format cases of the broken-profile table (the TOML ones are compiler input).
    static func byteCases() throws -> [(name: String, bytes: [UInt8])] {
        try BrokenCases.all().compactMap { c in
            if case .bytes(let b) = c.input { return (c.name, b) }
            return nil
        }
    }

    /// `spindle arguments…` with a time limit: a hang is killed and reported, never waited for.
    static func run(_ arguments: [String], limit: Double = 60) throws -> (status: Int32, stdout: String, stderr: String, killed: Bool) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: SpindleExecutable.path)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        try p.run()
        var killed = false
        if exited.wait(timeout: .now() + limit) == .timedOut {
            killed = true
            kill(p.processIdentifier, SIGKILL)
            exited.wait()
        }
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (p.terminationStatus, o, e, killed)
    }

    static func temporary(_ bytes: [UInt8], _ tag: String) throws -> String {
        let path = "\(NSTemporaryDirectory())/spindle-broken-\(getpid())-\(tag).spindle"
        try ProfileFiles.writeAtomically(bytes, to: path)
        return path
    }

    /// Every profile of the table, from a file: `Engine.Configuration(profile:)` throws
    /// `invalidProfile` with exactly the loader's message for that file.
    @Test("Engine.Configuration(profile:) refuses every broken profile with the loader's message")
    func configurationRefuses() throws {
        let cases = try Self.byteCases()
        #expect(cases.count >= 40)
        for (i, c) in cases.enumerated() {
            let path = try Self.temporary(c.bytes, "cfg\(i)")
            defer { unlink(path) }
            let expected = Support.refusal(c.bytes, name: path)
            #expect(expected != nil, "\(c.name): the loader accepts it")
            do {
                _ = try Engine.Configuration(profile: path)
                Issue.record("\(c.name): accepted")
            } catch {
                #expect(error.code == .invalidProfile, "\(c.name)")
                #expect(error.message == expected, "\(c.name)")
            }
        }
    }

    /// `spindle bench --profile BROKEN` exits 1 before running any row, its stderr exactly the
    /// loader's one line (it used to warn, run only the peers and exit 0).
    @Test("spindle bench --profile BROKEN exits 1 with the loader's one line and runs nothing")
    func benchRefusesEveryBrokenProfile() throws {
        #expect(FileManager.default.isExecutableFile(atPath: SpindleExecutable.path), "\(SpindleExecutable.path)")
        for (i, c) in try Self.byteCases().enumerated() {
            let path = try Self.temporary(c.bytes, "bench\(i)")
            defer { unlink(path) }
            let r = try Self.run(["bench", "cross-core", "--quick", "--runs", "1", "--no-progress", "--profile", path])
            #expect(!r.killed, "\(c.name): spindle bench did not exit within 60 s")
            #expect(r.status == 1, "\(c.name): exit \(r.status); stderr: \(r.stderr)")
            #expect(r.stderr == (Support.refusal(c.bytes, name: path) ?? "(accepted)") + "\n", "\(c.name)")
            #expect(r.stdout.isEmpty, "\(c.name): ran: \(r.stdout)")
        }
    }

    /// A well-formed profile for another host (CPUs this machine does not have): refused by the host
    /// rules, again before any row runs.
    @Test("spindle bench --profile for another host's CPUs exits 1 naming the CPU")
    func benchRefusesAnotherHostsProfile() throws {
        let toml = Support.baseTOML.replacingOccurrences(of: "cpus = [0, 1]", with: "cpus = [0, 4000]")
            .replacingOccurrences(of: "numa_node_cpus = [\"0-1\"]", with: "numa_node_cpus = [\"0-4000\"]")
        let path = try Self.temporary(try ProfileFiles.compile(toml: toml, name: "other-host.toml"), "host")
        defer { unlink(path) }
        var expected = ""
        do {
            _ = try Engine.Configuration(profile: path)
            Issue.record("CPU 4000 accepted")
        } catch {
            #expect(error.code == .invalidProfile)
            expected = error.message
        }
        #expect(expected.contains("4000"), "\(expected)")
        let r = try Self.run(["bench", "cross-core", "--quick", "--runs", "1", "--no-progress", "--profile", path])
        #expect(!r.killed)
        #expect(r.status == 1, "exit \(r.status); stderr: \(r.stderr)")
        #expect(r.stderr == expected + "\n")
        #expect(r.stdout.isEmpty, "ran: \(r.stdout)")
    }
}
