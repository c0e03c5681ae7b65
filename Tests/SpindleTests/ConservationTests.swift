import CSpindle
import Foundation
import Testing

@testable import Spindle

extension EngineSuites {
    /// Nothing is lost: every post is exactly one of enqueued, rejected, dropped; enqueued = handled +
    /// pending; a boxed payload is released exactly once. Expected numbers come from the producers'
    /// and handlers' own tallies, never from the engine's counters.
    @Suite(.serialized)
    struct ConservationTests {
        /// Outcomes tallied by producers, per destination (worker, lane).
        final class Outcomes: Sendable {
            let enqueued: Grid, rejected: Grid, dropped: Grid
            let stopped = Grid(workers: 1, lanes: 1)
            init(workers: Int, lanes: Int) {
                enqueued = Grid(workers: workers, lanes: lanes)
                rejected = Grid(workers: workers, lanes: lanes)
                dropped = Grid(workers: workers, lanes: lanes)
            }
            func record(_ result: Result<PostResult, PostError>, worker: Int, lane: Int) {
                switch result {
                case .success(.enqueued): enqueued.add(worker, lane)
                case .success(.dropped): dropped.add(worker, lane)
                case .failure(let e):
                    rejected.add(worker, lane)
                    if e.code == .stopped { stopped.add(0, 0) }
                }
            }
            var total: Int { enqueued.total + rejected.total + dropped.total }
        }

        static func stressConfig(_ backend: Engine.Configuration.Backend) -> Engine.Configuration {
            var c = testConfig(backend: backend)
            c.lanes[1].capacity = 64
            c.lanes[1].onFull = .drop
            c.lanes[2].capacity = 64
            c.lanes[2].onFull = .reject
            c.lanes[3].capacity = 128
            c.lanes[3].onFull = .block(timeout: .milliseconds(1))
            return c
        }

        @Test(arguments: backends)
        func everyPostIsAccountedForThroughShutdownMidFlood(backend: Engine.Configuration.Backend) throws {
            let config = Self.stressConfig(backend)
            let workers = config.cpus.count, lanes = config.lanes.count
            let outcomes = Outcomes(workers: workers, lanes: lanes)
            let handled = Grid(workers: workers, lanes: lanes)
            let postsPerThread = 100_000
            let liveBefore = Tracker.live.load(ordering: .relaxed)

            do {
                var builder = Engine.Builder(configuration: config)
                let kinds = LateBox<EventKind<Tick>?>(nil)
                let ticks = try builder.register(Tick.self) { t, ctx in
                    handled.add(ctx.worker.rawValue, ctx.lane.index)
                    // A spawning event makes its worker a producer too (SPSC path, and its own queue).
                    guard t.tag == 1, let kind = kinds.value else { return }
                    for k in 0..<2 {
                        let dest = (ctx.worker.rawValue + k) % workers
                        let lane = Int(t.seq % UInt64(lanes))
                        let r: Result<PostResult, PostError> = Result { () throws(PostError) in
                            try ctx.post(Tick(seq: t.seq, producer: 9), as: kind, lane: Lane(index: lane), to: .worker(WorkerID(dest)))
                        }
                        outcomes.record(r, worker: dest, lane: lane)
                    }
                }
                kinds.value = ticks
                let boxed = try builder.register(Boxed.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
                let engine = try builder.start()
                let halfway = DispatchSemaphore(value: 0)
                let finished = DispatchSemaphore(value: 0)
                for p in 0..<2 {
                    Thread {
                        var rng = UInt64(p + 1) &* 0x9E37_79B9_7F4A_7C15
                        for i in 0..<postsPerThread {
                            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                            let w = Int((rng >> 33) % UInt64(workers)), l = Int((rng >> 40) % UInt64(lanes))
                            let r: Result<PostResult, PostError>
                            if i % 4 == 0 {
                                let e = Boxed(tracker: Tracker(), seq: UInt64(i))
                                r = Result { () throws(PostError) in try engine.post(e, as: boxed, lane: Lane(index: l), to: .worker(WorkerID(w))) }
                            } else {
                                let t = Tick(seq: UInt64(i), producer: UInt32(p), tag: i % 7 == 0 ? 1 : 0)
                                r = Result { () throws(PostError) in try engine.post(t, as: ticks, lane: Lane(index: l), to: .worker(WorkerID(w))) }
                            }
                            outcomes.record(r, worker: w, lane: l)
                            if i == postsPerThread / 2 { halfway.signal() }
                        }
                        finished.signal()
                    }.start()
                }
                halfway.wait()
                halfway.wait()
                let report = try engine.shutdownBlocking(deadline: .now + .seconds(10))
                #expect(finished.wait(timeout: .now() + 60) == .success)
                #expect(finished.wait(timeout: .now() + 60) == .success)

                // Every post the producers made has exactly one outcome.
                let spawned = outcomes.enqueued.total + outcomes.rejected.total + outcomes.dropped.total - 2 * postsPerThread
                #expect(spawned >= 0 && spawned % 2 == 0)
                var sawFull = false
                for w in 0..<workers {
                    for l in 0..<lanes {
                        let s = engine.stats(worker: WorkerID(w), lane: Lane(index: l))
                        #expect(s.enqueued == UInt64(outcomes.enqueued[w, l]), "enqueued w\(w) l\(l)")
                        #expect(s.rejected == UInt64(outcomes.rejected[w, l]), "rejected w\(w) l\(l)")
                        #expect(s.dropped == UInt64(outcomes.dropped[w, l]), "dropped w\(w) l\(l)")
                        #expect(s.handled == UInt64(handled[w, l]), "handled w\(w) l\(l)")
                        #expect(s.enqueued == s.handled + s.pending, "enqueued = handled + pending w\(w) l\(l): \(s)")
                        if s.dropped > 0 { sawFull = true }
                    }
                }
                #expect(sawFull, "the flood never filled a lane")
                #expect(outcomes.stopped[0, 0] > 0, "shutdown did not happen mid-flood")
                #expect(report.perWorker.count == workers)
            }
            // The engine is gone: every box was released exactly once (never twice: that would crash
            // or drive the count below its start).
            #expect(eventually { Tracker.live.load(ordering: .relaxed) == liveBefore })
            #expect(Tracker.live.load(ordering: .relaxed) == liveBefore)
        }

        /// Boxed events: released after the handler, when rejected, and at shutdown when never handled.
        @Test func boxesAreReleasedExactlyOnceOnEveryPath() throws {
            let liveBefore = Tracker.live.load(ordering: .relaxed)
            var config = testConfig(workers: 1)
            config.lanes[3].capacity = 64
            do {
                var builder = Engine.Builder(configuration: config)
                let gate = WorkerGate()
                let handled = Grid(workers: 1, lanes: 4)
                let boxed = try builder.register(Boxed.self) { b, ctx in
                    handled.add(0, ctx.lane.index)
                    #expect(Tracker.live.load(ordering: .relaxed) > 0)
                }
                let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
                let engine = try builder.start()
                try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 0), to: .worker(WorkerID(0)))
                #expect(gate.waitUntilHeld())
                var rejected = 0
                for i in 0..<100 {  // 64 fit, 36 rejected (released by the post)
                    do throws(PostError) { try engine.post(Boxed(tracker: Tracker(), seq: UInt64(i)), as: boxed, lane: Lane(index: 3), to: .worker(WorkerID(0))) }
                    catch { rejected += 1 }
                }
                #expect(rejected == 36)
                #expect(Tracker.live.load(ordering: .relaxed) == liveBefore + 64)
                // Shut down with the worker still held: the deadline passes with 64 unhandled.
                let stopper = Thread { _ = try? engine.shutdownBlocking(deadline: .now + .milliseconds(50)) }
                stopper.start()
                #expect(eventually { engine.stats(worker: WorkerID(0), lane: Lane(index: 3)).rejected == 36 })
                gate.open()
                let report = try engine.shutdownBlocking(deadline: .now + .seconds(5))
                #expect(report.unhandled[3] + handled[0, 3] == 64)
            }
            #expect(eventually { Tracker.live.load(ordering: .relaxed) == liveBefore })
        }
    }
}

/// A box for values that exist only after registration or start (written once, before any handler
/// can read it: `start()` or a post orders the write before the reads).
final class LateBox<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}
