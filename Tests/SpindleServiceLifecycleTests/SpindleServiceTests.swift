import Foundation
import InMemoryLogging
import Logging
import ServiceLifecycle
import Spindle
import SpindleServiceLifecycle
import Testing

/// An engine in a `ServiceGroup`: graceful shutdown (triggered, and a real SIGTERM in a child
/// process) stops intake and drains every lane before `run()` returns; cancellation stops at a
/// bounded deadline and says what it left.
@Suite(.serialized)
struct SpindleServiceTests {
    /// A backlog in lanes 1… behind held workers; graceful shutdown closes intake (probes in lane
    /// 0 are refused); once the workers go on, every backlog event is handled before `run()`
    /// returns, and the report agrees.
    @Test func gracefulShutdownDrainsEveryLaneBeforeRunReturns() async throws {
        let config = serviceTestConfig()
        let lanes = config.lanes.count
        var builder = Engine.Builder(configuration: config)
        let gate = Gate()
        let handled = Tally(lanes: lanes)
        let posted = Tally(lanes: lanes)
        let probed = Tally(lanes: 1)
        let accepted = Tally(lanes: 1)
        let hold = try builder.register(Hold.self) { _, _ in gate.hold() }
        let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.lane.index) }
        let probes = try builder.register(Probe.self) { _, _ in probed.add(0) }
        let engine = try builder.start()
        var before = sigaction()
        sigaction(SIGTERM, nil, &before)
        for w in 0..<engine.workerCount {
            try engine.post(Hold(worker: UInt32(w)), as: hold, lane: Lane(index: 0), to: .worker(WorkerID(w)))
        }
        try #require(gate.waitUntilHeld(engine.workerCount), "workers never entered the gate")
        for i in 0..<(500 * lanes * engine.workerCount) {
            let lane = 1 + i % (lanes - 1)
            if (try? engine.post(Tick(seq: UInt64(i)), as: ticks, lane: Lane(index: lane), to: .spread)) != nil {
                posted.add(lane)
            }
        }

        let service = SpindleService(engine: engine, drainTimeout: .seconds(60))
        let group = ServiceGroup(
            services: [service], gracefulShutdownSignals: [], cancellationSignals: [], logger: quiet)
        let run = Task { try await group.run() }
        await group.triggerGracefulShutdown()
        let closed = postUntilStopped(engine, probes, accepted: accepted)  // the drain has begun
        gate.open(engine.workerCount)
        #expect(closed, "intake still open 10 s after graceful shutdown")
        do {
            try await finish(run, within: 30, "ServiceGroup.run after graceful shutdown", orElse: engine.stopNow).get()
        } catch let e as TimedOut {
            Issue.record("\(e)")
            return
        }
        // The workers have exited when run() returns: these counts are final.
        #expect(
            Array(handled.all.dropFirst()) == Array(posted.all.dropFirst()),
            "handled \(handled.all), posted \(posted.all)")
        #expect(posted.all.dropFirst().allSatisfy { $0 > 0 }, "a lane got no backlog: \(posted.all)")
        let report = try #require(service.shutdownReport)
        #expect(report.totals.dropFirst().map { Int($0.enqueued) } == Array(posted.all.dropFirst()))
        #expect(report.unhandled.dropFirst().allSatisfy { $0 == 0 }, "\(report)")
        withKnownIssue(Comment(rawValue: probeRace), isIntermittent: true) {
            #expect(probed[0] == accepted[0], "probes: \(accepted[0]) accepted, \(probed[0]) handled")
            #expect(report.drained, "\(report)")
        }
        // The engine registered no signal: SIGTERM's disposition is what it was before.
        var after = sigaction()
        sigaction(SIGTERM, nil, &after)
        #expect(
            unsafeBitCast(after.__sigaction_handler.sa_handler, to: Int.self)
                == unsafeBitCast(before.__sigaction_handler.sa_handler, to: Int.self))
    }

    /// Cancelled while waiting (no graceful shutdown): the lanes get `cancellationTimeout`, then
    /// the workers stop after their batch; what was left is counted, and handled + left = posted.
    @Test func cancellationStopsAtABoundedDeadline() async throws {
        try await cancelled(afterGracefulShutdown: false)
    }

    /// Cancelled during a long graceful drain: the drain is cut short `cancellationTimeout` later.
    @Test func cancellationCutsAGracefulDrainShort() async throws {
        try await cancelled(afterGracefulShutdown: true)
    }

    func cancelled(afterGracefulShutdown: Bool) async throws {
        var config = serviceTestConfig()
        config.slowBatchThreshold = nil
        let lanes = config.lanes.count
        var builder = Engine.Builder(configuration: config)
        let handled = Tally(lanes: lanes)
        let posted = Tally(lanes: lanes)
        let probed = Tally(lanes: 1)
        let accepted = Tally(lanes: 1)
        let gate = Gate()
        let hold = try builder.register(Hold.self) { _, _ in gate.hold() }
        // 1 ms per event: a backlog of thousands takes seconds, far more than the 100 ms allowed.
        let ticks = try builder.register(Tick.self) { _, ctx in
            usleep(1000)
            handled.add(ctx.lane.index)
        }
        let probes = try builder.register(Probe.self) { _, _ in probed.add(0) }
        let engine = try builder.start()
        for w in 0..<engine.workerCount {
            try engine.post(Hold(worker: UInt32(w)), as: hold, lane: Lane(index: 0), to: .worker(WorkerID(w)))
        }
        try #require(gate.waitUntilHeld(engine.workerCount))
        for i in 0..<(2000 * engine.workerCount) {
            let lane = 1 + i % (lanes - 1)
            try engine.post(
                Tick(seq: UInt64(i)), as: ticks, lane: Lane(index: lane), to: .worker(WorkerID(i % engine.workerCount)))
            posted.add(lane)
        }
        let log = InMemoryLogHandler()
        let service = SpindleService(
            engine: engine, drainTimeout: .seconds(600), cancellationTimeout: .milliseconds(100),
            logger: Logger(label: "test", factory: { _ in log }))
        let group = ServiceGroup(
            services: [service], gracefulShutdownSignals: [], cancellationSignals: [], logger: quiet)
        let run = Task { try await group.run() }
        if afterGracefulShutdown {
            await group.triggerGracefulShutdown()
            // Intake closed: the drain has begun (it would take seconds at 1 ms per event).
            #expect(postUntilStopped(engine, probes, accepted: accepted), "intake still open")
        }
        gate.open(engine.workerCount)
        run.cancel()
        do {
            _ = try await finish(run, within: 30, "ServiceGroup.run after cancellation", orElse: engine.stopNow)
        } catch {
            Issue.record("\(error)")
            return
        }
        let report = try #require(service.shutdownReport)
        #expect(!report.drained, "a multi-second backlog drained within 100 ms: \(report)")
        for l in 1..<lanes {
            #expect(
                handled[l] + report.unhandled[l] == posted[l],
                "lane \(l): handled \(handled[l]) + left \(report.unhandled[l]) ≠ posted \(posted[l])")
        }
        // One warning per lane that kept events, naming it (`spindle.lane`) and the count.
        let warned = log.entries.filter { $0.level == .warning }.map {
            "\($0.metadata["spindle.lane"] ?? "?") \($0.metadata["spindle.unhandled"] ?? "?")"
        }
        let left = zip(report.laneNames, report.unhandled).filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
        #expect(warned == left, "\(log.entries)")
        withKnownIssue(Comment(rawValue: probeRace), isIntermittent: true) {
            #expect(
                probed[0] + report.unhandled[0] == accepted[0],
                "probes: \(accepted[0]) accepted, \(probed[0]) handled, \(report.unhandled[0]) left")
        }
    }
}
