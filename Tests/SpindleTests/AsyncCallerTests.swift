import CSpindle
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Spindle

extension EngineSuites {
    /// `send` (waits for room on a full lane, cancellable, refused on a worker) and event streams
    /// (`for await`: every event once, in order; overflow counted).
    @Suite(.serialized)
    struct AsyncCallerTests {
        /// One worker held in a `critical` handler; lane `bulk` of capacity 64 (the least there is).
        func heldEngine() throws -> (Engine, WorkerGate, EventKind<Tick>, Lane, Recorder<UInt64>) {
            var config = testConfig(workers: 1)
            config.lanes[3].capacity = 64
            var builder = Engine.Builder(configuration: config)
            let gate = WorkerGate()
            let seen = Recorder<UInt64>()
            let ticks = try builder.register(Tick.self) { t, _ in seen.append(t.seq) }
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(gate.waitUntilHeld())
            return (engine, gate, ticks, Lane(index: 3), seen)
        }

        /// Fills the held lane; returns how many got in.
        func fill(_ engine: Engine, _ ticks: EventKind<Tick>, _ bulk: Lane) -> Int {
            var n = 0
            while (try? engine.post(Tick(seq: UInt64(n), producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(0))))
                != nil
            { n += 1 }
            return n
        }

        @Test func sendWaitsOnAFullLaneAndCompletesAfterTheDrain() throws {
            let (engine, gate, ticks, bulk, seen) = try heldEngine()
            defer {
                gate.open()  // a failed expectation must not leave the worker held (stop would wait)
                _ = engine.stop()
            }
            let filled = fill(engine, ticks, bulk)
            #expect(filled == 64)
            let rejectedBefore = engine.stats(worker: WorkerID(0), lane: bulk).rejected
            let done = Atomic<Bool>(false)
            let sender = Task.detached {
                let r = try await engine.send(
                    Tick(seq: 1000, producer: 1), as: ticks, lane: bulk, to: .worker(WorkerID(0)))
                done.store(true, ordering: .releasing)
                return r
            }
            // It tried, was refused, and is waiting: two more rejections counted by the lane, not done.
            #expect(eventually { engine.stats(worker: WorkerID(0), lane: bulk).rejected >= rejectedBefore + 2 })
            let returnedEarly = done.load(ordering: .acquiring)
            #expect(!returnedEarly, "send returned while the lane was full")
            gate.open()
            #expect(try awaitResult { try await sender.value } == .enqueued)
            #expect(eventually { seen.count == 65 })
            #expect(seen.all == (0..<64).map { UInt64($0) } + [1000])
        }

        @Test func sendThrowsOnCancellationAndEnqueuesNothing() throws {
            let (engine, gate, ticks, bulk, seen) = try heldEngine()
            defer {
                gate.open()  // a failed expectation must not leave the worker held (stop would wait)
                _ = engine.stop()
            }
            let filled = fill(engine, ticks, bulk)
            let rejectedBefore = engine.stats(worker: WorkerID(0), lane: bulk).rejected
            let sender = Task.detached {
                try await engine.send(Tick(seq: 1000, producer: 1), as: ticks, lane: bulk, to: .worker(WorkerID(0)))
            }
            #expect(eventually { engine.stats(worker: WorkerID(0), lane: bulk).rejected > rejectedBefore })
            sender.cancel()
            let outcome = try awaitResult { () -> String in
                do {
                    _ = try await sender.value
                    return "enqueued"
                } catch is CancellationError { return "cancelled" } catch { return "\(error)" }
            }
            #expect(outcome == "cancelled")
            gate.open()
            #expect(eventually { seen.count == filled })
            #expect(engine.stats(worker: WorkerID(0), lane: bulk).enqueued == UInt64(filled))
            #expect(!seen.all.contains(1000))
        }

        /// 8 senders × 100 events through a lane of 64 the worker drains slowly; half the senders
        /// are cancelled midway. Every send is exactly one of enqueued or thrown, and the handler's
        /// tally equals the senders' enqueued tally.
        @Test func sendCountsReconcile() throws {
            var config = testConfig(workers: 1)
            config.lanes[3].capacity = 64
            var builder = Engine.Builder(configuration: config)
            let handled = Atomic<Int>(0)
            let ticks = try builder.register(Tick.self) { _, _ in
                handled.add(1, ordering: .relaxed)
                for _ in 0..<50 { sched_yield() }  // slow: the lane stays full
            }
            let engine = try builder.start()
            let bulk = Lane(index: 3)
            let senders = 8
            let each = 100
            let tasks = (0..<senders).map { s in
                Task.detached { () -> (sent: Int, thrown: Int) in
                    var sent = 0
                    var thrown = 0
                    for i in 0..<each {
                        do {
                            _ = try await engine.send(
                                Tick(seq: UInt64(i), producer: UInt32(s)), as: ticks, lane: bulk,
                                to: .worker(WorkerID(0)))
                            sent += 1
                        } catch {
                            thrown += 1
                        }
                    }
                    return (sent, thrown)
                }
            }
            #expect(eventually { handled.load(ordering: .relaxed) >= 100 })
            for (i, t) in tasks.enumerated() where i % 2 == 1 { t.cancel() }
            var sent = 0
            var thrown = 0
            for t in tasks {
                let r = try awaitResult(within: 60) { await t.value }
                sent += r.sent
                thrown += r.thrown
            }
            let report = engine.stop()
            #expect(sent + thrown == senders * each)
            #expect(thrown > 0, "the cancelled senders threw nothing")
            #expect(handled.load(ordering: .relaxed) == sent)
            #expect(report.totals[3].enqueued == UInt64(sent))
            #expect(report.totals[3].handled == UInt64(sent))
        }

        @Test func sendIsRefusedOnAWorker() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1))
            let ticks = try builder.register(Tick.self) { _, _ in }
            let e = try builder.start()
            defer { _ = e.stop() }
            let exec = try e.executor(worker: WorkerID(0), lane: Lane(index: 1))
            let outcome = try awaitResult {
                await Task(executorPreference: exec) { () -> String in
                    do {
                        _ = try await e.send(
                            Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 1), to: .worker(WorkerID(0)))
                        return "sent"
                    } catch let error as SpindleError {
                        return "\(error.code)"
                    } catch {
                        return "\(error)"
                    }
                }.value
            }
            #expect(outcome == "onWorkerThread")
        }

        /// 5000 events from one thread to one worker come out of the stream once each, in order;
        /// after shutdown the `for await` loop ends.
        @Test func streamYieldsEveryEventOnceInOrder() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 2))
            let (kind, events) = try builder.stream(Tick.self, capacity: 8192)
            let engine = try builder.start()
            let n = 5000
            let consumer = Task.detached { () -> [UInt64] in
                var got: [UInt64] = []
                for await e in events { got.append(e.seq) }  // ends at shutdown
                return got
            }
            for i in 0..<n {
                try postRetrying(engine, Tick(seq: UInt64(i), producer: 0), kind, Lane(index: 2), .worker(WorkerID(1)))
            }
            #expect(eventually { events.received == UInt64(n) })
            _ = engine.stop()
            let got = try awaitResult { await consumer.value }
            #expect(got == (0..<n).map { UInt64($0) })
            #expect(events.dropped == 0)
        }

        /// A full buffer drops the newest event and counts it; what was buffered is still yielded.
        @Test func streamOverflowIsCounted() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1))
            let (kind, events) = try builder.stream(Tick.self, capacity: 8)
            let engine = try builder.start()
            for i in 0..<100 {
                try engine.post(
                    Tick(seq: UInt64(i), producer: 0), as: kind, lane: Lane(index: 1), to: .worker(WorkerID(0)))
            }
            #expect(eventually { events.received + events.dropped == 100 })
            #expect(events.received == 8)
            #expect(events.dropped == 92)
            _ = engine.stop()
            let got = try awaitResult { () -> [UInt64] in
                var got: [UInt64] = []
                for await e in events { got.append(e.seq) }
                return got
            }
            #expect(got == (0..<8).map { UInt64($0) })
            #expect(throws: SpindleError.self) {
                var b = Engine.Builder(configuration: testConfig(workers: 1))
                _ = try b.stream(Tick.self, capacity: 0)
            }
        }
    }
}
