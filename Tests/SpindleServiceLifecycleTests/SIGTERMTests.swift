import Foundation
import Logging
import ServiceLifecycle
import Spindle
import SpindleServiceLifecycle
import Testing

/// A real SIGTERM to a process running an engine in a `ServiceGroup` that traps it: the group owns
/// the signal (the engine installs no handler), graceful shutdown drains every lane, `run()`
/// returns, and the process exits 0 with every accepted event handled. In a child process, so the
/// signal and the group's disposition for it stay there.
struct SIGTERMTests {
    @Test func sigtermDrainsTheEngineAndTheProcessExitsCleanly() async {
        // The exit code names the step that failed (see `child()`); its stderr says why.
        await #expect(processExitsWith: .success) {
            await SIGTERMTests.child()
        }
    }

    /// Exit codes name the step that failed: 0 only when everything held.
    static func child() async {
        func fail(_ code: Int32, _ why: String) -> Never {
            FileHandle.standardError.write(Data("sigterm child: \(why)\n".utf8))
            exit(code)
        }
        let config = serviceTestConfig()
        let lanes = config.lanes.count
        var builder = Engine.Builder(configuration: config)
        let gate = Gate()
        let handled = Tally(lanes: lanes)
        let posted = Tally(lanes: lanes)
        guard let hold = try? builder.register(Hold.self, handler: { _, _ in gate.hold() }),
            let ticks = try? builder.register(Tick.self, handler: { _, ctx in handled.add(ctx.lane.index) }),
            let probes = try? builder.register(Probe.self, handler: { _, _ in }),
            let engine = try? builder.start()
        else { fail(10, "engine did not start") }
        for w in 0..<engine.workerCount {
            guard
                (try? engine.post(Hold(worker: UInt32(w)), as: hold, lane: Lane(index: 0), to: .worker(WorkerID(w))))
                    != nil
            else { fail(11, "hold post refused") }
        }
        guard gate.waitUntilHeld(engine.workerCount) else { fail(12, "workers never entered the gate") }

        let service = SpindleService(engine: engine, drainTimeout: .seconds(60))
        let group = ServiceGroup(
            services: [service], gracefulShutdownSignals: [.sigterm], cancellationSignals: [], logger: quiet)
        let run = Task { try await group.run() }
        // The group traps SIGTERM with a DispatchSource: on Linux libdispatch then installs its
        // own handler (elsewhere the disposition is SIG_IGN). Either way the group owns it; a
        // handler anywhere else would be the engine's, which must install none.
        let deadline = Date().addingTimeInterval(10)
        while true {
            var sa = sigaction()
            sigaction(SIGTERM, nil, &sa)
            let handler = unsafeBitCast(sa.__sigaction_handler.sa_handler, to: Int.self)
            if handler == unsafeBitCast(SIG_IGN, to: Int.self) { break }
            if handler != unsafeBitCast(SIG_DFL, to: Int.self) {
                let owner = mappedFile(at: handler)
                guard owner.hasSuffix("/libdispatch.so") else {
                    fail(13, "SIGTERM's handler is in \(owner), not libdispatch (the group's DispatchSource)")
                }
                break
            }
            if Date() > deadline { fail(14, "the group never trapped SIGTERM") }
            try? await Task.sleep(for: .milliseconds(1))  // polling a disposition, bounded above
        }
        // A backlog in lanes 1…, then the signal; probes (lane 0) go on until intake closes.
        for i in 0..<(1000 * lanes) {
            let lane = 1 + i % (lanes - 1)
            if (try? engine.post(Tick(seq: UInt64(i)), as: ticks, lane: Lane(index: lane), to: .spread)) != nil {
                posted.add(lane)
            }
        }
        kill(getpid(), SIGTERM)
        guard postUntilStopped(engine, probes, accepted: Tally(lanes: 1)) else {
            fail(15, "intake still open 10 s after SIGTERM")
        }
        gate.open(engine.workerCount)
        do {
            try await finish(run, within: 30, "ServiceGroup.run after SIGTERM", orElse: engine.stopNow).get()
        } catch {
            engine.stopNow()
            fail(16, "\(error)")
        }
        // Lane 0 (the probes) is left out: see `probeRace`.
        guard let report = service.shutdownReport, report.unhandled.dropFirst().allSatisfy({ $0 == 0 }) else {
            fail(17, "not drained: \(String(describing: service.shutdownReport))")
        }
        guard handled.all.dropFirst() == posted.all.dropFirst(), posted.all.dropFirst().allSatisfy({ $0 > 0 }) else {
            fail(18, "handled \(handled.all), posted \(posted.all)")
        }
        exit(0)
    }
}

/// The file mapped at `address` (from /proc/self/maps): which library a signal handler is in.
func mappedFile(at address: Int) -> String {
    let maps = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd()).flatMap { $0 }
    for line in String(decoding: maps ?? Data(), as: UTF8.self).split(separator: "\n") {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        let r = f[0].split(separator: "-").compactMap { Int($0, radix: 16) }
        if r.count == 2, (r[0]..<r[1]).contains(address) { return f.count > 5 ? String(f[5]) : "an anonymous mapping" }
    }
    return "no mapping"
}
