import Spindle
import SpindleTesting
import Synchronization
import Testing

/// A handler's own kind, for a handler that posts to itself.
final class KindBox: Sendable { let kind = Mutex<EventKind<Job>?>(nil) }

struct Job: InlineEvent {
    var seq: UInt32
    var posts: UInt32 = 0
}

/// One worker on CPU 0 with the embedded default's four lanes (critical strict 64, high 8,
/// normal 4, bulk 1; max batch 32; capacity 4096). Host rules are not checked by a test engine.
func oneWorker(lanes: [Engine.LaneConfiguration]? = nil) -> Engine.Configuration {
    var c = Engine.Configuration.hostDefault
    c.cpus = [0]
    if let lanes { c.lanes = lanes }
    return c
}

/// What the engine's handlers saw, per worker: (lane, seq) in the order handled.
typealias Log = [(lane: Int, seq: UInt32)]

/// The scheduling rules of DESIGN.md ("A round"), observed through a test engine step by step;
/// expected numbers come from the configuration and the handlers' own logs.
@Suite struct SchedulingRulesTests {
    struct Rig {
        let test: TestEngine
        let log: CoreLocal<Log>
        let job: EventKind<Job>
        func lane(_ i: Int) -> Lane { Lane(index: i) }
        func handled(_ worker: Int = 0) -> Log { test.withState(log, on: WorkerID(worker)) { $0 } }
    }

    /// A job handler that logs (lane, seq) and, when `posts` is set, posts that many jobs to the
    /// strict lane 0 of its own worker.
    func rig(_ config: Engine.Configuration) throws -> Rig {
        var builder = Engine.Builder(configuration: config)
        let log = builder.coreLocal { _ in Log() }
        let kind = try builder.register(Job.self, using: log) { job, log, ctx in log.append((ctx.lane.index, job.seq)) }
        return Rig(test: try TestEngine(builder), log: log, job: kind)
    }

    /// Strict before weighted: bulk jobs posted first, critical jobs after; one round handles the
    /// critical ones first.
    @Test func strictLaneFirst() throws {
        let r = try rig(oneWorker())
        for i in 0..<10 { try r.test.post(Job(seq: UInt32(i)), as: r.job, lane: r.lane(3), to: .worker(WorkerID(0))) }
        for i in 0..<5 {
            try r.test.post(Job(seq: UInt32(100 + i)), as: r.job, lane: r.lane(0), to: .worker(WorkerID(0)))
        }
        #expect(r.test.depth(worker: WorkerID(0), lane: r.lane(3)) == 10)
        #expect(r.test.step() == 15)
        #expect(r.handled().map(\.lane) == Array(repeating: 0, count: 5) + Array(repeating: 3, count: 10))
        #expect(r.handled().map(\.seq) == (100..<105).map(UInt32.init) + (0..<10).map(UInt32.init))
    }

    /// A strict lane gets at most its budget per round, then the weighted lanes get their turn:
    /// 100 critical and 100 bulk jobs take two rounds: budget, quantum, the rest of both.
    @Test func strictBudgetPerRound() throws {
        let config = oneWorker()
        guard case .strict(let budget) = config.lanes[0].policy, case .weighted(let weight) = config.lanes[3].policy
        else {
            Issue.record("the embedded default's lanes changed")
            return
        }
        let quantum = weight * config.lanes[3].maxBatch
        let r = try rig(config)
        for i in 0..<100 {
            try r.test.post(Job(seq: UInt32(i)), as: r.job, lane: r.lane(3), to: .worker(WorkerID(0)))
            try r.test.post(Job(seq: UInt32(i)), as: r.job, lane: r.lane(0), to: .worker(WorkerID(0)))
        }
        #expect(r.test.step() == budget + quantum)
        #expect(r.handled().map(\.lane) == Array(repeating: 0, count: budget) + Array(repeating: 3, count: quantum))
        r.test.step()
        let second = r.handled().dropFirst(budget + quantum).map(\.lane)
        #expect(
            second == Array(repeating: 0, count: 100 - budget) + Array(repeating: 3, count: min(quantum, 100 - quantum))
        )
    }

    /// Deficit round robin: with high, normal and bulk all backlogged, every round hands each
    /// weighted lane exactly its quantum (weight × max batch), so over many rounds the shares
    /// are the weights' (8 : 4 : 1 in the embedded default).
    @Test func weightedSharesFollowWeights() throws {
        let config = oneWorker()
        let r = try rig(config)
        let weighted = [1, 2, 3]
        let quanta = weighted.map { l -> Int in
            guard case .weighted(let w) = config.lanes[l].policy else { return 0 }
            return w * config.lanes[l].maxBatch
        }
        let capacity = config.lanes[1].capacity
        for l in weighted {
            for i in 0..<capacity {
                try r.test.post(Job(seq: UInt32(i)), as: r.job, lane: r.lane(l), to: .worker(WorkerID(0)))
            }
        }
        let rounds = capacity / quanta[0]  // the highest-weight lane stays backlogged throughout
        var perRound: [[Int]] = []
        var seen = 0
        for _ in 0..<rounds {
            r.test.step()
            let log = r.handled()
            perRound.append(weighted.map { l in log[seen...].filter { $0.lane == l }.count })
            seen = log.count
        }
        #expect(perRound.allSatisfy { $0 == quanta }, "per round \(perRound.prefix(3)), quanta \(quanta)")
        let totals = weighted.map { l in r.handled().filter { $0.lane == l }.count }
        #expect(totals == quanta.map { $0 * rounds })
        // Every lane's events in the order posted (one producer, one lane, one destination).
        for l in weighted {
            #expect(r.handled().filter { $0.lane == l }.map(\.seq) == (0..<UInt32(totals[l - 1])).map { $0 })
        }
    }

    /// Bounded batches: a weighted lane's handler that posts to the strict lane is followed by
    /// that strict event at once — the batch in progress is cut after the current handler.
    @Test func strictPostCutsTheWeightedBatch() throws {
        var builder = Engine.Builder(configuration: oneWorker())
        let log = builder.coreLocal { _ in Log() }
        let strict = try builder.register(Job.self, using: log) { job, log, _ in log.append((0, job.seq)) }
        let job = try builder.register(Quote.self, using: log) { q, log, ctx in
            log.append((3, q.symbol))
            if q.symbol % 10 == 9 { try ctx.post(Job(seq: q.symbol), as: strict, lane: Lane(index: 0)) }
        }
        let test = try TestEngine(builder)
        for i in 0..<30 {
            try test.post(
                Quote(symbol: UInt32(i), bid: 0, ask: 0), as: job, lane: Lane(index: 3), to: .worker(WorkerID(0)))
        }
        #expect(test.step() == 33)
        var expected: Log = []
        for i in 0..<30 {
            expected.append((3, UInt32(i)))
            if i % 10 == 9 { expected.append((0, UInt32(i))) }
        }
        let got = test.withState(log, on: WorkerID(0)) { $0 }
        #expect(got.map(\.lane) == expected.map(\.lane) && got.map(\.seq) == expected.map(\.seq))
    }

    /// `.key` routing: every event with a key is handled on the worker `worker(for: .key(k))`
    /// names — the real engine's mixer — with four workers (more than this machine may have:
    /// a test engine does not check host rules).
    @Test func keyRouting() throws {
        var config = oneWorker()
        config.cpus = [0, 1, 2, 3]
        var builder = Engine.Builder(configuration: config)
        let seenOn = builder.coreLocal { _ in [UInt32]() }
        let job = try builder.register(Job.self, using: seenOn) { job, seen, _ in seen.append(job.seq) }
        let test = try TestEngine(builder)
        var expected = Array(repeating: [UInt32](), count: 4)
        for k in 0..<UInt32(64) {
            try test.post(Job(seq: k), as: job, lane: Lane(index: 2), to: .key(UInt64(k)))
            expected[try #require(test.worker(for: .key(UInt64(k)))).rawValue].append(k)
        }
        try test.runUntilIdle()
        for w in 0..<4 { #expect(test.withState(seenOn, on: WorkerID(w)) { $0 } == expected[w]) }
        #expect(expected.allSatisfy { !$0.isEmpty })  // 64 keys reach every worker
    }

    /// A handler's post to another worker takes that pair's ring and is published when its batch
    /// ends: the other worker handles it in the same step when it comes later (worker 1 after
    /// worker 0), else in the next step.
    @Test func crossWorkerPostsFollowTheStepOrder() throws {
        var config = oneWorker()
        config.cpus = [0, 1]
        var builder = Engine.Builder(configuration: config)
        let seen = builder.coreLocal { _ in [UInt32]() }
        let box = KindBox()
        let relay = try builder.register(Job.self, using: seen) { job, seen, ctx in
            seen.append(job.seq)
            guard job.posts > 0 else { return }
            let next = Job(seq: job.seq + 1, posts: job.posts - 1)
            try ctx.post(next, as: box.kind.withLock { $0! }, lane: ctx.lane, to: .worker(WorkerID(1 - ctx.worker.rawValue)))
        }
        box.kind.withLock { $0 = relay }
        let test = try TestEngine(builder)
        try test.post(Job(seq: 0, posts: 3), as: relay, lane: Lane(index: 2), to: .worker(WorkerID(0)))
        #expect(test.step() == 2)  // worker 0 handles 0; worker 1, later in the step, handles 1
        #expect(test.depth(worker: WorkerID(0), lane: Lane(index: 2)) == 1)  // 2, posted by worker 1
        #expect(test.step() == 2)
        #expect(test.step() == 0)
        #expect(test.withState(seen, on: WorkerID(0)) { $0 } == [0, 2])
        #expect(test.withState(seen, on: WorkerID(1)) { $0 } == [1, 3])
    }

    /// A full `reject` lane refuses the post, as on a real engine: capacity, then `laneFull`.
    @Test func fullLaneRejects() throws {
        let r = try rig(
            oneWorker(lanes: [.init(name: "only", policy: .weighted(weight: 1), capacity: 64, maxBatch: 8)]))
        for i in 0..<64 { try r.test.post(Job(seq: UInt32(i)), as: r.job, lane: r.lane(0), to: .worker(WorkerID(0))) }
        #expect(throws: PostError.self) {
            try r.test.post(Job(seq: 64), as: r.job, lane: r.lane(0), to: .worker(WorkerID(0)))
        }
        #expect(r.test.stats(worker: WorkerID(0), lane: r.lane(0)).rejected == 1)
        #expect(r.test.step() == 8)  // one quantum: weight 1 × max batch 8
        #expect(try r.test.runUntilIdle() == 56)
    }

    /// `runUntilIdle` never hangs: a handler that re-posts itself forever ends in an error.
    @Test func runUntilIdleIsBounded() throws {
        var builder = Engine.Builder(configuration: oneWorker())
        let box = KindBox()
        let again = try builder.register(Job.self) { job, ctx in
            try ctx.post(job, as: box.kind.withLock { $0! }, lane: ctx.lane)
        }
        box.kind.withLock { $0 = again }
        let test = try TestEngine(builder)
        try test.post(Job(seq: 0), as: again, lane: Lane(index: 2), to: .worker(WorkerID(0)))
        #expect(throws: TestEngineError.self) { try test.runUntilIdle(maxSteps: 100) }
        #expect(test.depth(worker: WorkerID(0), lane: Lane(index: 2)) == 1)
    }
}
