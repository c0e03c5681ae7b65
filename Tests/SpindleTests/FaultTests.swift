import CSpindle
import CTestSupport
import Foundation
import Synchronization
import Testing

@testable import Spindle

extension EngineSuites {
    /// Faults injected (spindle.h's `sp_test_fail_nth`, signals): the engine survives, or refuses
    /// cleanly with a message and leaves nothing behind.
    @Suite(.serialized)
    struct FaultTests {
        /// Disarms every fault, whatever a test did.
        static func disarm() {
            for f in [SP_FAULT_MAP, SP_FAULT_BACKEND, SP_FAULT_PIN] { sp_test_fail_nth(f.rawValue, -1) }
        }

        /// Starts must fail with a message containing `expected`; afterwards the process holds no
        /// more than before (no worker thread, fd, io_uring instance or mapping), and a normal start works.
        static func startFails(_ config: Engine.Configuration, fault: sp_fault, nth: Int64, expected: String) throws {
            let before = ProcessFootprint.now()
            sp_test_fail_nth(fault.rawValue, nth)
            defer { disarm() }
            do {
                let engine = try Engine.Builder(configuration: config, logger: quietLogger).start()
                Issue.record("started although operation \(nth) of fault \(fault) failed")
                _ = engine.stop()
            } catch {
                #expect(error.code == .startFailed, "\(error)")
                #expect(error.message.contains(expected), "fault \(fault.rawValue) nth \(nth): \(error.message)")
            }
            disarm()
            let after = ProcessFootprint.now()
            #expect(after.workers == 0, "\(after)")
            #expect(after.fds <= before.fds && after.urings <= before.urings, "before: \(before); after: \(after)")
            #expect(after.mappings <= before.mappings + 2, "before: \(before); after: \(after)")
            // And the next start is a normal one.
            var builder = Engine.Builder(configuration: config, logger: quietLogger)
            let handled = Atomic<Int>(0)
            let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let engine = try builder.start()
            for i in 0..<config.cpus.count {
                try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(i)))
            }
            #expect(engine.stop().drained)
            #expect(handled.load(ordering: .relaxed) == config.cpus.count)
        }

        /// Ring and worker mappings failing at start (the worker's own mapping, its lanes' rings,
        /// the pair rings made up front): start fails with the message, the others are torn down.
        @Test(arguments: backends)
        func startFailsCleanlyWhenAMappingFails(backend: Engine.Configuration.Backend) throws {
            let config = testConfig(backend: backend)
            let workers = config.cpus.count, lanes = config.lanes.count
            // Per worker: its own mapping, then a local and an MPSC ring per lane; then the pairs.
            let perWorker = 1 + 2 * lanes, total = workers * perWorker + workers * (workers - 1) * lanes
            for nth in Set([0, 1, 2, perWorker - 1, perWorker, workers * perWorker, total - 1]) where nth < total {
                try Self.startFails(config, fault: SP_FAULT_MAP, nth: Int64(nth), expected: "cannot map")
            }
        }

        /// `io_uring_setup` (or `epoll_create`) failing on one worker of N: start fails naming the
        /// worker and the reason; the workers that had set up are torn down; nothing leaks.
        @Test(arguments: backends)
        func backendSetupFailingOnOneWorkerFailsStart(backend: Engine.Configuration.Backend) throws {
            let config = testConfig(backend: backend)
            let name = backend == .epoll ? "epoll" : "io_uring"
            for nth in 0..<Int64(config.cpus.count) {
                try Self.startFails(config, fault: SP_FAULT_BACKEND, nth: nth, expected: "\(name) setup failed: Cannot allocate memory")
            }
        }

        /// A worker refused its CPU (as a cgroup cpuset change between the check and the thread
        /// would do): start fails with the worker, the CPU, the reason and the fix.
        @Test func pinningRefusedFailsStart() throws {
            try Self.startFails(testConfig(), fault: SP_FAULT_PIN, nth: 0, expected: "cannot pin itself to CPU")
        }

        /// A pair ring created on first use whose mapping fails: that post is refused with
        /// `outOfMemory` and counted as rejected; the next post creates the ring and goes through.
        @Test(arguments: backends)
        func lazyPairRingFailureIsRefusedAndCounted(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(backend: backend)
            guard config.cpus.count >= 2 else { return }
            config.eagerRingBytes = 0
            var builder = Engine.Builder(configuration: config, logger: quietLogger)
            let outcomes = Recorder<String>()
            let handled = Atomic<Int>(0)
            let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let gates = try builder.register(Gate.self) { _, ctx in
                defer { FaultTests.disarm() }
                sp_test_fail_nth(SP_FAULT_MAP.rawValue, 0)  // the next mapping, on this thread: the ring to worker 1
                for i in 0..<2 {
                    do throws(PostError) {
                        try ctx.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(1)))
                        outcomes.append("enqueued")
                    } catch { outcomes.append("\(error.code)") }
                }
            }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { handled.load(ordering: .relaxed) == 1 })
            #expect(outcomes.all == ["outOfMemory", "enqueued"])
            let report = engine.stop()
            let s = report.perWorker[1][3]
            #expect(s.rejected == 1 && s.enqueued == 1 && s.handled == 1, "\(s)")
            #expect(engine.workerStats(WorkerID(0)).pairsCreated == 1)
        }

        /// Signals delivered at a high rate to every worker and producer (no SA_RESTART: each wait
        /// they are in — io_uring_enter, epoll_wait, a block lane's futex — returns EINTR): every event
        /// is still handled exactly once, in a bounded time.
        @Test(arguments: backends)
        func signalsAtAHighRateLoseNothing(backend: Engine.Configuration.Backend) throws {
            #expect(cts_install_counting_handler(SIGURG) == 0)  // before start: the workers inherit the mask
            defer { _ = cts_restore_default(SIGURG) }  // an engine's signal source refuses a signal with a handler
            let deliveredBefore = cts_signals_delivered()
            var config = testConfig(backend: backend, spin: .zero)  // sleep at every gap
            config.lanes[3].capacity = 64
            config.lanes[3].onFull = .block(timeout: nil)
            var builder = Engine.Builder(configuration: config, logger: quietLogger)
            let workers = config.cpus.count
            let handled = Grid(workers: workers, lanes: 4)
            let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.worker.rawValue, ctx.lane.index) }
            let engine = try builder.start()
            let tids = Mutex<[Int32]>((0..<workers).map { engine.threadID(of: WorkerID($0)) })
            // The storm is counted, not timed: producers post their 50,000 each and go on until
            // 20,000 signals have been sent, whatever the machine's speed.
            let producers = 2, perProducer = 50_000, storm = 20_000
            let done = DispatchSemaphore(value: 0)
            let posted = Atomic<Int>(0)
            let sent = Atomic<Int>(0)
            for p in 0..<producers {
                Thread {
                    _ = cts_unblock_signal(SIGURG)
                    tids.withLock { $0.append(cts_gettid()) }
                    var i = 0
                    while i < perProducer || sent.load(ordering: .relaxed) < storm {
                        // Into the block lane (its futex wait is interrupted too), with gaps that
                        // let the workers go to sleep.
                        let t = Tick(seq: UInt64(i), producer: UInt32(p))
                        if (try? engine.post(t, as: ticks, lane: Lane(index: 3), to: .worker(WorkerID(i % workers)))) != nil {
                            posted.add(1, ordering: .relaxed)
                        }
                        if i % 512 == 0 { usleep(50) }  // a gap: the workers go to sleep
                        i += 1
                    }
                    done.signal()
                }.start()
            }
            let signaller = DispatchSemaphore(value: 0)
            Thread {
                while sent.load(ordering: .relaxed) < storm {
                    for tid in tids.withLock({ $0 }) where cts_signal_thread(tid, SIGURG) == 0 { sent.add(1, ordering: .relaxed) }
                    sched_yield()
                }
                signaller.signal()
            }.start()
            #expect(signaller.wait(timeout: .now() + 120) == .success, "the storm did not finish: \(sent.load(ordering: .relaxed)) signals")
            var finished = 0
            for _ in 0..<producers where done.wait(timeout: .now() + 120) == .success { finished += 1 }
            #expect(finished == producers, "producers stalled under signals: \(engine.stallReport())")
            let total = posted.load(ordering: .relaxed)
            #expect(eventually(within: 20) { handled.total == total }, "\(handled.total) of \(total): \(engine.stallReport())")
            let report = engine.stop()
            #expect(report.drained)
            #expect(total >= producers * perProducer, "\(total) posted")
            #expect(report.totals[3].handled == UInt64(total) && report.totals[3].rejected == 0, "\(report.totals[3])")
            #expect(cts_signals_delivered() - deliveredBefore >= 1_000, "signals delivered: \(cts_signals_delivered() - deliveredBefore)")
            let sleeps = (0..<workers).reduce(UInt64(0)) { $0 + engine.workerStats(WorkerID($1)).sleeps }
            print("signals: \(backend): \(sent.load(ordering: .relaxed)) sent, \(cts_signals_delivered() - deliveredBefore) delivered, \(posted.load(ordering: .relaxed)) events handled, \(sleeps) sleeps")
            #expect(sleeps > 10, "the workers never slept: the waits were not interrupted")
        }

        /// A handler that stalls past the slow-batch threshold is reported while it still runs —
        /// worker, lane, event type, duration — and the engine goes on (another worker keeps handling).
        @Test func stalledHandlerIsReportedWhileItRuns() throws {
            var config = testConfig()
            config.slowBatchThreshold = .milliseconds(20)
            var builder = Engine.Builder(configuration: config, logger: quietLogger)
            let reports = Recorder<SlowHandlerReport>()
            builder.onSlowHandler { reports.append($0) }
            let gate = WorkerGate()
            let handled = Atomic<Int>(0)
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 1), to: .worker(WorkerID(0)))
            #expect(gate.waitUntilHeld())
            // Still held: the report must come now, not after the handler returns.
            #expect(eventually(within: 5) { reports.count >= 1 }, "no report while the handler stalled")
            let r = reports.all.first
            #expect(r?.worker == WorkerID(0) && r?.laneName == "high" && r?.lane == Lane(index: 1), "\(String(describing: r))")
            #expect(r?.eventType == "Gate" && r?.batchSize == 1, "\(String(describing: r))")
            #expect((r?.running ?? .zero) >= .milliseconds(20), "\(String(describing: r))")
            #expect(r?.description.hasPrefix("worker 0, lane high: an event of Gate has been running for ") == true)
            if config.cpus.count > 1 {  // the engine goes on
                for i in 0..<100 { try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 2), to: .worker(WorkerID(1))) }
                #expect(eventually { handled.load(ordering: .relaxed) == 100 })
            }
            gate.open()
            let report = engine.stop()
            #expect(report.drained)
            #expect(reports.count == 1, "one report per stalled batch: \(reports.all)")
            #expect(engine.workerStats(WorkerID(0)).slowBatches >= 1)
        }

        /// The watchdog parks while every worker sleeps: an idle engine's `spindle-stall` thread
        /// makes (almost) no wake-up — it used to wake every threshold, 100 times a second — and
        /// the first worker to wake after the idle spell brings it back, so a handler that stalls
        /// then is still reported while it runs. Counted from the thread's voluntary context
        /// switches (/proc), not timed: a window of an idle engine allows at most 5.
        @Test(arguments: backends)
        func idleEngineWatchdogParksAndStillReportsAStall(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(backend: backend)
            config.slowBatchThreshold = .milliseconds(10)  // the default: the watchdog's shortest period
            var builder = Engine.Builder(configuration: config, logger: quietLogger)
            let reports = Recorder<SlowHandlerReport>()
            builder.onSlowHandler { reports.append($0) }
            let gate = WorkerGate()
            let handled = Atomic<Int>(0)
            let gates = try builder.register(Gate.self) { _, _ in gate.hold() }
            let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let engine = try builder.start()
            var tid: Int32 = 0
            #expect(eventually(within: 5) { tid = sp_engine_watchdog_tid(engine.handle); return tid > 0 }, "no watchdog thread")
            guard tid > 0 else { _ = engine.stop(); return }
            // Some work on every worker first: the watchdog ticks while they are awake.
            let workers = config.cpus.count
            for i in 0..<(10 * workers) {
                try engine.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 2), to: .worker(WorkerID(i % workers)))
            }
            #expect(eventually { handled.load(ordering: .relaxed) == 10 * workers }, "ticks not handled: \(engine.stallReport())")
            // Idle now. A window of one second with at most 5 wake-ups must come within 10 windows
            // (the first may still hold the ticks before the park; a loaded machine may delay it).
            var windows: [UInt64] = []
            while windows.count < 10 {
                guard let a = voluntarySwitches(tid: tid) else { break }
                usleep(1_000_000)  // a measurement window, not a synchronisation
                guard let b = voluntarySwitches(tid: tid) else { break }
                windows.append(b - a)
                if b - a <= 5 { break }
            }
            print("watchdog: \(backend): wake-ups of the idle engine's watchdog in 1 s windows: \(windows)")
            #expect(windows.last.map { $0 <= 5 } == true, "\(backend): the idle engine's watchdog woke \(windows) times in 1 s windows")
            // After the idle spell: a stalled handler is reported while it still runs.
            try engine.post(Gate(id: 0), as: gates, lane: Lane(index: 1), to: .worker(WorkerID(0)))
            #expect(gate.waitUntilHeld())
            #expect(eventually(within: 5) { reports.count >= 1 }, "\(backend): no report while the handler stalled after an idle spell")
            gate.open()
            let report = engine.stop()
            #expect(report.drained)
            #expect(reports.count == 1, "one report per stalled batch: \(reports.all)")
        }
    }
}

/// Voluntary context switches of a thread of this process (/proc/self/task/TID/status): how many
/// times it blocked and was woken.
func voluntarySwitches(tid: Int32) -> UInt64? {
    guard let s = try? String(contentsOfFile: "/proc/self/task/\(tid)/status", encoding: .utf8) else { return nil }
    for line in s.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches:") {
        return UInt64(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
    }
    return nil
}
