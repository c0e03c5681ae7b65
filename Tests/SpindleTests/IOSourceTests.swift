import CMallocCounter
import CSpindle
import Foundation
import Synchronization
import Testing

@testable import Spindle

extension EngineSuites {
    /// I/O sources: timers, fd watches and signals become events in their lanes, on both backends;
    /// every outcome is an event, a cancel ends a source with exactly one `cancelled` event, and a
    /// full lane holds completions back instead of dropping them. Counts come from the handlers.
    @Suite(.serialized)
    struct IOSourceTests {
        /// Everything a source's handler saw, in order.
        final class Seen<E: Sendable>: Sendable {
            let events = Recorder<(E, UInt64)>()
            func add(_ e: E) { events.append((e, sp_now_ns())) }
            var all: [E] { events.all.map(\.0) }
            var times: [UInt64] { events.all.map(\.1) }
        }

        /// A periodic 1 ms timer fires on schedule: firings + coalesced ones match the elapsed time
        /// (counted, never slept), its lateness is recorded, and cancel ends it with one final event.
        @Test(arguments: backends)
        func periodicTimerFiresOnScheduleAndCancels(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let seen = Seen<TimerEvent>()
            let timer = try builder.timer(every: .milliseconds(1), lane: Lane(index: 0)) { t, _ in seen.add(t) }
            let engine = try builder.start()
            #expect(eventually(within: 5) { seen.events.count >= 200 }, "200 firings of a 1 ms timer within 5 s")
            let fired = seen.all
            let ticks = fired.reduce(0) { $0 + 1 + $1.coalesced }
            // Every deadline of the schedule is accounted for exactly once, however late the worker
            // was: firings plus coalesced ones = the deadlines from the first to the last.
            let first = fired.first!, last = fired.last!
            let deadlines = Int((last.deadlineNanoseconds - first.deadlineNanoseconds) / 1_000_000) + 1 + first.coalesced
            #expect(ticks == deadlines, "\(ticks) firings (coalesced included) for \(deadlines) deadlines")
            let spans = zip(fired.dropFirst(), fired).map { Int(($0.deadlineNanoseconds - $1.deadlineNanoseconds) / 1_000) }
            #expect(zip(spans, fired.dropFirst()).allSatisfy { $0 == 1000 * (1 + $1.coalesced) }, "deadlines 1 ms apart (µs): \(spans.prefix(10))")
            #expect(!fired.contains { $0.isFinal || $0.isCancelled || $0.error != nil })
            #expect(timer.cancel())
            #expect(eventually { seen.all.last?.isCancelled == true })
            let after = seen.events.count
            usleep(20_000)  // a window in which a live 1 ms timer would fire 20 times
            #expect(seen.events.count == after, "events after the cancelled event")
            #expect(seen.all.filter(\.isCancelled).count == 1)
            #expect(timer.isFinished)
            #expect(!timer.cancel(), "cancel of an ended timer says so")
            #expect(eventually { engine.ioStats(WorkerID(0)).live == 0 })
            _ = engine.stop()
        }

        /// A one-shot timer fires once, as its final event; cancelling it afterwards is refused.
        @Test(arguments: backends)
        func oneShotTimerFiresOnce(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let seen = Seen<TimerEvent>()
            let started = sp_now_ns()
            let timer = try builder.timer(after: .milliseconds(5), lane: Lane(index: 1), on: .worker(WorkerID(0))) { t, _ in
                seen.add(t)
            }
            let engine = try builder.start()
            #expect(eventually { timer.isFinished })
            #expect(seen.events.count == 1)
            let t = try #require(seen.all.first)
            #expect(t.isFinal && !t.isCancelled && t.error == nil)
            #expect(seen.times[0] - started >= 5_000_000, "fired before its deadline")
            #expect(!timer.cancel())
            _ = engine.stop()
        }

        /// Cancel from the handler itself (on the source's worker): the events already queued behind
        /// the current one are not handed over; exactly one `cancelled` event follows.
        @Test(arguments: backends)
        func cancelInsideAHandlerStopsAtOnce(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let seen = Seen<TimerEvent>()
            let handle = LateBox<SourceHandle?>(nil)
            let cancelledAt = Atomic<Int>(-1)
            handle.value = try builder.timer(every: .microseconds(50), lane: Lane(index: 2)) { t, _ in
                seen.add(t)
                let n = seen.events.count
                if n == 20 {
                    #expect(handle.value!.cancel())
                    cancelledAt.store(n, ordering: .relaxed)
                }
            }
            let engine = try builder.start()
            #expect(eventually { handle.value!.isFinished })
            usleep(5_000)  // 100 periods: nothing may follow the final event
            let all = seen.all
            #expect(cancelledAt.load(ordering: .relaxed) == 20)
            #expect(all.count == 21, "20 firings, then exactly the cancelled event: saw \(all.count)")
            #expect(all.last?.isCancelled == true && all.last?.isFinal == true)
            _ = engine.stop()
        }

        /// An fd watch on a pipe: every byte written from another thread is read by the handler
        /// (edge-like events: it reads until EAGAIN), then cancel, then close.
        @Test(arguments: backends)
        func pipeWatchDeliversEveryByte(backend: Engine.Configuration.Backend) throws {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
            defer { close(fds[1]) }
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let bytes = Atomic<Int>(0), events = Atomic<Int>(0), cancelled = Atomic<Int>(0)
            let reader = fds[0]
            let watch = try builder.watch(fd: reader, for: .readable, lane: Lane(index: 3), on: .worker(WorkerID(1 % testConfig().cpus.count))) { r, _ in
                if r.isCancelled { cancelled.add(1, ordering: .relaxed); return }
                events.add(1, ordering: .relaxed)
                var buf = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(reader, &buf, buf.count)
                    if n <= 0 { break }
                    bytes.add(n, ordering: .relaxed)
                }
            }
            let engine = try builder.start()
            let total = 1 << 20
            var written = 0
            let chunk = [UInt8](repeating: 7, count: 1000)
            while written < total {
                let n = write(fds[1], chunk, min(chunk.count, total - written))
                if n > 0 { written += n } else { sched_yield() }  // the pipe is full: the worker drains it
            }
            #expect(eventually { bytes.load(ordering: .relaxed) == total }, "read \(bytes.load(ordering: .relaxed)) of \(total)")
            #expect(events.load(ordering: .relaxed) > 0)
            #expect(watch.cancel())
            #expect(eventually { cancelled.load(ordering: .relaxed) == 1 })
            _ = engine.stop()
            close(reader)
        }

        /// A completion queue too small for the burst (8 SQ entries: 16 CQEs) and 64 pipes written at
        /// once: the kernel ends multishot polls it cannot post to (a CQE without F_MORE); the engine
        /// re-arms them (counted) and every byte is still read.
        @Test(arguments: backends)
        func multishotEndedByTheKernelIsReArmed(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(workers: 1, backend: backend)
            config.uringEntries = 8
            var builder = Engine.Builder(configuration: config)
            let got = Atomic<Int>(0)
            var pipes: [(Int32, Int32)] = []
            for _ in 0..<64 {
                var fds: [Int32] = [0, 0]
                #expect(pipe(&fds) == 0)
                _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
                pipes.append((fds[0], fds[1]))
                let r = fds[0]
                try builder.watch(fd: r, lane: Lane(index: 2)) { _, _ in
                    var b = [UInt8](repeating: 0, count: 256)
                    while true {
                        let n = read(r, &b, b.count)
                        if n <= 0 { break }
                        got.add(n, ordering: .relaxed)
                    }
                }
            }
            let engine = try builder.start()
            defer { for (r, w) in pipes { close(r); close(w) } }
            for round in 0..<20 {
                for (_, w) in pipes { _ = write(w, "0123456789", 10) }
                #expect(eventually { got.load(ordering: .relaxed) == (round + 1) * 640 }, "round \(round): read \(got.load(ordering: .relaxed))")
            }
            if backend == .ioUring {
                #expect(engine.ioStats(WorkerID(0)).rearms > 0, "the CQ never overflowed: the test did not test it")
            }
            _ = engine.stop()
        }

        /// 300 one-shot timers fire at once into a 64-slot lane served one event per round, which
        /// the held handler filled: the lane is full, the completions wait (CQ / held readiness), and every firing is
        /// handled — none lost.
        @Test(arguments: backends)
        func completionsWaitForRoomInAFullLane(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(backend: backend)
            config.lanes[3].capacity = 64
            config.lanes[3].maxBatch = 1  // one event of the lane per round: completions outpace it
            var builder = Engine.Builder(configuration: config)
            let gate = WorkerGate()
            let filler = Atomic<Int>(0)
            let ticks = try builder.register(Tick.self) { _, _ in filler.add(1, ordering: .relaxed) }
            let posted = Atomic<Int>(0)
            let hold = try builder.register(Gate.self) { _, ctx in
                // The lane's slots taken (this worker's own queue, where completions go too).
                for i in 0..<64 {
                    guard (try? ctx.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: 3))) != nil else { break }
                    posted.add(1, ordering: .relaxed)
                }
                gate.hold()
            }
            let fired = Atomic<Int>(0)
            var handles: [SourceHandle] = []
            for _ in 0..<300 {
                handles.append(try builder.timer(after: .milliseconds(300), lane: Lane(index: 3)) { t, _ in
                    if t.isFinal && !t.isCancelled { fired.add(1, ordering: .relaxed) }
                })
            }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: hold, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(gate.waitUntilHeld())
            usleep(400_000)  // let every deadline pass while the worker is held (not a synchronization)
            gate.open()
            #expect(eventually { fired.load(ordering: .relaxed) == 300 }, "fired \(fired.load(ordering: .relaxed)) of 300")
            #expect(handles.filter { !$0.isFinished }.count == 0)
            #expect(eventually { filler.load(ordering: .relaxed) == posted.load(ordering: .relaxed) })
            #expect(engine.ioStats(WorkerID(0)).stalled > 0, "the lane never filled: the test did not test it \(engine.ioStats(WorkerID(0))) \(engine.stats(worker: WorkerID(0), lane: Lane(index: 3))) \(engine.workerStats(WorkerID(0)))")
            _ = engine.stop()
        }

        /// A busy worker with a timer in flight and a flood of posts: on io_uring it never enters the
        /// kernel for I/O (nothing to submit, no task work); on epoll at most once per 20 µs.
        @Test(arguments: backends)
        func busyWorkerDoesNotEnterTheKernelPerRound(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1, backend: backend, spin: .seconds(1)))
            let handled = Atomic<Int>(0)
            let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
            try builder.timer(after: .seconds(60), lane: Lane(index: 0)) { _, _ in }
            let engine = try builder.start()
            let before = engine.ioStats(WorkerID(0))
            let t0 = sp_now_ns()
            for i in 0..<200_000 { try postRetrying(engine, Tick(seq: UInt64(i), producer: 0), ticks, Lane(index: 3), .worker(WorkerID(0))) }
            #expect(eventually { handled.load(ordering: .relaxed) == 200_000 })
            let elapsed = sp_now_ns() - t0
            let after = engine.ioStats(WorkerID(0))
            let rounds = engine.workerStats(WorkerID(0)).rounds
            if backend == .ioUring {
                #expect(after.enters - before.enters <= 1, "io_uring_enter while busy with posts only: \(after.enters - before.enters) in \(rounds) rounds")
            } else {
                #expect(after.enters - before.enters <= elapsed / 20_000 + 1, "epoll_wait more than once per 20 µs")
            }
            #expect(after.live == 1)
            _ = engine.stop()
        }

        /// Signals: SIGUSR1 sent to the process becomes a lane event; a second owner of the same
        /// signal is refused at start with the reason; the default disposition is back after shutdown.
        @Test(arguments: backends)
        func signalBecomesAnEventWithOneOwner(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let seen = Seen<SignalEvent>()
            try builder.signals([.usr1], lane: Lane(index: 0)) { s, _ in seen.add(s) }
            let engine = try builder.start()
            var second = Engine.Builder(configuration: testConfig(backend: backend))
            try second.signals([.usr1], lane: Lane(index: 0)) { _, _ in }
            #expect {
                _ = try second.start()
            } throws: { error in
                let e = error as? SpindleError
                return e?.code == .startFailed && "\(e!)".contains("already has an owner")
            }
            kill(getpid(), SIGUSR1)
            #expect(eventually { seen.all.contains { $0.signal == .usr1 } })
            _ = engine.stop()
            var old = sigaction()
            sigaction(SIGUSR1, nil, &old)
            #expect(old.__sigaction_handler.sa_handler == nil, "SIGUSR1 is back to SIG_DFL after shutdown")
        }

        /// Cancelling a signal source: exactly one `cancelled` event, and the signal goes back to its
        /// default disposition (another owner may take it).
        @Test(arguments: backends)
        func cancelledSignalSourceEndsOnceAndReleasesTheSignal(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let seen = Seen<SignalEvent>()
            let source = try builder.signals([.usr2], lane: Lane(index: 1)) { s, _ in seen.add(s) }
            let engine = try builder.start()
            #expect(source.cancel())
            #expect(eventually { source.isFinished })
            #expect(seen.all.filter(\.isCancelled).count == 1 && seen.all.count == 1)
            var old = sigaction()
            sigaction(SIGUSR2, nil, &old)
            #expect(old.__sigaction_handler.sa_handler == nil, "SIGUSR2 is back to SIG_DFL after cancel")
            var again = Engine.Builder(configuration: testConfig(backend: backend))
            try again.signals([.usr2], lane: Lane(index: 1)) { _, _ in }
            let second = try again.start()  // a new owner is accepted
            _ = second.stop()
            _ = engine.stop()
        }

        /// Timers started by a handler at run time (e.g. expiries): 1,000 one-shots with tags, half
        /// cancelled at once by the same handler — each of those ends with exactly one `cancelled`
        /// event, each of the others fires exactly once with its tag; starting them allocates nothing.
        @Test(arguments: backends)
        func handlerStartedTimersFireOrCancelOnce(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let fired = Grid(workers: 1000, lanes: 2)  // [tag, 0]: fired, [tag, 1]: cancelled
            let kind = try builder.timers(lane: Lane(index: 2)) { t, _ in fired.add(Int(t.tag), t.isCancelled ? 1 : 0) }
            let allocations = Atomic<Int>(-1), refused = Atomic<Int>(0)
            let starter = try builder.register(Gate.self) { _, ctx in
                var ids: [TimerID] = []
                ids.reserveCapacity(1000)
                let reserved = spmc_thread()
                for tag in 0..<1000 {
                    guard let id = try? ctx.startTimer(after: .milliseconds(50), as: kind, tag: UInt64(tag)) else {
                        refused.add(1, ordering: .relaxed)
                        continue
                    }
                    ids.append(id)
                }
                allocations.store(Int(spmc_thread() - reserved), ordering: .relaxed)
                for (tag, id) in ids.enumerated() where tag % 2 == 0 {
                    if !ctx.cancel(id) { refused.add(1, ordering: .relaxed) }
                }
            }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: starter, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { fired.total == 1000 }, "\(fired.total) of 1000 timers ended")
            usleep(100_000)  // past every deadline: nothing more may come
            #expect(fired.total == 1000)
            #expect(refused.load(ordering: .relaxed) == 0)
            for tag in 0..<1000 {
                let expect = tag % 2 == 0 ? (0, 1) : (1, 0)
                if (fired[tag, 0], fired[tag, 1]) != expect {
                    Issue.record("timer \(tag): fired \(fired[tag, 0]), cancelled \(fired[tag, 1])")
                    break
                }
            }
            if spmc_available() == 1 { #expect(allocations.load(ordering: .relaxed) == 0, "startTimer allocated") }
            _ = engine.stop()
        }

        /// SIGTERM to the process → a lane event → a clean shutdown from it (in a child process:
        /// an unhandled SIGTERM would kill it, exit code ≠ 0).
        @Test func sigtermBecomesAShutdownOnIoUring() async {
            await #expect(processExitsWith: .exitCode(0)) { IOSourceTests.shutDownOnSIGTERM(ioUringDenied ? .auto : .ioUring) }
        }

        @Test func sigtermBecomesAShutdownOnEpoll() async {
            await #expect(processExitsWith: .exitCode(0)) { IOSourceTests.shutDownOnSIGTERM(.epoll) }
        }

        static func shutDownOnSIGTERM(_ backend: Engine.Configuration.Backend) -> Never {
            var builder = Engine.Builder(configuration: testConfig(backend: backend))
            let asked = DispatchSemaphore(value: 0)
            try! builder.signals([.term], lane: Lane(index: 0)) { s, _ in if s.signal == .term { asked.signal() } }
            let engine = try! builder.start()
            kill(getpid(), SIGTERM)
            guard asked.wait(timeout: .now() + 10) == .success else { exit(3) }
            let report = engine.stop()
            exit(report.drained ? 0 : 4)
        }
    }
}
