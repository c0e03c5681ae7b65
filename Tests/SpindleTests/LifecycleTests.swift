import CSpindle
import Foundation
import Synchronization
import Testing

@testable import Spindle

extension EngineSuites {
    /// Start, shutdown, and what they leave behind; several engines; state and errors in handlers.
    @Suite(.serialized)
    struct LifecycleTests {
        static let engineFDKinds = ["anon_inode:[eventfd]", "anon_inode:[io_uring]", "anon_inode:[eventpoll]"]

        func workerThreadsAlive() -> Int {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return tasks.filter { t in
                ((try? String(contentsOfFile: "/proc/self/task/\(t)/comm", encoding: .utf8)) ?? "").hasPrefix("spindle-w")
            }.count
        }

        /// Two engines at once, each with its own handlers; then a new engine after both shut down;
        /// afterwards no worker thread and no engine fd is left.
        @Test(arguments: backends)
        func twoEnginesThenANewOneLeaveNothingBehind(backend: Engine.Configuration.Backend) throws {
            let fdsBefore = openFDs(matching: Self.engineFDKinds)
            #expect(workerThreadsAlive() == 0)
            var tids: [Int32] = []
            do {
                let a = Grid(workers: 8, lanes: 4), b = Grid(workers: 8, lanes: 4)
                var ba = Engine.Builder(configuration: testConfig(backend: backend))
                let ka = try ba.register(Tick.self) { _, ctx in a.add(ctx.worker.rawValue, ctx.lane.index) }
                var bb = Engine.Builder(configuration: testConfig(workers: 1, backend: backend))
                let kb = try bb.register(Tick.self) { _, ctx in b.add(ctx.worker.rawValue, ctx.lane.index) }
                let ea = try ba.start(), eb = try bb.start()
                #expect(workerThreadsAlive() == ea.workerCount + eb.workerCount)
                for i in 0..<1000 {
                    try postRetrying(ea, Tick(seq: UInt64(i), producer: 0), ka, Lane(index: 1), .spread)
                    try postRetrying(eb, Tick(seq: UInt64(i), producer: 0), kb, Lane(index: 2), .spread)
                }
                #expect(eventually { a.total == 1000 && b.total == 1000 })
                #expect(b[0, 2] == 1000)
                tids = (0..<ea.workerCount).map { ea.threadID(of: WorkerID($0)) } + [eb.threadID(of: WorkerID(0))]
                #expect(ea.stop().drained && eb.stop().drained)
                for t in tids { #expect(!taskExists(t), "worker thread \(t) still alive") }

                // A new engine after shutdown.
                let c = Grid(workers: 8, lanes: 4)
                var bc = Engine.Builder(configuration: testConfig(backend: backend))
                let kc = try bc.register(Tick.self) { _, ctx in c.add(ctx.worker.rawValue, ctx.lane.index) }
                let ec = try bc.start()
                for i in 0..<100 { try postRetrying(ec, Tick(seq: UInt64(i), producer: 0), kc, Lane(index: 0), .spread) }
                #expect(eventually { c.total == 100 })
                #expect(ec.stop().drained)
            }
            #expect(eventually { workerThreadsAlive() == 0 })
            #expect(eventually { openFDs(matching: Self.engineFDKinds) == fdsBefore })
        }

        /// A token from one engine's builder cannot be posted to another engine: the process stops
        /// with a message instead of running the wrong handler.
        @Test func postingAnotherEnginesKindTraps() async throws {
            await #expect(processExitsWith: .signal(SIGILL)) {
                var b1 = Engine.Builder(configuration: testConfig(workers: 1))
                let k1 = try b1.register(Tick.self) { _, _ in }
                var b2 = Engine.Builder(configuration: testConfig(workers: 1))
                _ = try b2.register(Gate.self) { _, _ in }
                let e2 = try b2.start()
                try e2.post(Tick(seq: 0, producer: 0), as: k1, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            }
        }

        /// While lanes drain, handlers may still post; shutdown returns when the chain has ended.
        @Test(arguments: backends)
        func shutdownDrainsChainsPostedByHandlers(backend: Engine.Configuration.Backend) async throws {
            let config = testConfig(backend: backend)
            var builder = Engine.Builder(configuration: config)
            let handled = Grid(workers: 8, lanes: 4)
            let kind = LateBox<EventKind<Tick>?>(nil)
            let ticks = try builder.register(Tick.self) { t, ctx in
                handled.add(ctx.worker.rawValue, ctx.lane.index)
                if t.seq > 0 {  // pass it on to the next worker, one fewer hop to go
                    let next = WorkerID((ctx.worker.rawValue + 1) % config.cpus.count)
                    try ctx.post(Tick(seq: t.seq - 1, producer: 0), as: kind.value!, lane: Lane(index: 2), to: .worker(next))
                }
            }
            kind.value = ticks
            let engine = try builder.start()
            for _ in 0..<10 { try engine.post(Tick(seq: 500, producer: 0), as: ticks, lane: Lane(index: 2), to: .worker(WorkerID(0))) }
            let report = await engine.shutdown(deadline: .now + .seconds(20))
            #expect(report.drained)
            #expect(handled.total == 10 * 501)
            #expect(report.totals[2].handled == 10 * 501)
        }

        /// The shutdown deadline stops a worker whose handler re-posts to itself forever (its rings
        /// never run dry): the call returns soon after the deadline and reports what was left.
        @Test(arguments: backends)
        func shutdownDeadlineStopsAWorkerThatNeverRunsDry(backend: Engine.Configuration.Backend) async throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1, backend: backend))
            let kind = LateBox<EventKind<Tick>?>(nil)
            let handled = Atomic<Int>(0)
            let ticks = try builder.register(Tick.self) { t, ctx in
                handled.add(1, ordering: .relaxed)
                try ctx.post(Tick(seq: t.seq + 1, producer: 0), as: kind.value!, lane: Lane(index: 3))  // forever
            }
            kind.value = ticks
            let engine = try builder.start()
            try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(0)))
            #expect(eventually { handled.load(ordering: .relaxed) > 1000 })
            let t0 = sp_now_ns()
            let report = await engine.shutdown(deadline: .now + .milliseconds(200))
            let took = Double(sp_now_ns() - t0) / 1e9
            #expect(took < 3, "shutdown with a 200 ms deadline took \(took) s")
            #expect(!report.drained && report.unhandled[3] >= 1, "\(report)")
        }

        /// A throwing handler is counted as failed, reported to the error hook, and the engine goes on.
        @Test func throwingHandlersAreCountedAndReported() throws {
            struct Boom: Error {}
            var builder = Engine.Builder(configuration: testConfig(workers: 1))
            let hooked = Recorder<String>()
            builder.onError { error, worker, lane in hooked.append("\(error is Boom) \(worker.rawValue) \(lane.index)") }
            let handled = Grid(workers: 1, lanes: 4)
            let ticks = try builder.register(Tick.self) { t, ctx in
                handled.add(0, ctx.lane.index)
                if t.seq % 3 == 0 { throw Boom() }
            }
            let engine = try builder.start()
            for i in 0..<30 { try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 1), to: .worker(WorkerID(0))) }
            let report = engine.stop()
            #expect(handled[0, 1] == 30)
            #expect(report.totals[1].handled == 30)
            #expect(report.totals[1].failed == 10)
            #expect(hooked.all == Array(repeating: "true 0 1", count: 10))
        }

        /// Per-worker state: built once on each worker's own thread, handed to handlers `inout`.
        @Test func coreLocalStateIsPerWorkerAndBuiltThere() throws {
            let config = testConfig()
            var builder = Engine.Builder(configuration: config)
            struct Counter { var worker: Int; var builtOnCPU: Int32; var count = 0 }
            let built = Recorder<Int>()
            let states = builder.coreLocal { id in
                built.append(id.rawValue)
                return Counter(worker: id.rawValue, builtOnCPU: sp_current_cpu())
            }
            let reports = Recorder<String>()
            let ticks = try builder.register(Tick.self, using: states) { t, state, ctx in
                state.count += 1
                if t.tag == 1 { reports.append("\(state.worker) \(ctx.worker.rawValue) \(state.builtOnCPU) \(ctx.cpu) \(state.count)") }
            }
            let engine = try builder.start()
            #expect(built.all.sorted() == Array(0..<config.cpus.count))
            for w in 0..<config.cpus.count {
                for i in 0..<99 { try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(w))) }
                try engine.post(Tick(seq: 99, producer: 0, tag: 1), as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(w)))
            }
            #expect(eventually { reports.count == config.cpus.count })
            _ = engine.stop()
            for r in reports.all {
                let f = r.split(separator: " ").map(String.init)
                #expect(f[0] == f[1])      // the state belongs to the worker running the handler
                #expect(f[2] == f[3])      // it was built on that worker's CPU
                #expect(f[4] == "100")     // and only that worker's events touched it
            }
        }

        /// Start refuses a CPU this process may not run on, naming it, before any thread starts.
        @Test func startRefusesACPUNotAllowed() throws {
            var config = testConfig(workers: 1)
            config.cpus = [4095]
            let builder = Engine.Builder(configuration: config)
            do {
                _ = try builder.start()
                Issue.record("started on CPU 4095")
            } catch {
                #expect(error.code == .invalidConfiguration)
                #expect(error.message.hasPrefix("engine.cpus[0] = 4095: rule the CPU exists on this host"))
            }
            #expect(workerThreadsAlive() == 0)
        }

        /// shutdown from one of the engine's own workers is refused (it would wait for itself).
        @Test func shutdownFromAWorkerIsRefused() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1))
            let holder = LateBox<Engine?>(nil)
            let results = Recorder<String>()
            let ticks = try builder.register(Tick.self) { _, _ in
                do throws(SpindleError) { _ = try holder.value!.shutdownBlocking(deadline: .now + .seconds(1)) } catch { results.append("\(error.code)") }
            }
            let engine = try builder.start()
            holder.value = engine
            try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { results.count == 1 })
            #expect(results.all == ["onWorkerThread"])
            holder.value = nil
            _ = engine.stop()
        }

        /// Batch posts are all or nothing.
        @Test(arguments: backends)
        func batchPostIsAllOrNothing(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(workers: 1, backend: backend)
            config.lanes[3].capacity = 64
            var builder = Engine.Builder(configuration: config)
            let gate = WorkerGate()
            let handled = Grid(workers: 1, lanes: 4)
            let ticks = try builder.register(Tick.self) { _, ctx in handled.add(0, ctx.lane.index) }
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(gate.waitUntilHeld())
            let batch = (0..<40).map { Tick(seq: UInt64($0), producer: 0) }
            try engine.post(contentsOf: batch, as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(0)))
            #expect(throws: PostError(.laneFull, worker: WorkerID(0), lane: Lane(index: 3))) {
                try engine.post(contentsOf: batch, as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(0)))
            }
            #expect(throws: PostError(.batchTooLarge, worker: WorkerID(0), lane: Lane(index: 3))) {
                try engine.post(contentsOf: Array(repeating: batch[0], count: 65), as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(0)))
            }
            gate.open()
            let s = engine.stop().totals[3]
            #expect(handled[0, 3] == 40)
            #expect(s.enqueued == 40 && s.rejected == 40 && s.handled == 40)
        }
    }
}

extension EngineSuites {
    /// Live retuning: weights change the share a lane gets from the next round on; changes that
    /// need a restart are refused, naming the field.
    @Suite(.serialized)
    struct RetuneTests {
        @Test func weightsChangeLiveAndOtherFieldsAreRefused() throws {
            let config = testConfig(workers: 1)
            var builder = Engine.Builder(configuration: config)
            let gate = WorkerGate()
            let order = Recorder<Int>()
            let ticks = try builder.register(Tick.self) { _, ctx in order.append(ctx.lane.index) }
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let engine = try builder.start()

            var tuned = config
            tuned.lanes[1].policy = .weighted(weight: 1)   // high: 8 → 1
            tuned.lanes[3].policy = .weighted(weight: 3)   // bulk: 1 → 3
            try engine.apply(configuration: tuned)
            #expect(engine.currentConfiguration == tuned)

            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(gate.waitUntilHeld())
            for i in 0..<600 {
                try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 1), to: .worker(WorkerID(0)))
                try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(0)))
            }
            gate.open()
            #expect(eventually { order.count == 1200 })
            // Both backlogged for three whole rounds (3 × (32 + 96) events): bulk (quantum 3 × 32)
            // now gets three times high's share (1 × 32).
            let window = order.all.prefix(3 * (32 + 96))
            let high = window.filter { $0 == 1 }.count, bulk = window.filter { $0 == 3 }.count
            #expect(bulk == 3 * high, "high \(high), bulk \(bulk)")

            var wrong = config
            wrong.lanes[2].capacity = 8192
            do {
                try engine.apply(configuration: wrong)
                Issue.record("capacity changed live")
            } catch {
                #expect(error.code == .notLive)
                #expect(error.message == "lanes.normal.capacity = 8192 (running: 4096): rule cannot change while the engine runs; fix: restart the engine with the new profile")
            }
            _ = engine.stop()
        }
    }
}

extension EngineSuites {
    /// Beyond `eagerRingBytes`, a pair's SPSC rings are created on first use: a counted, one-time
    /// slow path; ring memory grows by exactly those rings, and events flow as before.
    @Suite(.serialized)
    struct LazyRingTests {
        @Test(arguments: backends)
        func pairRingsAreCreatedOnFirstUseAndCounted(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(backend: backend)
            guard config.cpus.count >= 2 else { return }
            config.eagerRingBytes = 0
            var builder = Engine.Builder(configuration: config)
            let handled = Grid(workers: 8, lanes: 4)
            let bulk = try builder.lane(named: "bulk"), normal = try builder.lane(named: "normal")
            let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
            let start = try builder.register(Gate.self) { _, ctx in
                for i in 0..<UInt64(100) {
                    try ctx.post(Tick(seq: i, producer: 0), as: ticks, lane: bulk, to: .worker(WorkerID(1)))
                    try ctx.post(Tick(seq: i, producer: 0), as: ticks, lane: normal, to: .worker(WorkerID(1)))
                }
            }
            let engine = try builder.start()
            let before = engine.ringBytes
            #expect(engine.workerStats(WorkerID(0)).pairsCreated == 0)
            for _ in 0..<3 { try engine.post(Gate(id: 0), as: start, lane: Lane(index: 0), to: .worker(WorkerID(0))) }
            #expect(eventually { handled[1, 3] == 300 && handled[1, 2] == 300 })
            // Two lanes used from worker 0 to worker 1: two rings, made once each.
            #expect(engine.workerStats(WorkerID(0)).pairsCreated == 2)
            let ringBytes = (config.lanes[3].capacity + config.lanes[2].capacity) * 64
            #expect(engine.ringBytes - before >= ringBytes)
            #expect(engine.ringBytes - before < ringBytes + 4 * 4096)  // two headers, page-rounded
            _ = engine.stop()
        }
    }
}
