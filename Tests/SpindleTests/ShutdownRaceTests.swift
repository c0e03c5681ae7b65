import Foundation
import Testing

@testable import Spindle

extension EngineSuites {
    /// A post from another thread that starts just before `shutdown` is either handled or refused
    /// as `.stopped` — never accepted and then left behind. It used to be: `sp_foreign_post`
    /// checked the engine state, then claimed a ring slot, and a shutdown could find the engine
    /// quiescent and let the workers exit in between (seen in ~3 % of shutdowns). Now shutdown
    /// closes every foreign ring (a bit in the word producers claim on) before it tells the workers
    /// to drain, so a claim is either counted in the drain or refused.
    @Suite(.serialized)
    struct ShutdownRaceTests {
        @Test(arguments: backends)
        func aPostRacingShutdownIsHandledOrRefused(backend: Engine.Configuration.Backend) throws {
            var lost = 0
            var drainedButLost = 0
            for _ in 0..<200 {
                var builder = Engine.Builder(configuration: testConfig(workers: 1, backend: backend))
                let handled = Grid(workers: 1, lanes: 1)
                let accepted = Grid(workers: 1, lanes: 1)
                let ticks = try builder.register(Tick.self) { _, _ in handled.add(0, 0) }
                let engine = try builder.start()
                let producer = Thread {
                    var seq: UInt64 = 0
                    while true {
                        do {
                            try engine.post(
                                Tick(seq: seq, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(0)))
                            accepted.add(0, 0)
                        } catch let error as PostError where error.code == .stopped {
                            return
                        } catch {
                            sched_yield()  // lane full: retry
                        }
                        seq += 1
                    }
                }
                producer.start()
                #expect(eventually { accepted[0, 0] >= 100 }, "the producer never got going")
                let report = engine.stop()
                #expect(eventually { producer.isFinished }, "the producer was never refused")
                if handled[0, 0] != accepted[0, 0] {
                    lost += accepted[0, 0] - handled[0, 0]
                    if report.drained { drainedButLost += 1 }
                }
            }
            #expect(lost == 0, "\(lost) accepted events never handled in 200 shutdowns (\(drainedButLost) reports said drained)")
        }
    }
}
