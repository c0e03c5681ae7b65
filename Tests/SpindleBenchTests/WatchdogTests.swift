import Foundation
import Testing

@testable import SpindleBench

/// `spindle bench` never hangs: a round in which nothing is handled ends the run with exit code 1
/// and a diagnostic. Driven through the built executable, as a user runs it.
@Suite("The harness's stall watchdog")
struct WatchdogTests {
    /// The `spindle` executable SwiftPM builds next to the test bundle.
    static let executable: String = {
        let me = Bundle.main.executableURL ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("spindle").path
    }()

    /// Runs `spindle arguments…` with extra environment; kills it after `limit` seconds (a hang
    /// fails the test instead of hanging it). Returns exit status, stderr and whether it was killed.
    static func run(_ arguments: [String], environment: [String: String], limit: Double) throws -> (
        status: Int32, stderr: String, killed: Bool, pid: Int32
    ) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        try p.run()
        var killed = false
        if exited.wait(timeout: .now() + limit) == .timedOut {
            killed = true
            kill(p.processIdentifier, SIGKILL)
            exited.wait()
        }
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (p.terminationStatus, text, killed, p.processIdentifier)
    }

    /// A Spindle round whose handler never returns (the test hook SPINDLE_BENCH_STALL_AFTER): the
    /// run ends within the stall timeout with exit 1, naming the round and each worker's state.
    @Test("a stalled round ends the run with exit 1 and the workers' state")
    func stalledRoundExitsOne() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable), "\(Self.executable)")
        let started = Date()
        let r = try Self.run(
            ["bench", "foreign-thread", "--quick", "--runs", "1", "--no-progress", "--stall-timeout", "1"],
            environment: ["SPINDLE_BENCH_STALL_AFTER": "64"], limit: 60)
        #expect(!r.killed, "spindle bench hung: killed after 60 s")
        #expect(r.status == 1, "exit status \(r.status); stderr: \(r.stderr)")
        #expect(r.stderr.contains("stalled: foreign-thread: warm-up, spindle: no event handled for 1.0 s"), "\(r.stderr)")
        #expect(r.stderr.contains("worker 1: sleeping"), "\(r.stderr)")
        #expect(r.stderr.contains("pending critical"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 30)
        // no temporary profile left behind by the early exit (it is made only for profile-load)
        let leftover = FileManager.default.temporaryDirectory.appendingPathComponent("spindle-bench-\(r.pid).spindle")
        #expect(!FileManager.default.fileExists(atPath: leftover.path))
    }

    /// The option is checked like the others.
    @Test("--stall-timeout out of range is refused")
    func stallTimeoutValidated() {
        #expect(throws: BenchError.self) { try BenchOptions(stallTimeout: 0).resolve() }
        #expect(throws: BenchError.self) { try BenchOptions(stallTimeout: 4000).resolve() }
        var config = BenchConfig(engine: .hostDefault, engineSource: "embedded default")
        BenchOptions(stallTimeout: 2.5).apply(to: &config)
        #expect(config.stallSeconds == 2.5)
    }
}
