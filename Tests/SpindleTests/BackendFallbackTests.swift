import CTestSupport
import Foundation
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
