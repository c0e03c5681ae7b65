import CMallocCounter
import CSpindle
import Foundation
import Testing

@testable import Spindle

extension EngineSuites {
    /// What a full lane does (`reject`, `drop`, `block`), what happens after shutdown, what
    /// registration refuses, and that refusing allocates nothing.
    @Suite(.serialized)
    struct FullLaneTests {
        /// One worker held in a handler, lane `bulk` of capacity 64 with the given policy.
        func heldEngine(onFull: Engine.LaneConfiguration.OnFull, backend: Engine.Configuration.Backend = .auto)
            throws -> (Engine, WorkerGate, EventKind<Tick>, EventKind<Boxed>, Lane, Grid)
        {
            var config = testConfig(workers: 1, backend: backend)
            config.lanes[3].capacity = 64
            config.lanes[3].onFull = onFull
            var builder = Engine.Builder(configuration: config)
            let gate = WorkerGate()
            let handled = Grid(workers: 1, lanes: 4)
            let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
            let boxed = try builder.register(Boxed.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let critical = try builder.lane(named: "critical")
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: gates, lane: critical, to: .worker(WorkerID(0)))
            #expect(gate.waitUntilHeld())
            return (engine, gate, ticks, boxed, Lane(index: 3), handled)
        }

        @Test(arguments: backends)
        func rejectThrowsLaneFullNamingWorkerAndLane(backend: Engine.Configuration.Backend) throws {
            let (engine, gate, ticks, _, bulk, handled) = try heldEngine(onFull: .reject, backend: backend)
            for i in 0..<64 { try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0))) }
            var rejected = 0
            for i in 0..<10 {
                do {
                    try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0)))
                } catch {
                    #expect(error.code == .laneFull)
                    #expect(error.worker == WorkerID(0))
                    #expect(error.lane == bulk)
                    #expect(error.description.contains("worker 0") && error.description.contains("lane 3") && error.description.contains("lane full"))
                    rejected += 1
                }
            }
            #expect(rejected == 10)
            gate.open()
            #expect(eventually { handled[0, 3] == 64 })
            let report = engine.stop()
            let s = report.totals[3]
            #expect(s.enqueued == 64 && s.rejected == 10 && s.dropped == 0 && s.handled == 64 && s.pending == 0)
        }

        @Test(arguments: backends)
        func dropDiscardsTheNewestAndCountsIt(backend: Engine.Configuration.Backend) throws {
            let (engine, gate, ticks, _, bulk, _) = try heldEngine(onFull: .drop, backend: backend)
            let seen = Recorder<UInt64>()
            _ = seen
            var dropped = 0
            for i in 0..<100 {
                let r = try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0)))
                if r == .dropped { dropped += 1; #expect(i >= 64, "a queued event was displaced") }
            }
            #expect(dropped == 36)
            gate.open()
            let report = engine.stop()
            let s = report.totals[3]
            #expect(s.enqueued == 64 && s.dropped == 36 && s.rejected == 0 && s.handled == 64)
        }

        /// A foreign thread on a full `block` lane waits, and goes on when the worker frees room.
        @Test(arguments: backends)
        func blockWaitsForRoomThenEnqueues(backend: Engine.Configuration.Backend) throws {
            let (engine, gate, ticks, _, bulk, handled) = try heldEngine(onFull: .block(timeout: .seconds(30)), backend: backend)
            for i in 0..<64 { try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0))) }
            let done = DispatchSemaphore(value: 0)
            let outcome = Recorder<String>()
            Thread {
                do throws(PostError) {
                    try engine.post(Tick(seq: 64, producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0)))
                    outcome.append("enqueued")
                } catch { outcome.append("\(error.code)") }
                done.signal()
            }.start()
            // The producer cannot finish while the worker is held: the lane stays full.
            #expect(done.wait(timeout: .now() + 0.2) == .timedOut)
            gate.open()
            #expect(done.wait(timeout: .now() + 10) == .success)
            #expect(outcome.all == ["enqueued"])
            #expect(eventually { handled[0, 3] == 65 })
            let s = engine.stop().totals[3]
            #expect(s.enqueued == 65 && s.rejected == 0)
        }

        @Test func blockTimesOut() throws {
            let (engine, gate, ticks, _, bulk, _) = try heldEngine(onFull: .block(timeout: .milliseconds(20)))
            for i in 0..<64 { try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0))) }
            #expect(throws: PostError(.timedOut, worker: WorkerID(0), lane: bulk)) {
                try engine.post(Tick(seq: 64, producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0)))
            }
            gate.open()
            #expect(engine.stop().totals[3].rejected == 1)
        }

        /// A blocked producer is released with `stopped` at shutdown.
        @Test func blockReturnsStoppedAtShutdown() throws {
            let (engine, gate, ticks, _, bulk, _) = try heldEngine(onFull: .block(timeout: nil))
            for i in 0..<64 { try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0))) }
            let done = DispatchSemaphore(value: 0)
            let outcome = Recorder<PostError.Code>()
            Thread {
                do throws(PostError) { try engine.post(Tick(seq: 64, producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0))) } catch {
                    outcome.append(error.code)
                }
                done.signal()
            }.start()
            #expect(done.wait(timeout: .now() + 0.1) == .timedOut)
            let stopper = Thread { _ = engine.stop() }
            stopper.start()
            #expect(done.wait(timeout: .now() + 10) == .success)
            #expect(outcome.all == [.stopped])
            gate.open()
        }

        /// A worker never waits on a ring: posting to a full `block` lane from a handler rejects.
        @Test func workerPostingToFullBlockLaneGetsReject() throws {
            var config = testConfig(workers: 1)
            config.lanes[3].capacity = 64
            config.lanes[3].onFull = .block(timeout: nil)
            var builder = Engine.Builder(configuration: config)
            let results = Recorder<String>()
            let bulk = Lane(index: 3)
            let ticks = try builder.register(Tick.self) { _, _ in }
            let flood = try builder.register(Gate.self) { _, ctx in
                for i in 0..<65 {
                    do throws(PostError) { try ctx.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk); results.append("ok") } catch {
                        results.append("\(error.code)")
                    }
                }
            }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: flood, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { results.count == 65 })
            _ = engine.stop()
            #expect(results.all.filter { $0 == "ok" }.count == 64)
            #expect(results.all.last == "laneFull")
        }

        @Test(arguments: backends)
        func postingAfterShutdownIsRefused(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let ticks = try builder.register(Tick.self) { _, _ in }
            let engine = try builder.start()
            _ = engine.stop()
            #expect(throws: PostError(.stopped, worker: WorkerID(0), lane: Lane(index: 1))) {
                try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 1), to: .worker(WorkerID(0)))
            }
            #expect(engine.stats(worker: WorkerID(0), lane: Lane(index: 1)).rejected == 1)
            // Shutdown is idempotent.
            #expect(engine.stop().drained)
        }

        @Test func inlineEventOver48BytesIsRefusedAtRegistration() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1))
            #expect(MemoryLayout<Big>.size == 56)
            #expect(throws: SpindleError.self) { try builder.register(Big.self) { _, _ in } }
            do { _ = try builder.register(Big.self) { _, _ in } } catch {
                #expect(error.code == .eventTooLarge)
                #expect(error.message.contains("56 bytes"))
            }
            // Exactly 48 bytes is fine.
            _ = try builder.register(Fits.self) { _, _ in }
        }

        @Test func unknownLaneNameListsTheNames() throws {
            let builder = Engine.Builder(configuration: testConfig(workers: 1))
            do {
                _ = try builder.lane(named: "urgent")
                Issue.record("no error")
            } catch {
                #expect(error.code == .unknownLane)
                #expect(error.message == "no lane named \"urgent\"; this configuration has: critical, high, normal, bulk")
            }
        }

        @Test func noSuchWorkerIsRejected() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1))
            let ticks = try builder.register(Tick.self) { _, _ in }
            let engine = try builder.start()
            #expect(throws: PostError.self) {
                try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(7)))
            }
            do { try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(7))) } catch {
                #expect(error.code == .noSuchWorker)
            }
            _ = engine.stop()
        }

        /// Rejecting (and accepting) an inline post allocates nothing, counted by the malloc interposer.
        /// Swift Testing captures a backtrace (an allocation) for every thrown error unless
        /// SWT_SWIFT_ERROR_BACKTRACING_ENABLED=0, which the README's test command sets.
        @Test(.enabled(if: ProcessInfo.processInfo.environment["SWT_SWIFT_ERROR_BACKTRACING_ENABLED"] == "0",
                       "needs SWT_SWIFT_ERROR_BACKTRACING_ENABLED=0 (scripts/test.sh sets it)"),
              .enabled(if: spmc_available() == 1, "the malloc interposer is off under sanitizers"))
        func rejectingAndPostingAllocateNothing() throws {
            #expect(spmc_active() == 1, "malloc interposer not linked")
            let (engine, gate, ticks, _, bulk, _) = try heldEngine(onFull: .reject)
            let (accepted, rejected, allocations) = Self.postAndCount(engine, ticks, bulk)
            #expect(accepted == 64)
            #expect(rejected == 1000)
            #expect(allocations == 0, "\(allocations) allocations for 64 posts and 1000 rejections")
            gate.open()
            _ = engine.stop()
        }

        /// Posts until the lane is full, then 1000 more, counting this thread's allocations around it
        /// (after one warm-up post, which may instantiate type metadata once).
        static func postAndCount(_ engine: Engine, _ ticks: EventKind<Tick>, _ bulk: Lane) -> (Int, Int, UInt64) {
            let dest = Destination.worker(WorkerID(0))
            var accepted = 0, rejected = 0
            do throws(PostError) {
                try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: bulk, to: dest)
                accepted += 1
            } catch { rejected += 1 }
            let before = spmc_thread()
            for i in 1..<1064 {
                do throws(PostError) {
                    try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: bulk, to: dest)
                    accepted += 1
                } catch {
                    if error.code == .laneFull { rejected += 1 }
                }
            }
            return (accepted, rejected, spmc_thread() - before)
        }
    }
}
