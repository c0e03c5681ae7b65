import CSpindle
import Foundation
import Spindle
import SpindleProfiles
import Testing

@Suite("Profile files: permissions, atomic replacement, the engine's entry points")
struct FileTests {
    static func tempPath(_ ext: String) -> String {
        "\(NSTemporaryDirectory())/spindle-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).\(ext)"
    }

    @Test("a profile writable by others is refused unless explicitly allowed (StrictModes)")
    func writableByOthers() throws {
        let path = Self.tempPath("spindle")
        defer { unlink(path) }
        try ProfileFiles.writeAtomically(try Support.baseBytes(), to: path)
        #expect(throws: Never.self) { _ = try Profile(contentsOf: path) }
        chmod(path, 0o666)
        do {
            _ = try Profile(contentsOf: path)
            Issue.record("a world-writable profile was accepted")
        } catch {
            #expect(error.message == "\(path): file mode = 0666: rule not writable by group or others; fix: chmod go-w the file (or allow it explicitly)")
        }
        #expect(throws: Never.self) { _ = try Profile(contentsOf: path, allowWritableByOthers: true) }
    }

    @Test("a missing file and a truncated file are refused with one line")
    func missingAndShort() throws {
        #expect(throws: SpindleError.self) { _ = try Profile(contentsOf: "/nonexistent/x.spindle") }
        let path = Self.tempPath("spindle")
        defer { unlink(path) }
        try ProfileFiles.writeAtomically(Array(try Support.baseBytes().prefix(10)), to: path)
        do {
            _ = try Profile(contentsOf: path)
            Issue.record("a 10-byte file was accepted")
        } catch {
            #expect(error.message == "\(path): header version_minor = (missing; file is 10 bytes): rule the header needs 12 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`")
        }
    }

    @Test("compile replaces the output atomically and leaves no temporary file")
    func atomicCompile() throws {
        let dir = Self.tempPath("d")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ProfileFiles.writeAtomically(Array(Support.baseTOML.utf8), to: dir + "/in.toml")
        try ProfileFiles.writeAtomically(Array("old".utf8), to: dir + "/out.spindle")
        var before = stat()
        stat(dir + "/out.spindle", &before)
        try ProfileFiles.compile(input: dir + "/in.toml", output: dir + "/out.spindle")
        var after = stat()
        stat(dir + "/out.spindle", &after)
        #expect(before.st_ino != after.st_ino)  // a new file renamed over the old one, not an edit in place
        #expect(try ProfileFiles.read(dir + "/out.spindle") == Support.baseBytes())
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["in.toml", "out.spindle"])
        // A refused source leaves the old output untouched.
        try ProfileFiles.writeAtomically(Array("[engine]\ncpus = [0]\n".utf8), to: dir + "/bad.toml")
        #expect(throws: SpindleError.self) { try ProfileFiles.compile(input: dir + "/bad.toml", output: dir + "/out.spindle") }
        #expect(try ProfileFiles.read(dir + "/out.spindle") == Support.baseBytes())
    }

    @Test("Engine.Configuration(profile:) loads a file and applies the host rules")
    func configurationFromFile() throws {
        let (_, allowed) = try HostFacts.read(root: "/")
        let toml = Support.baseTOML.replacingOccurrences(of: "cpus = [0, 1]", with: "cpus = [\(allowed[0])]")
            .replacingOccurrences(of: "numa_node_cpus = [\"0-1\"]", with: "numa_node_cpus = [\"\(CPUList.format(0...max(1, allowed.last!)))\"]")
        let path = Self.tempPath("spindle")
        defer { unlink(path) }
        try ProfileFiles.writeAtomically(try ProfileFiles.compile(toml: toml, name: "t.toml"), to: path)
        var warnings: [String] = []
        let cfg = try Engine.Configuration(profile: path) { warnings.append($0) }
        #expect(cfg.cpus == [allowed[0]])
        #expect(warnings.contains { $0.contains("host.cpu_model = \"Test CPU\"") })  // compiled for another host
    }

    @Test("profile-load samples one duration per load")
    func loadBenchmark() throws {
        let path = Self.tempPath("spindle")
        defer { unlink(path) }
        try ProfileFiles.writeAtomically(try Support.baseBytes(), to: path)
        let samples = try ProfileLoadBenchmark.run(path: path, iterations: 50)
        #expect(samples.count == 50)
        #expect(samples.allSatisfy { $0 > .zero })
        if ProcessInfo.processInfo.environment["SPINDLE_PRINT_LOAD"] != nil {
            print("profile-load median (debug build, not a figure): \(samples.sorted()[samples.count / 2])")
        }
    }
}

@Suite("No profile: the embedded default")
struct DefaultConfigurationTests {
    @Test("with no profile the engine takes hostDefault through validation and logs one line")
    func noProfile() throws {
        var lines: [String] = []
        let cfg = try Engine.Configuration.resolve(profile: nil) { lines.append($0) }
        #expect(cfg == Engine.Configuration.hostDefault)
        #expect(cfg.lanes.map(\.name) == ["critical", "high", "normal", "bulk"])
        #expect(lines.count == 1)
        #expect(lines[0].hasPrefix("spindle: no profile; using the embedded default"))
    }
}
