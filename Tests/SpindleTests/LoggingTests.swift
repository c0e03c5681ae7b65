import CTestSupport
import Foundation
import InMemoryLogging
import Logging
import Testing

@testable import Spindle

extension EngineSuites {
    /// The engine logs through the `Logger` it is given (swift-log), never a global one: start-up
    /// facts once, problems once as warnings, nothing from the workers.
    @Suite(.serialized)
    struct LoggingTests {
        /// Without a logger the builder logs nothing: a library does not choose its application's
        /// logging backend.
        @Test func theDefaultLoggerIsANoOp() {
            let builder = Engine.Builder()
            #expect(builder.logger.handler is SwiftLogNoOpLogHandler)
            #expect(Engine.Builder(configuration: testConfig()).logger.handler is SwiftLogNoOpLogHandler)
        }

        /// One `info` line with the start-up facts (backend, workers, CPUs), one `debug` line per
        /// worker with `spindle.worker`, and not one more record while thousands of events and a
        /// shutdown go through the workers.
        @Test(arguments: backends)
        func startUpFactsOnceAndNothingFromTheWorkerLoop(backend: Engine.Configuration.Backend) throws {
            var handler = InMemoryLogHandler()
            handler.logLevel = .trace  // debug lines too
            let log = handler
            let config = testConfig(backend: backend)
            var builder = Engine.Builder(configuration: config, logger: Logger(label: "test", factory: { _ in log }))
            let handled = Grid(workers: 8, lanes: 4)
            let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
            let engine = try builder.start()
            let atStart = log.entries
            let infos = atStart.filter { $0.level == .info }
            #expect(infos.count == 1, "\(atStart)")
            let facts = try #require(infos.first).metadata
            #expect(facts["spindle.backend"] == (backend == .ioUring ? "io_uring" : "epoll"))
            #expect(facts["spindle.workers"] == "\(config.cpus.count)")
            #expect(facts["spindle.cpus"] == "\(config.cpus.map(String.init).joined(separator: ","))")
            let perWorker = atStart.filter { $0.level == .debug }.compactMap {
                $0.metadata["spindle.worker"]?.description
            }
            #expect(perWorker == (0..<config.cpus.count).map { "\($0)" })
            #expect(!atStart.contains { $0.level >= .warning }, "a warning with an explicit backend: \(atStart)")

            for i in 0..<5000 {
                try postRetrying(engine, Tick(seq: UInt64(i), producer: 0), ticks, Lane(index: i % 4), .spread)
            }
            #expect(eventually { handled.total == 5000 })
            #expect(engine.stop().drained)
            #expect(log.entries.count == atStart.count, "logged after start: \(log.entries.dropFirst(atStart.count))")
        }

        /// Where io_uring is denied, `auto` falls back to epoll and says so: one warning, with the
        /// reason, and the start-up line names epoll. (A child process: seccomp stays installed.)
        @Test func theEpollFallbackIsOneWarning() async {
            await #expect(processExitsWith: .success) {
                precondition(cts_deny_io_uring() == 0, "seccomp filter not installed")
                let log = InMemoryLogHandler()
                var builder = Engine.Builder(
                    configuration: testConfig(backend: .auto), logger: Logger(label: "test", factory: { _ in log }))
                _ = try builder.register(Tick.self) { _, _ in }
                let engine = try builder.start()
                let warnings = log.entries.filter { $0.level == .warning }
                precondition(warnings.count == 1, "\(log.entries)")
                precondition(warnings[0].metadata["spindle.reason"] != nil, "\(warnings)")
                precondition(
                    log.entries.contains { $0.level == .info && $0.metadata["spindle.backend"] == "epoll" },
                    "\(log.entries)")
                precondition(engine.stop().drained)
            }
        }
    }
}
