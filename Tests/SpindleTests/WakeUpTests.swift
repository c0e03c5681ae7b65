import CSpindle
import CMallocCounter
import CTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import Spindle

extension EngineSuites {
    /// Lost wake-ups, hunted on purpose: a wake-up posted into the exact window between a worker's
    /// sleep flag and its wait (a test hook holds the worker there), on hundreds of fresh engines;
    /// then long-lived engines with lanes small enough to fill, spin 0, foreign threads and workers
    /// posting, for ≥ 100,000 sleep/wake cycles. Every wait is watched: a worker that stops handling
    /// while events are pending fails the test within 2 s with each worker's sleep flag, sleeps,
    /// wake-ups and pending events — it never hangs.
    @Suite(.serialized)
    struct WakeUpTests {
        /// No progress for this long while events are pending is a lost wake-up (a woken worker
        /// handles an event in ~50 µs here; a descheduled one within a few ms).
        static let stallSeconds = 2.0

        /// Fresh engines per wake path and backend.
        static let freshEngines = 150

        /// A relay: its handler posts a `Tick` to worker `to` from the worker it runs on.
        struct Relay: InlineEvent { var to: UInt32 }

        /// Fresh engines, each woken in its first sleep window: the test hook holds the worker after
        /// its sleep flag is published and its rings were found empty, the test posts (the producer
        /// sees the flag and makes the wake syscall), then the worker goes on into the backend's
        /// wait — which must return. Even rounds: a foreign thread (eventfd); odd rounds: another
        /// worker (MSG_RING on io_uring, eventfd on epoll).
        @Test(arguments: backends)
        func freshEnginesWokenInTheirFirstSleepWindow(backend: Engine.Configuration.Backend) throws {
            let config = testConfig(backend: backend, spin: .zero)
            let workers = config.cpus.count
            let rendezvous = UnsafeMutablePointer<cts_rendezvous>.allocate(capacity: 1)
            rendezvous.initialize(to: cts_rendezvous())
            sp_test_set_sleep_hook(cts_rendezvous_hook, rendezvous)
            defer {
                sp_test_set_sleep_hook(nil, nil)
                rendezvous.deallocate()
            }
            var quiet = Logger(label: "spindle.test")
            quiet.logLevel = .warning  // one engine per round: no start-up line each
            var caught = 0
            for round in 0..<(2 * Self.freshEngines) {
                let viaWorker = round % 2 == 1 && workers > 1
                let target = viaWorker ? 1 : (round / 2) % workers
                cts_rendezvous_arm(rendezvous, UInt32(target), 0, 5_000_000_000)
                var builder = Engine.Builder(configuration: config, logger: quiet)
                let handled = Grid(workers: workers, lanes: 1)
                let relayed = Atomic<Int>(0)
                let ticks = try builder.register(Tick.self) { _, ctx in handled.add(ctx.worker.rawValue, 0) }
                let relay = try builder.register(Relay.self) { r, ctx in
                    // Lane 0 is strict: published (and the target woken) at once.
                    try ctx.post(Tick(seq: 1, producer: 1), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(Int(r.to))))
                    relayed.add(1, ordering: .releasing)
                }
                let engine = try builder.start()
                defer {
                    // Shutdown wakes sleeping workers with sp_wake_all: it takes milliseconds; a
                    // worker still asleep 2 s after it began missed its shutdown wake-up (one that is
                    // runnable but waiting for a CPU is waited for).
                    _ = stopWatched(engine, "round \(round)")
                }
                guard cts_rendezvous_wait_held(rendezvous, 2_000_000_000) == 1 else {
                    Issue.record("round \(round): worker \(target) never reached its first sleep window\n\(engine.stallReport())")
                    return
                }
                if viaWorker {
                    try engine.post(Relay(to: UInt32(target)), as: relay, lane: Lane(index: 0), to: .worker(WorkerID(0)))
                    // Worker 0 has posted (and seen worker 1's flag) before the window closes.
                    let posted = awaitProgress(
                        engine, "round \(round): worker 0 relaying to worker \(target), held in its sleep window",
                        progress: { relayed.load(ordering: .acquiring) }, until: { relayed.load(ordering: .acquiring) == 1 })
                    if !posted { return }
                } else {
                    try engine.post(Tick(seq: 1, producer: 0), as: ticks, lane: Lane(index: 0), to: .worker(WorkerID(target)))
                }
                cts_rendezvous_release(rendezvous)
                let ok = awaitProgress(
                    engine, "round \(round): worker \(target) woken in its first sleep window by a \(viaWorker ? "worker" : "foreign thread")",
                    progress: { handled.total }, until: { handled[target, 0] == 1 })
                if !ok { return }
                #expect(engine.workerStats(WorkerID(target)).sleeps >= 1)
                caught += 1
            }
            #expect(caught == 2 * Self.freshEngines)
            #expect(rendezvous.pointee.hits == UInt64(2 * Self.freshEngines), "every round held its worker in the window")
        }

        /// Long-lived engines, spin 0, lanes of 64 slots on every full-lane policy, in phases: two
        /// foreign threads post bursts at once (up to twice a lane's capacity, after a random few
        /// µs, so they land while a worker is anywhere between handling and sleeping), handlers
        /// forward half of what they get to the other worker, and then nobody posts until the
        /// engine is quiescent — so a lost wake-up cannot be rescued by a later post: it stalls the
        /// phase and fails the test. Runs until the workers have slept and been woken ≥ 100,000
        /// times, then checks every post is accounted for.
        @Test(arguments: backends)
        func longLivedEnginesSurviveManySleepWakeCycles(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(backend: backend, spin: .zero)
            for l in config.lanes.indices { config.lanes[l].capacity = 64 }  // the smallest allowed
            config.lanes[1].onFull = .drop
            config.lanes[3].onFull = .block(timeout: .milliseconds(2))
            let workers = config.cpus.count, lanes = config.lanes.count
            let capacities = config.lanes.map(\.capacity)
            // Under a sanitizer (which owns malloc: no interposer) everything runs ~10× slower.
            let targetSleeps: UInt64 = spmc_available() == 1 ? 100_000 : 10_000
            let budget = 13.0  // seconds at most (it takes ~3 s here alone; under two parallel compiles it may not reach the target)

            let tallies = ConservationTests.Outcomes(workers: workers, lanes: lanes)
            let handled = Grid(workers: workers, lanes: lanes)
            let enqueuedTotal = Atomic<Int>(0), handledTotal = Atomic<Int>(0)
            var builder = Engine.Builder(configuration: config)
            let kinds = LateBox<EventKind<Tick>?>(nil)
            let ticks = try builder.register(Tick.self) { t, ctx in
                if t.tag > 0, let kind = kinds.value {
                    // Worker → worker: the SPSC ring and the MSG_RING (or eventfd) wake path.
                    let dest = (ctx.worker.rawValue + 1) % workers
                    let lane = Int(t.seq % UInt64(lanes))
                    let r: Result<PostResult, PostError> = Result { () throws(PostError) in
                        try ctx.post(
                            Tick(seq: t.seq &+ 1, producer: 9, tag: t.tag - 1), as: kind, lane: Lane(index: lane),
                            to: .worker(WorkerID(dest)))
                    }
                    tallies.record(r, worker: dest, lane: lane)
                    if case .success(.enqueued) = r { enqueuedTotal.add(1, ordering: .relaxed) }
                }
                handled.add(ctx.worker.rawValue, ctx.lane.index)
                handledTotal.add(1, ordering: .releasing)  // after the forward: equal totals mean quiescent
            }
            kinds.value = ticks
            let engine = try builder.start()
            let phase = Atomic<Int>(0), posted = Atomic<Int>(0), stop = Atomic<Bool>(false)
            let finished = DispatchSemaphore(value: 0)
            let producers = 2
            for p in 0..<producers {
                Thread {
                    defer { finished.signal() }
                    var rng = UInt64(p + 7) &* 0x9E37_79B9_7F4A_7C15
                    func next(_ n: UInt64) -> UInt64 {
                        rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        return (rng >> 33) % n
                    }
                    var seq: UInt64 = 0, mine = 0
                    while true {
                        // Wait for the phase to open (the test thread saw the engine quiescent).
                        while phase.load(ordering: .acquiring) == mine && !stop.load(ordering: .relaxed) { sched_yield() }
                        if stop.load(ordering: .relaxed) { return }
                        mine += 1
                        let until = sp_now_ns() + next(30_000)  // a random few µs into the workers' sleep path
                        while sp_now_ns() < until {}
                        let w = Int(next(UInt64(workers))), l = Int(next(UInt64(lanes)))
                        for _ in 0..<(1 + Int(next(UInt64(2 * capacities[l])))) {
                            seq &+= 1
                            let r: Result<PostResult, PostError> = Result { () throws(PostError) in
                                try engine.post(
                                    Tick(seq: seq, producer: UInt32(p), tag: UInt32(next(2))), as: ticks,
                                    lane: Lane(index: l), to: .worker(WorkerID(w)))
                            }
                            tallies.record(r, worker: w, lane: l)
                            if case .success(.enqueued) = r { enqueuedTotal.add(1, ordering: .relaxed) }
                        }
                        posted.add(1, ordering: .releasing)
                    }
                }.start()
            }
            let start = Date()
            func sleeps() -> UInt64 { (0..<workers).reduce(0) { $0 + engine.workerStats(WorkerID($1)).sleeps } }
            var phases = 0, ok = true
            while sleeps() < targetSleeps && Date().timeIntervalSince(start) < budget {
                phases += 1
                phase.store(phases, ordering: .releasing)
                ok = awaitProgress(
                    engine, "\(backend) phase \(phases): two producers have posted", progress: { posted.load(ordering: .acquiring) },
                    until: { posted.load(ordering: .acquiring) == phases * producers })
                if !ok { break }
                // Nobody posts now but the handlers' forwards: every event must be handled.
                ok = awaitProgress(
                    engine, "\(backend) phase \(phases): quiescence", progress: { handledTotal.load(ordering: .acquiring) },
                    until: { handledTotal.load(ordering: .acquiring) == enqueuedTotal.load(ordering: .acquiring) })
                if !ok { break }
            }
            stop.store(true, ordering: .relaxed)
            for _ in 0..<producers {
                // A producer never waits on a ring (block lanes time out in 2 ms): it ends promptly.
                if finished.wait(timeout: .now() + 5) == .timedOut {
                    Issue.record("a producer did not stop within 5 s\n\(engine.stallReport())")
                }
            }
            let total = sleeps()
            let wakes = (0..<workers).map { engine.workerStats(WorkerID($0)) }
            _ = engine.stop()
            guard ok else { return }
            #expect(total >= targetSleeps, "only \(total) sleep/wake cycles in \(phases) phases, \(budget) s: the race was not exercised enough")
            #expect(wakes.reduce(0) { $0 + $1.foreignWakeups } > 0, "no foreign wake-up")
            if workers > 1 { #expect(wakes.reduce(0) { $0 + $1.wakeupsSent } > 0, "no worker → worker wake-up") }
            // Nothing lost: the engine's counts agree with the producers' and handlers' tallies.
            for w in 0..<workers {
                for l in 0..<lanes {
                    let s = engine.stats(worker: WorkerID(w), lane: Lane(index: l))
                    #expect(s.enqueued == UInt64(tallies.enqueued[w, l]), "w\(w) l\(l) enqueued")
                    #expect(s.rejected == UInt64(tallies.rejected[w, l]), "w\(w) l\(l) rejected")
                    #expect(s.dropped == UInt64(tallies.dropped[w, l]), "w\(w) l\(l) dropped")
                    #expect(s.handled == UInt64(handled[w, l]), "w\(w) l\(l) handled")
                    #expect(s.pending == 0, "w\(w) l\(l) pending")
                }
            }
            #expect(tallies.rejected.total > 0 && tallies.dropped.total > 0, "lanes never filled")
            print("wake-ups: \(backend): \(total) sleeps in \(phases) phases, \(String(format: "%.1f", Date().timeIntervalSince(start))) s; rejected \(tallies.rejected.total), dropped \(tallies.dropped.total)")
        }
    }
}

extension EngineSuites.WakeUpTests {
    /// Block lanes: two foreign threads post 100,000 events each into a 64-slot `block` lane (30 s
    /// timeout) of one worker, so they wait for room again and again; the worker must wake them
    /// (futex) as it frees slots. A lost futex wake-up would hold a producer until its timeout: the
    /// watchdog fails the test after 2 s without progress instead.
    @Test(arguments: backends)
    func blockedProducersAreWokenAsRoomFrees(backend: Engine.Configuration.Backend) throws {
        var config = testConfig(backend: backend, spin: .zero)
        config.lanes[3].capacity = 64
        config.lanes[3].onFull = .block(timeout: .seconds(30))
        let producers = 2, perProducer = 100_000
        var builder = Engine.Builder(configuration: config)
        let handled = Atomic<Int>(0)
        let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
        let engine = try builder.start()
        let enqueued = Atomic<Int>(0), refused = Atomic<Int>(0)
        let finished = DispatchSemaphore(value: 0)
        let target = WorkerID(config.cpus.count - 1)
        for p in 0..<producers {
            Thread {
                defer { finished.signal() }
                for i in 0..<perProducer {
                    do throws(PostError) {
                        try engine.post(Tick(seq: UInt64(i), producer: UInt32(p)), as: ticks, lane: Lane(index: 3), to: .worker(target))
                        enqueued.add(1, ordering: .relaxed)
                    } catch {
                        refused.add(1, ordering: .relaxed)
                    }
                }
            }.start()
        }
        let ok = awaitProgress(
            engine, "\(backend): producers blocked on a full block lane", progress: { handled.load(ordering: .relaxed) },
            until: { handled.load(ordering: .relaxed) == producers * perProducer })
        for _ in 0..<producers {
            if finished.wait(timeout: .now() + (ok ? 5 : 35)) == .timedOut { Issue.record("a producer is still blocked") }
        }
        _ = engine.stop()
        #expect(refused.load(ordering: .relaxed) == 0, "a producer timed out: a futex wake-up was lost")
        #expect(enqueued.load(ordering: .relaxed) == producers * perProducer)
        #expect(engine.stats(worker: target, lane: Lane(index: 3)).handled == UInt64(producers * perProducer))
    }
}

/// Waits until `done()`. Fails — never hangs — when `progress()` stands still for `stall` seconds
/// while `pending()` says events are waiting: the issue names what was awaited and, per worker, its
/// sleep flag, sleeps, wake-ups sent and received and pending events per lane, and its thread as
/// the kernel sees it. Returns `done()`.
///
/// A stall is a lost wake-up only if a worker with events pending is not runnable. When every such
/// worker's thread is runnable (`R`: its wait returned, the scheduler has not given it a CPU — seen
/// for 2.2 s on this 2-vCPU machine at load average ~20, a pinned worker that had run 4.5 ms), the
/// wait goes on, up to `starvedLimit` seconds of no progress, and a note says so.
func awaitProgress(
    _ engine: Engine, _ what: String, stall: Double = 2, starvedLimit: Double = 30, progress: () -> Int,
    pending: () -> Int = { 1 }, until done: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    var last = progress()
    var lastChange = sp_now_ns()
    let limit = UInt64(stall * 1e9), hardLimit = UInt64(starvedLimit * 1e9)
    var noted = false
    while !done() {
        let now = sp_now_ns(), p = progress()
        if p != last || pending() <= 0 {
            last = p
            lastChange = now
        } else if now - lastChange > limit {
            let waiting = workersWithPendingEvents(engine)
            let runnable = waiting.filter { workerThreadState(engine, $0) == "R" }
            if waiting.isEmpty && now - lastChange <= hardLimit {
                // Handled between our two reads (the handler's tally moves before the engine's
                // pending count drops): the next look sees the progress.
            } else if !waiting.isEmpty && runnable.count == waiting.count && now - lastChange <= hardLimit {
                if !noted {
                    noted = true
                    print("note: \(what): no event handled for \(stall) s, but every worker with events pending is runnable (woken, waiting for a CPU: the machine is loaded), not asleep; waiting up to \(starvedLimit) s\n\(workerThreads(engine))")
                }
            } else {
                let why = waiting.isEmpty || runnable.count < waiting.count ? "" : " (runnable all along: starved, not asleep)"
                Issue.record(
                    "stalled: \(what): no event handled for \(Double(now - lastChange) / 1e9) s with events pending\(why)\n\(engine.stallReport())\n\(workerThreads(engine))",
                    sourceLocation: sourceLocation)
                return false
            }
        }
        usleep(200)  // a poll interval, bounded by the stall deadlines above
    }
    return true
}

/// Workers with events pending on any lane (from the engine's counts).
func workersWithPendingEvents(_ engine: Engine) -> [Int] {
    (0..<engine.workerCount).filter { w in
        engine.configuration.lanes.indices.contains { engine.stats(worker: WorkerID(w), lane: Lane(index: $0)).pending > 0 }
    }
}

/// The scheduler state of a worker's thread ("R" running or runnable, "S" asleep, …; nil once it exited).
func workerThreadState(_ engine: Engine, _ w: Int) -> String? {
    let tid = engine.threadID(of: WorkerID(w))
    guard let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8) else { return nil }
    return stat.split(separator: ")").last?.split(separator: " ").first.map(String.init)
}

/// Stops `engine` (deadline `seconds`) on another thread while watching it: fails — never hangs —
/// if, `stall` seconds after the shutdown began, every worker thread still alive is asleep (none
/// runnable) on two looks 100 ms apart: nothing can end the shutdown but its deadline, so a worker
/// missed a shutdown wake-up. While some worker is runnable (woken, maybe waiting for a CPU on a
/// loaded machine) the drain can go on, and it is waited for, up to the deadline. Returns the
/// report, or nil after 2 × `seconds`.
func stopWatched(
    _ engine: Engine, _ what: String, stall: Double = 2, seconds: Int = 30, sourceLocation: SourceLocation = #_sourceLocation
) -> ShutdownReport? {
    let done = DispatchSemaphore(value: 0)
    let result = Locked<ShutdownReport?>(nil)
    Thread {
        let r = engine.stop(seconds)
        result.withLock { $0 = r }
        done.signal()
    }.start()
    let t0 = sp_now_ns()
    var flagged = false, allAsleepSince: UInt64 = 0
    while done.wait(timeout: .now() + .milliseconds(1)) == .timedOut {
        let now = sp_now_ns(), elapsed = Double(now - t0) / 1e9
        if !flagged && elapsed > stall {
            let states = (0..<engine.workerCount).compactMap { workerThreadState(engine, $0) }  // nil: exited
            if !states.isEmpty && !states.contains("R") {
                if allAsleepSince == 0 {
                    allAsleepSince = now
                } else if now - allAsleepSince > 100_000_000 {
                    flagged = true
                    Issue.record(
                        "\(what): shutdown has waited \(elapsed) s with every remaining worker asleep: a missed shutdown wake-up\n\(engine.stallReport())\n\(workerThreads(engine))",
                        sourceLocation: sourceLocation)
                }
            } else {
                allAsleepSince = 0
            }
        }
        if elapsed > Double(2 * seconds) {
            Issue.record("\(what): shutdown did not return in \(2 * seconds) s", sourceLocation: sourceLocation)
            return nil
        }
    }
    return result.withLock { $0 }
}

/// Each worker thread as the kernel sees it (/proc/self/task/TID): scheduler state (R running or
/// runnable, S sleeping), the CPU it last ran on, the syscall it is in (number; "running" when
/// none), time run and time waited for a CPU (schedstat), context switches — so a stall report tells
/// a worker asleep in its wait (a lost wake-up) from one that is runnable but not given the CPU.
func workerThreads(_ engine: Engine) -> String {
    (0..<engine.workerCount).map { w in
        let tid = engine.threadID(of: WorkerID(w))
        func read(_ f: String) -> String {
            ((try? String(contentsOfFile: "/proc/self/task/\(tid)/\(f)", encoding: .utf8)) ?? "?")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let stat = read("stat")
        // Fields after the ")" that ends the name: state is the first, processor the 37th.
        let after = stat.split(separator: ")").last.map { $0.split(separator: " ") } ?? []
        let state = after.first.map(String.init) ?? "?", cpu = after.count > 36 ? String(after[36]) : "?"
        let sched = read("schedstat").split(separator: " ")
        let ran = sched.count > 1 ? (Double(sched[0]) ?? 0) / 1e6 : -1, waited = sched.count > 1 ? (Double(sched[1]) ?? 0) / 1e6 : -1
        let switches = read("status").split(separator: "\n").filter { $0.contains("ctxt_switches") }
            .map { $0.replacingOccurrences(of: "\t", with: " ") }.joined(separator: ", ")
        let syscall = read("syscall").split(separator: " ").first.map(String.init) ?? "?"
        return "thread of worker \(w) (tid \(tid)): state \(state), cpu \(cpu), syscall \(syscall), wchan \(read("wchan")), "
            + "ran \(String(format: "%.1f", ran)) ms, waited for a CPU \(String(format: "%.1f", waited)) ms; \(switches)"
    }.joined(separator: "\n")
}
