import Spindle
import SpindleTesting
import Synchronization
import Testing

/// A firing as a handler saw it.
struct Firing: Equatable, CustomStringConvertible {
    var name: String, deadline: Duration, lateness: Duration, coalesced: Int, cancelled: Bool = false
    var description: String { "\(name)@\(deadline)\(cancelled ? " cancelled" : "")" }
}

/// The manual clock: timers — the builder's and those handlers start at run time — fire in
/// deadline order as `advance(by:)` moves it; a worker that fell behind (`moveClock`) gets a
/// periodic timer's missed deadlines folded into one firing.
@Suite struct ClockTests {
    final class Firings: Sendable {
        let all = Mutex<[Firing]>([])
        func note(_ name: String, _ t: TimerEvent) {
            all.withLock {
                $0.append(
                    Firing(
                        name: name, deadline: .nanoseconds(Int64(t.deadlineNanoseconds)), lateness: t.lateness,
                        coalesced: t.coalesced, cancelled: t.isCancelled))
            }
        }
        var list: [Firing] { all.withLock { $0 } }
    }

    struct Start: InlineEvent {
        var delay: Int64
        var tag: UInt64
    }
    struct Cancel: InlineEvent { var tag: UInt64 }

    /// Builder timers (one-shots at 5 and 2 ms, a periodic every 3 ms) and a run-time timer a
    /// handler starts at 2 ms for 2 ms later (4 ms): one `advance(by: 10 ms)` fires them in
    /// deadline order, each at its own deadline (no lateness), on the test thread.
    @Test func timersFireInDeadlineOrder() throws {
        let f = Firings()
        var builder = Engine.Builder(configuration: oneWorker())
        let critical = try builder.lane(named: "critical")
        let normal = try builder.lane(named: "normal")
        let expiries = try builder.timers(lane: normal) { t, _ in f.note("runtime \(t.tag)", t) }
        try builder.timer(after: .milliseconds(5), lane: critical) { t, _ in f.note("after 5", t) }
        try builder.timer(after: .milliseconds(2), lane: normal) { t, ctx in
            f.note("after 2", t)
            try ctx.startTimer(after: .milliseconds(2), as: expiries, tag: 42)
        }
        try builder.timer(every: .milliseconds(3), lane: normal) { t, _ in f.note("every 3", t) }
        let test = try TestEngine(builder)
        #expect(test.now == .zero && test.nextTimerDeadline == .milliseconds(2))

        try test.advance(by: .milliseconds(10))

        let ms = Duration.milliseconds
        let expected = [
            ("after 2", 2), ("every 3", 3), ("runtime 42", 4), ("after 5", 5), ("every 3", 6), ("every 3", 9),
        ]
        .map { Firing(name: $0.0, deadline: ms($0.1), lateness: .zero, coalesced: 0) }
        #expect(f.list == expected)
        #expect(test.now == .milliseconds(10))
        #expect(test.nextTimerDeadline == .milliseconds(12))  // the periodic one only: the one-shots ended
    }

    /// A periodic timer on time, then a worker that fell behind: `advance` fires every 1 ms at
    /// its deadline; after `moveClock(by: 3.5 ms)` the next round reaps one firing for the
    /// deadlines at 6, 7 and 8 ms (2 coalesced, 2.5 ms late, standing for 8 ms), handled a round
    /// later — as a real worker reaps after its round and handles at the next.
    @Test func periodicTimerCoalescesWhenBehind() throws {
        let f = Firings()
        var builder = Engine.Builder(configuration: oneWorker())
        let high = try builder.lane(named: "high")
        try builder.timer(every: .milliseconds(1), lane: high) { t, _ in f.note("tick", t) }
        let test = try TestEngine(builder)
        try test.advance(by: .milliseconds(5))
        #expect(f.list.map(\.deadline) == (1...5).map { Duration.milliseconds($0) })
        #expect(f.list.allSatisfy { $0.coalesced == 0 && $0.lateness == .zero })

        test.moveClock(by: .microseconds(3_500))
        #expect(test.step() == 0)  // the round finds nothing; the reap after it queues the firing
        #expect(test.depth(worker: WorkerID(0), lane: high) == 1)
        #expect(test.step() == 1)
        let late = try #require(f.list.last)
        #expect(f.list.count == 6)
        #expect(late.coalesced == 2 && late.lateness == .microseconds(2_500) && late.deadline == .milliseconds(8))
        #expect(test.nextTimerDeadline == .milliseconds(9))  // the schedule does not drift
        #expect(try test.runUntilIdle() == 0)
    }

    /// A handler cancels a run-time timer: it never fires; its one final event is the
    /// `cancelled` one; the other timer, started alongside, fires at its deadline.
    @Test func cancelledTimerEndsOnce() throws {
        let f = Firings()
        var builder = Engine.Builder(configuration: oneWorker())
        let normal = try builder.lane(named: "normal")
        let ids = builder.coreLocal { _ in [UInt64: TimerID]() }
        let expiries = try builder.timers(lane: normal) { t, _ in f.note("tag \(t.tag)", t) }
        let start = try builder.register(Start.self, using: ids) { s, ids, ctx in
            ids[s.tag] = try ctx.startTimer(after: .nanoseconds(s.delay), as: expiries, tag: s.tag)
        }
        let cancel = try builder.register(Cancel.self, using: ids) { c, ids, ctx in
            let cancelled = ctx.cancel(ids[c.tag]!)
            #expect(cancelled)
        }
        let test = try TestEngine(builder)
        try test.post(Start(delay: 5_000_000, tag: 1), as: start, lane: normal, to: .worker(WorkerID(0)))
        try test.post(Start(delay: 5_000_000, tag: 2), as: start, lane: normal, to: .worker(WorkerID(0)))
        try test.advance(by: .milliseconds(1))
        try test.post(Cancel(tag: 1), as: cancel, lane: normal, to: .worker(WorkerID(0)))
        try test.advance(by: .milliseconds(9))
        #expect(f.list.map(\.name) == ["tag 1", "tag 2"])
        #expect(f.list[0].cancelled && !f.list[1].cancelled && f.list[1].deadline == .milliseconds(5))
        #expect(test.nextTimerDeadline == nil)
    }

    /// I/O sources other than timers are refused when the test engine is made, naming the source.
    @Test func ioSourcesAreRefused() throws {
        var builder = Engine.Builder(configuration: oneWorker())
        try builder.watch(fd: 0, lane: Lane(index: 1)) { _, _ in }
        #expect {
            _ = try TestEngine(builder)
        } throws: { error in
            guard let e = error as? SpindleError else { return false }
            return e.code == .invalidConfiguration && e.message.contains("fd 0") && e.message.contains("timers only")
        }
    }
}
