import CSpindle
import CTestSupport
import Foundation
import Logging
import Testing

@testable import Spindle

extension EngineSuites {
    /// Where io_uring is denied (a container's seccomp profile), `auto` falls back to epoll and the
    /// engine works; a configuration that insists on io_uring is refused at start, saying why.
    /// Each case runs in a child process: the seccomp filter cannot be removed once installed.
    @Suite(.serialized)
    struct BackendFallbackTests {
        @Test func autoFallsBackToEpollWhereIOUringIsDenied() async {
            await #expect(processExitsWith: .success) {
                precondition(cts_deny_io_uring() == 0, "seccomp filter not installed")
                var builder = Engine.Builder(configuration: testConfig(backend: .auto))
                let handled = Grid(workers: 8, lanes: 4)
                let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
                let engine = try builder.start()
                precondition(engine.backend == .epoll, "backend \(engine.backend)")
                for i in 0..<1000 { try postRetrying(engine, Tick(seq: UInt64(i), producer: 0), ticks, Lane(index: 2), .spread) }
                let report = engine.stop()
                precondition(report.drained && handled.total == 1000, "\(report)")
            }
        }

        /// Under `SPINDLE_TEST_DENY_IO_URING=1` (how scripts/test.sh runs the I/O suites a second
        /// time) the filter is on in this very process: `.auto` meets the fallback, says so once in
        /// the log, and a configuration that insists on io_uring is refused.
        @Test(.enabled(if: ioUringDenied, "only under SPINDLE_TEST_DENY_IO_URING=1"))
        func theWholeProcessRunsWhereIOUringIsDenied() throws {
            let lines = Locked<[String]>([])
            var logger = Logger(label: "spindle.test") { _ in CapturingLogHandler(lines) }
            logger.logLevel = .info
            var builder = Engine.Builder(configuration: testConfig(backend: .auto), logger: logger)
            _ = try builder.register(Tick.self) { _, _ in }
            let engine = try builder.start()
            #expect(engine.backend == .epoll)
            _ = engine.stop()
            let fallbacks = lines.withLock { $0.filter { $0.contains("falling back to epoll") } }
            #expect(fallbacks.count == 1, "fallback lines: \(lines.withLock { $0 })")
            var insist = Engine.Builder(configuration: testConfig(backend: .ioUring), logger: logger)
            _ = try insist.register(Tick.self) { _, _ in }
            #expect(throws: SpindleError.self) { _ = try insist.start() }
        }

        /// Under `SPINDLE_TEST_URING_WITHHELD` (how scripts/test.sh runs the I/O suites a third time)
        /// the engine reports the withheld features, each with one warning at start, and uses the
        /// single-shot forms (the rest of the suites check they behave the same).
        @Test(.enabled(if: uringWithheld != 0, "only under SPINDLE_TEST_URING_WITHHELD"))
        func olderKernelFormsAreAnnouncedOnce() throws {
            let lines = Locked<[String]>([])
            var logger = Logger(label: "spindle.test") { _ in CapturingLogHandler(lines) }
            logger.logLevel = .info
            var builder = Engine.Builder(configuration: testConfig(backend: .ioUring), logger: logger)
            try builder.listen(on: .loopback(port: 0), lane: Lane(index: 2)) { _, _ in }
            let engine = try builder.start()
            let features = sp_engine_features(engine.handle)
            _ = engine.stop()
            #expect(features & uringWithheld == 0, "withheld \(uringWithheld), engine has \(features)")
            let all = lines.withLock { $0 }
            for (bit, words) in [(SP_FEAT_MULTISHOT_POLL, "no multishot poll"), (SP_FEAT_MULTISHOT_RECV, "no multishot accept/recv"),
                                 (SP_FEAT_BUF_RING, "no provided-buffer rings")] where uringWithheld & bit != 0 {
                #expect(all.filter { $0.contains(words) }.count == 1, "\(words): \(all)")
            }
        }

        /// A kernel whose io_uring lacks an opcode the engine submits (faked: PROVIDE_BUFFERS withheld)
        /// is found by the probe at start: `auto` falls back to epoll saying which opcode, and a
        /// configuration that insists on io_uring is refused with the same words — never a failure later.
        @Test(.disabled(if: ioUringDenied, "io_uring is denied in this process"))
        func aMissingOpcodeIsFoundAtStart() throws {
            let before = sp_test_set_uring_withheld(uringWithheld | SP_TEST_NO_PROVIDE_BUFFERS)
            defer { sp_test_set_uring_withheld(before) }
            let lines = Locked<[String]>([])
            var logger = Logger(label: "spindle.test") { _ in CapturingLogHandler(lines) }
            logger.logLevel = .info
            var builder = Engine.Builder(configuration: testConfig(backend: .auto), logger: logger)
            _ = try builder.register(Tick.self) { _, _ in }
            let engine = try builder.start()
            #expect(engine.backend == .epoll)
            _ = engine.stop()
            #expect(lines.withLock { $0 }.contains { $0.contains("IORING_OP_PROVIDE_BUFFERS") && $0.contains("falling back to epoll") },
                    "\(lines.withLock { $0 })")
            var insist = Engine.Builder(configuration: testConfig(backend: .ioUring), logger: logger)
            _ = try insist.register(Tick.self) { _, _ in }
            #expect { _ = try insist.start() } throws: { "\($0)".contains("IORING_OP_PROVIDE_BUFFERS") }
        }

        /// With io_uring denied, `auto` gives the same I/O sources on epoll: a periodic timer, a pipe
        /// watch, and a TCP echo over loopback, each with its exact counts.
        @Test func ioSourcesWorkOnTheFallbackWhereIOUringIsDenied() async {
            await #expect(processExitsWith: .success) {
                precondition(cts_deny_io_uring() == 0, "seccomp filter not installed")
                var builder = Engine.Builder(configuration: testConfig(backend: .auto))
                let ticks = Grid(workers: 1, lanes: 1), piped = Grid(workers: 1, lanes: 1)
                var fds: [Int32] = [0, 0]
                precondition(pipe(&fds) == 0)
                _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
                let reader = fds[0]
                try builder.timer(every: .milliseconds(1), lane: Lane(index: 0)) { t, _ in if !t.isCancelled { ticks.add(0, 0, 1 + t.coalesced) } }
                try builder.watch(fd: reader, lane: Lane(index: 3)) { _, _ in
                    var b = [UInt8](repeating: 0, count: 64)
                    while true {
                        let n = read(reader, &b, 64)
                        if n <= 0 { break }
                        piped.add(0, 0, n)
                    }
                }
                let listeners = try builder.listen(on: .loopback(port: 0), lane: Lane(index: 2)) { e, ctx in
                    if e.kind == .data { _ = try e.withBytes { s in try s.withUnsafeBytes { try ctx.send($0, on: e.connection) } } }
                }
                let engine = try builder.start()
                precondition(engine.backend == .epoll, "backend \(engine.backend)")
                precondition(write(fds[1], "hello", 5) == 5)
                let client = try TestClient(port: listeners[0].localPort!)
                let msg = patternBytes(3, 100_000)
                precondition(client.write(msg))
                precondition(client.read(msg.count) == msg, "echo")
                precondition(eventually { ticks.total >= 50 && piped.total == 5 }, "ticks \(ticks.total), piped \(piped.total)")
                let report = engine.stop()
                precondition(report.drained, "\(report)")
            }
        }

        @Test func forcedIOUringIsRefusedWhereDenied() async {
            await #expect(processExitsWith: .success) {
                precondition(cts_deny_io_uring() == 0, "seccomp filter not installed")
                do throws(SpindleError) {
                    _ = try Engine.Builder(configuration: testConfig(backend: .ioUring)).start()
                    preconditionFailure("started with io_uring denied")
                } catch {
                    precondition(error.code == .startFailed, "\(error.code)")
                    precondition(error.message.hasPrefix("engine.backend = io_uring: io_uring is not available here"), error.message)
                }
            }
        }
    }
}

/// Keeps every log line (level and message) for a test to read.
struct CapturingLogHandler: LogHandler {
    let lines: Locked<[String]>
    init(_ lines: Locked<[String]>) { self.lines = lines }
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let meta = (event.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        lines.withLock { $0.append("\(event.level): \(event.message) \(meta)") }
    }
}
