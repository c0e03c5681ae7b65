import CSpindle
import Foundation
import Synchronization
import Testing

@testable import Spindle

extension EngineSuites {
    /// Order holds per (producer thread, lane, destination), and per (producer, key) with `.key`.
    @Suite(.serialized)
    struct OrderingTests {
        struct Seen: Sendable { var worker: Int; var lane: Int; var producer: UInt32; var seq: UInt64; var tag: UInt32 }

        /// Foreign threads (MPSC path) and a worker (SPSC path) post numbered events to both workers
        /// on three lanes; each handler checks the numbers arrive in order per (producer, lane).
        @Test(arguments: backends)
        func orderPerProducerLaneAndDestination(backend: Engine.Configuration.Backend) throws {
            let config = testConfig(backend: backend)
            let workers = config.cpus.count
            var builder = Engine.Builder(configuration: config)
            let recorder = Recorder<Seen>()
            let lanes = try ["high", "normal", "bulk"].map { try builder.lane(named: $0) }
            let ticks = try builder.register(Tick.self) { t, ctx in
                recorder.append(Seen(worker: ctx.worker.rawValue, lane: ctx.lane.index, producer: t.producer, seq: t.seq, tag: t.tag))
            }
            // A worker-side producer: on a Gate event, post 3000 ticks to every worker from this worker.
            let perProducer: UInt64 = 3000
            let start = try builder.register(Gate.self) { g, ctx in
                for i in 0..<perProducer {
                    let lane = lanes[Int(i % 3)]
                    for w in 0..<workers {
                        let t = Tick(seq: i / 3, producer: 100 + UInt32(ctx.worker.rawValue), tag: UInt32(w))
                        while true {
                            do { try ctx.post(t, as: ticks, lane: lane, to: .worker(WorkerID(w))); break }
                            catch { sched_yield() }  // full: the consumer is this thread only for w == self
                        }
                    }
                }
            }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: start, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            let threads = (0..<2).map { p in
                Thread {
                    for i in 0..<perProducer {
                        for w in 0..<workers {
                            try! postRetrying(engine, Tick(seq: i / 3, producer: UInt32(p), tag: UInt32(w)), ticks,
                                              lanes[Int(i % 3)], .worker(WorkerID(w)))
                        }
                    }
                }
            }
            threads.forEach { $0.start() }
            let expected = Int(perProducer) * workers * 3  // two foreign producers + one worker producer
            #expect(eventually(within: 30) { recorder.count == expected })
            let report = engine.stop()
            #expect(report.drained)

            var last: [String: UInt64] = [:]
            var outOfOrder = 0
            for s in recorder.all {
                #expect(Int(s.tag) == s.worker, "event for worker \(s.tag) handled on \(s.worker)")
                let key = "\(s.producer)/\(s.lane)/\(s.worker)"
                if let prev = last[key], s.seq < prev { outOfOrder += 1 }
                last[key] = s.seq
            }
            #expect(outOfOrder == 0)
            #expect(recorder.count == expected)
            // Each (producer, lane, destination) saw all its numbers: 1000 per lane.
            for (_, v) in last { #expect(v == perProducer / 3 - 1) }
        }

        /// `.key(k)` always lands on one worker (the fixed mixer), in order per producer.
        @Test(arguments: backends)
        func keyRoutingIsStableAndOrdered(backend: Engine.Configuration.Backend) throws {
            let config = testConfig(backend: backend)
            var builder = Engine.Builder(configuration: config)
            let recorder = Recorder<Seen>()
            let bulk = try builder.lane(named: "bulk")
            let ticks = try builder.register(Tick.self) { t, ctx in
                recorder.append(Seen(worker: ctx.worker.rawValue, lane: ctx.lane.index, producer: t.producer, seq: t.seq, tag: t.tag))
            }
            let engine = try builder.start()
            let keys: [UInt64] = Array(0..<32)
            for i in 0..<200 {
                for k in keys { try postRetrying(engine, Tick(seq: UInt64(i), producer: 0, tag: UInt32(k)), ticks, bulk, .key(k)) }
            }
            #expect(eventually { recorder.count == 200 * keys.count })
            _ = engine.stop()
            var workerOfKey: [UInt32: Int] = [:]
            var lastSeq: [UInt32: UInt64] = [:]
            for s in recorder.all {
                if let w = workerOfKey[s.tag] { #expect(w == s.worker) } else { workerOfKey[s.tag] = s.worker }
                if let prev = lastSeq[s.tag] { #expect(s.seq == prev + 1) }
                lastSeq[s.tag] = s.seq
            }
            // The mapping is the documented fixed mixer, the same in every process.
            for (k, w) in workerOfKey { #expect(Int(sp_key_worker(UInt64(k), UInt32(config.cpus.count))) == w) }
            if config.cpus.count > 1 { #expect(Set(workerOfKey.values).count > 1, "32 keys all on one worker") }
        }

        /// A handler's cross-core posts are published in batches (every 32, or when its batch ends);
        /// mixing them with posts that publish at once (engine.post from the same worker, a strict
        /// lane) keeps the order per (producer, lane, destination), and nothing waits past the batch.
        @Test(arguments: backends)
        func deferredAndImmediatePublishesKeepOrder(backend: Engine.Configuration.Backend) throws {
            let config = testConfig(workers: 2, backend: backend)
            guard config.cpus.count == 2 else { return }
            var builder = Engine.Builder(configuration: config)
            let recorder = Recorder<Seen>()
            let bulk = try builder.lane(named: "bulk")
            let ticks = try builder.register(Tick.self) { t, ctx in
                recorder.append(Seen(worker: ctx.worker.rawValue, lane: ctx.lane.index, producer: t.producer, seq: t.seq, tag: t.tag))
            }
            let holder = LateBox<Engine?>(nil)
            let start = try builder.register(Gate.self) { g, ctx in
                for i in 0..<UInt64(1000) {
                    let t = Tick(seq: i, producer: 7)
                    while true {
                        do throws(PostError) {
                            if i % 7 == 3 {
                                try holder.value!.post(t, as: ticks, lane: bulk, to: .worker(WorkerID(1)))
                            } else {
                                try ctx.post(t, as: ticks, lane: bulk, to: .worker(WorkerID(1)))
                            }
                            break
                        } catch { sched_yield() }
                    }
                }
                // 5 more, fewer than a publish batch: they must arrive when this batch ends.
                for i in 1000..<UInt64(1005) { try ctx.post(Tick(seq: i, producer: 7), as: ticks, lane: bulk, to: .worker(WorkerID(1))) }
            }
            let engine = try builder.start()
            holder.value = engine
            try engine.post(Gate(id: 0), as: start, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { recorder.count == 1005 })
            holder.value = nil
            _ = engine.stop()
            #expect(recorder.all.map(\.seq) == Array(0..<1005))
        }

        /// The mixer is fixed: known keys map to known workers (these values must never change).
        @Test func keyMixerIsStableAcrossRuns() {
            let got = (0..<8).map { sp_key_worker(UInt64($0), 4) }
            // Computed with splitmix64's finalizer and a 128-bit multiply-high, outside the engine.
            func mix(_ k: UInt64) -> UInt64 {
                var z = k &+ 0x9e37_79b9_7f4a_7c15
                z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
                z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
                return z ^ (z >> 31)
            }
            let expected = (0..<8).map { UInt32(mix(UInt64($0)).multipliedFullWidth(by: 4).high) }
            #expect(got == expected)
        }
    }
}

extension EngineSuites.OrderingTests {
    /// `ctx.post(contentsOf:)`: a handler's batch post is all or nothing and keeps order.
    @Test func handlerBatchPostKeepsOrder() throws {
        let config = testConfig()
        var builder = Engine.Builder(configuration: config)
        let recorder = Recorder<Seen>()
        let bulk = try builder.lane(named: "bulk")
        let ticks = try builder.register(Tick.self) { t, ctx in
            recorder.append(Seen(worker: ctx.worker.rawValue, lane: ctx.lane.index, producer: t.producer, seq: t.seq, tag: t.tag))
        }
        let last = config.cpus.count - 1
        let outcomes = Recorder<String>()
        let start = try builder.register(Gate.self) { _, ctx in
            for b in 0..<UInt64(10) {
                let batch = (0..<UInt64(32)).map { Tick(seq: b * 32 + $0, producer: 3) }
                try ctx.post(contentsOf: batch, as: ticks, lane: bulk, to: .worker(WorkerID(last)))
            }
            do throws(PostError) {
                try ctx.post(contentsOf: Array(repeating: Tick(seq: 0, producer: 3), count: 5000), as: ticks, lane: bulk)
            } catch { outcomes.append("\(error.code)") }
        }
        let engine = try builder.start()
        try engine.post(Gate(id: 0), as: start, lane: Lane(index: 0), to: .worker(WorkerID(0)))
        #expect(eventually { recorder.count == 320 && outcomes.count == 1 })
        _ = engine.stop()
        #expect(recorder.all.map(\.seq) == Array(0..<320))
        #expect(outcomes.all == ["batchTooLarge"])
    }
}

extension EngineSuites.OrderingTests {
    /// `ctx.flush()` publishes a handler's batched cross-core posts before its batch ends; without
    /// it they would wait for the batch's end (a handler waiting in place would wait forever).
    @Test func flushPublishesBeforeTheBatchEnds() throws {
        let config = testConfig(spin: .seconds(1))  // worker 1 stays awake: posts to it are batched
        guard config.cpus.count >= 2 else { return }
        var builder = Engine.Builder(configuration: config)
        let handled = Grid(workers: 8, lanes: 4)
        let bulk = try builder.lane(named: "bulk")
        let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
        let seen = Recorder<Bool>()
        let start = try builder.register(Gate.self) { _, ctx in
            try ctx.post(Tick(seq: 0, producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(1)))
            ctx.flush()
            // Waiting in a handler is what flush() is for: the event must arrive while we wait.
            seen.append(eventually(within: 10) { handled[1, 3] == 1 })
        }
        let engine = try builder.start()
        try engine.post(Gate(id: 0), as: start, lane: Lane(index: 0), to: .worker(WorkerID(0)))
        #expect(eventually { seen.count == 1 })
        _ = engine.stop()
        #expect(seen.all == [true])
    }
}
