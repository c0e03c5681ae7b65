import CSpindle
import Foundation
import Testing

@testable import Spindle

extension EngineSuites {
    /// Workers: pinned to their CPUs, asleep when idle, woken without loss, gone after shutdown.
    @Suite(.serialized)
    struct WorkerTests {
        struct Where: Sendable { var worker: Int; var cpu: Int32; var ctxCPU: Int }

        /// `sched_getcpu()` inside each worker returns the CPU the configuration gave it.
        @Test(arguments: backends)
        func workersRunOnTheirConfiguredCPUs(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(backend: backend)
            config.cpus = config.cpus.reversed()  // worker 0 on the last CPU: ids and CPUs are separate facts
            var builder = Engine.Builder(configuration: config)
            let seen = Recorder<Where>()
            let probe = try builder.register(Gate.self) { _, ctx in
                seen.append(Where(worker: ctx.worker.rawValue, cpu: sp_current_cpu(), ctxCPU: ctx.cpu))
            }
            let engine = try builder.start()
            for round in 0..<50 {
                for w in 0..<config.cpus.count { try engine.post(Gate(id: UInt32(round)), as: probe, lane: Lane(index: 0), to: .worker(WorkerID(w))) }
            }
            #expect(eventually { seen.count == 50 * config.cpus.count })
            _ = engine.stop()
            for s in seen.all {
                #expect(Int(s.cpu) == config.cpus[s.worker], "worker \(s.worker) ran on CPU \(s.cpu)")
                #expect(s.ctxCPU == config.cpus[s.worker])
            }
        }

        /// An idle engine sleeps in the kernel after its spin time: its threads use ~0 CPU.
        @Test(arguments: backends)
        func idleEngineUsesNoCPU(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend, spin: .microseconds(200)))
            let ticks = try builder.register(Tick.self) { _, _ in }
            let engine = try builder.start()
            try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 0), to: .spread)
            let workers = (0..<engine.workerCount).map { WorkerID($0) }
            #expect(eventually { workers.allSatisfy { engine.workerStats($0).sleeps > 0 } })
            let tids = workers.map { engine.threadID(of: $0) }
            let before = tids.map { cpuTimeNs(tid: $0) ?? 0 }
            let sleepsBefore = workers.map { engine.workerStats($0).sleeps }
            usleep(300_000)  // the measurement window, not a synchronization
            let after = tids.map { cpuTimeNs(tid: $0) ?? 0 }
            let sleepsAfter = workers.map { engine.workerStats($0).sleeps }
            for i in tids.indices {
                let used = after[i] - before[i]
                // ≤ 1% of the window: a spinning worker would use ~100%.
                #expect(used < 3_000_000, "worker \(i) used \(used) ns of CPU in 300 ms idle")
                #expect(sleepsAfter[i] - sleepsBefore[i] <= 2, "worker \(i) woke up while idle")
            }
            _ = engine.stop()
        }

        /// The sleep/post race, hammered: each event goes to a worker that may just be falling asleep
        /// (spin 0); a lost wake-up would leave an event unhandled and the wait would time out.
        @Test(arguments: backends)
        func noLostWakeUps(backend: Engine.Configuration.Backend) throws {
            let config = testConfig(backend: backend, spin: .zero)
            var builder = Engine.Builder(configuration: config)
            let done = DispatchSemaphore(value: 0)
            let ticks = try builder.register(Tick.self) { _, _ in done.signal() }
            // Worker 0 relays to the last worker: the worker → worker (MSG_RING) wake path.
            let last = config.cpus.count - 1
            let relay = try builder.register(Gate.self) { g, ctx in
                while true {
                    do throws(PostError) {
                        try ctx.post(Tick(seq: UInt64(g.id), producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(last)))
                        return
                    } catch { sched_yield() }
                }
            }
            let engine = try builder.start()
            var lost = 0
            for i in 0..<1500 {
                // Foreign → worker (eventfd path), then worker → worker.
                try engine.post(Tick(seq: UInt64(i), producer: 1), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(i % config.cpus.count)))
                if done.wait(timeout: .now() + 5) == .timedOut { lost += 1 }
                try engine.post(Gate(id: UInt32(i)), as: relay, lane: Lane(index: 0), to: .worker(WorkerID(0)))
                if done.wait(timeout: .now() + 5) == .timedOut { lost += 1 }
            }
            #expect(lost == 0)
            let sleeps = (0..<config.cpus.count).map { engine.workerStats(WorkerID($0)).sleeps }.reduce(0, +)
            #expect(sleeps > 0, "workers never slept: the race was not exercised")
            let sent = (0..<config.cpus.count).map { engine.workerStats(WorkerID($0)).wakeupsSent }.reduce(0, +)
            if config.cpus.count > 1 { #expect(sent > 0, "no worker→worker wake-up was sent") }
            _ = engine.stop()
        }

        /// While the target worker is awake, posting makes no wake syscall.
        @Test func noWakeSyscallWhileTargetIsAwake() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1, spin: .seconds(1)))
            let handled = Grid(workers: 1, lanes: 4)
            let ticks = try builder.register(Tick.self) { _, ctx in handled.add(0, ctx.lane.index) }
            let engine = try builder.start()
            let before = engine.workerStats(WorkerID(0)).foreignWakeups
            for i in 0..<10_000 { try postRetrying(engine, Tick(seq: UInt64(i), producer: 0), ticks, Lane(index: 2), .worker(WorkerID(0))) }
            #expect(eventually { handled[0, 2] == 10_000 })
            #expect(engine.workerStats(WorkerID(0)).foreignWakeups == before)
            #expect(engine.workerStats(WorkerID(0)).sleeps == 0)
            _ = engine.stop()
        }
    }
}
