import Foundation
import Testing

@testable import Spindle

extension EngineSuites {
    /// A known engine bug, kept visible: a post from another thread that starts just before
    /// `shutdown` can be accepted (it returns `.enqueued`) and published after the workers found
    /// every lane empty and exited. The event is never handled and the report still says
    /// "drained". `sp_foreign_post` (CSupport/post.c) checks the engine state before it publishes
    /// into the ring, and nothing orders a producer between the two against shutdown. (A fix:
    /// close each MPSC ring with a bit in the word producers reserve on, so that reservation and
    /// closing are ordered by the same atomic.) Seen in about 3 % of shutdowns here.
    @Suite(.serialized)
    struct ShutdownRaceTests {
        @Test func aPostRacingShutdownIsHandledOrRefused() throws {
            var lost = 0
            var drainedButLost = 0
            for _ in 0..<200 {
                var builder = Engine.Builder(configuration: testConfig(workers: 1))
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
            withKnownIssue("a post racing shutdown can be accepted and never handled", isIntermittent: true) {
                #expect(
                    lost == 0,
                    "\(lost) accepted events never handled in 200 shutdowns (\(drainedButLost) reports said drained)")
            }
        }
    }
}
