import CSpindle
import Synchronization
import Testing

@testable import Spindle

struct Tick: InlineEvent { var seq: UInt64; var producer: UInt32 }

@Suite(.serialized)
struct SmokeTests {
    @Test func postsAreHandled() async throws {
        var config = Engine.Configuration.hostDefault
        config.spin = .microseconds(5)
        var builder = Engine.Builder(configuration: config)
        let bulk = try builder.lane(named: "bulk")
        let seen = Atomic<Int>(0)
        let counter = SendableBox(seen)
        _ = counter
        let counts = builder.coreLocal { _ in 0 }
        let ticks = try builder.register(Tick.self, using: counts) { tick, count, ctx in
            count += 1
            Counters.handled.add(1, ordering: .relaxed)
        }
        let engine = try builder.start()
        for i in 0..<1000 {
            try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .spread)
        }
        let report = await engine.shutdown(deadline: .now + .seconds(5))
        #expect(report.drained)
        #expect(Counters.handled.load(ordering: .relaxed) == 1000)
    }
}

final class SendableBox<T: ~Copyable>: @unchecked Sendable { var value: T; init(_ v: consuming T) { value = v } }
enum Counters { static let handled = Atomic<Int>(0) }
