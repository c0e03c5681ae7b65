import Foundation
import Spindle
import SpindleTesting
import Synchronization
import Testing

/// The test engine against the real one: the same builder code and the same input give the same
/// handled order, event for event. One worker; a seed event whose handler queues a backlog on
/// every lane of its own worker (so nothing from outside races the real worker); bulk handlers
/// that post to the strict lane now and then (batches cut short), high handlers that post more
/// bulk work. Whatever follows the seed is decided by the scheduler alone.
@Suite struct CrossCheckTests {
    struct Seed: InlineEvent { var n: UInt32 }

    final class Order: Sendable {
        let log = Mutex<[UInt64]>([])
        func note(_ lane: Int, _ seq: UInt32) { log.withLock { $0.append(UInt64(lane) << 32 | UInt64(seq)) } }
        var all: [UInt64] { log.withLock { $0 } }
    }

    /// Registers the scenario on `builder`; returns the seed's kind.
    static func scenario(_ builder: inout Engine.Builder, _ order: Order) throws -> EventKind<Seed> {
        let lanes = (0..<4).map { Lane(index: $0) }
        let critical = try builder.register(Job.self) { j, ctx in order.note(ctx.lane.index, j.seq) }
        let bulk = try builder.register(Halt.self) { h, ctx in
            order.note(ctx.lane.index, h.symbol)
            if h.symbol % 37 == 0 { try ctx.post(Job(seq: 10_000 + h.symbol), as: critical, lane: lanes[0]) }
        }
        let high = try builder.register(Probe.self) { p, ctx in
            order.note(ctx.lane.index, UInt32(p.n))
            if p.n % 5 == 0 { try ctx.post(Halt(symbol: 20_000 + UInt32(p.n)), as: bulk, lane: lanes[3]) }
        }
        let seed = try builder.register(Seed.self) { s, ctx in
            for i in 0..<s.n {
                try ctx.post(Halt(symbol: i), as: bulk, lane: lanes[3])
                if i < 200 { try ctx.post(Probe(n: UInt8(i % 200)), as: high, lane: lanes[1]) }
                if i < 150 { try ctx.post(Job(seq: i), as: critical, lane: lanes[0]) }
                if i < 300 { try ctx.post(Job(seq: 5_000 + i), as: critical, lane: lanes[2]) }
            }
        }
        return seed
    }

    /// Every event enqueued on the engine was handled (all come from handlers, so none follows).
    static func quiescent(_ engine: Engine) -> Bool {
        let lanes = (0..<engine.configuration.lanes.count).map { engine.stats(lane: Lane(index: $0)) }
        return lanes.reduce(0) { $0 + $1.handled } == lanes.reduce(0) { $0 + $1.enqueued }
    }

    @Test func sameOrderAsTheRealEngine() throws {
        var config = Engine.Configuration.hostDefault
        config.cpus = Array(config.cpus.prefix(1))

        let realOrder = Order()
        var realBuilder = Engine.Builder(configuration: config)
        let realSeed = try Self.scenario(&realBuilder, realOrder)
        let engine = try realBuilder.start()
        try engine.post(Seed(n: 1_000), as: realSeed, lane: Lane(index: 3), to: .worker(WorkerID(0)))
        let deadline = ContinuousClock.now + .seconds(20)
        while !Self.quiescent(engine) && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(Self.quiescent(engine), "the real engine did not finish in 20 s:\n\(engine.stallReport())")
        let report = try engine.shutdownBlocking(deadline: .now + .seconds(5))
        #expect(report.drained, "the real engine did not drain: \(report)")

        let testOrder = Order()
        var testBuilder = Engine.Builder(configuration: config)
        let testSeed = try Self.scenario(&testBuilder, testOrder)
        let test = try TestEngine(testBuilder)
        try test.post(Seed(n: 1_000), as: testSeed, lane: Lane(index: 3), to: .worker(WorkerID(0)))
        try test.runUntilIdle()

        let real = realOrder.all
        let simulated = testOrder.all
        #expect(real.count > 1_650)  // the seed's backlog (1,650) and what its handlers posted
        #expect(simulated.count == real.count)
        if let i = zip(real, simulated).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            func show(_ a: [UInt64]) -> String {
                a[max(0, i - 3)..<min(a.count, i + 4)].map { "lane \($0 >> 32) #\($0 & 0xFFFF_FFFF)" }.joined(
                    separator: ", ")
            }
            Issue.record(
                "orders differ first at event \(i) of \(real.count): real engine \(show(real)); test engine \(show(simulated))"
            )
        }
    }
}
