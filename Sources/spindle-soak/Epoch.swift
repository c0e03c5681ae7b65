import CSpindle
import Foundation
import Spindle
import Logging
import Synchronization

/// An inline event: 16 bytes, its stream (producer, lane, key) and its place in it.
struct SoakEvent: InlineEvent {
    var seq: UInt64
    var key: UInt32
    var producer: UInt16
    var lane: UInt8
    var spawn: UInt8
}

/// Counts its own releases: every box must be released exactly once.
final class Token: Sendable {
    static let created = Atomic<Int>(0)
    static let released = Atomic<Int>(0)
    init() { Token.created.add(1, ordering: .relaxed) }
    deinit { Token.released.add(1, ordering: .relaxed) }
}

/// A boxed event (one allocation per post), in the same streams as the inline ones.
struct SoakBoxed: Event {
    let token: Token
    let event: SoakEvent
}

/// Plain counters, each written by one thread only (a producer its own rows, a worker the streams
/// its keys map to) and read after the threads are joined — no atomics on the soak's hot path.
final class Tally: @unchecked Sendable {
    let producers: Int, workers: Int, lanes: Int, keys: Int
    /// Per producer, per (worker, lane): outcomes.
    let enq: UnsafeMutablePointer<Int>, rej: UnsafeMutablePointer<Int>, drop: UnsafeMutablePointer<Int>
    /// Per producer: posts, and the kinds of refusal.
    let posts: UnsafeMutablePointer<Int>, full: UnsafeMutablePointer<Int>, stopped: UnsafeMutablePointer<Int>
    let timedOut: UnsafeMutablePointer<Int>, boxes: UnsafeMutablePointer<Int>, batches: UnsafeMutablePointer<Int>
    /// Per stream (producer, lane, key): next sequence number (= events enqueued), events handled.
    let nextSeq: UnsafeMutablePointer<Int>, handledSeq: UnsafeMutablePointer<Int>
    /// Per (worker, lane), counted by handlers: events and timer events handled.
    let handled: UnsafeMutablePointer<Int>, timers: UnsafeMutablePointer<Int>
    /// Per worker: out-of-order / wrong-worker / wrong-lane events seen, and its spawn RNG.
    let orderErrors: UnsafeMutablePointer<Int>, routeErrors: UnsafeMutablePointer<Int>
    let rng: UnsafeMutablePointer<UInt64>
    let firstError = Mutex<String?>(nil)

    init(producers: Int, workers: Int, lanes: Int, keys: Int, seed: UInt64) {
        self.producers = producers
        self.workers = workers
        self.lanes = lanes
        self.keys = keys
        func zeroed(_ n: Int) -> UnsafeMutablePointer<Int> {
            let p = UnsafeMutablePointer<Int>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        let grid = producers * workers * lanes, streams = producers * lanes * keys
        enq = zeroed(grid); rej = zeroed(grid); drop = zeroed(grid)
        posts = zeroed(producers); full = zeroed(producers); stopped = zeroed(producers)
        timedOut = zeroed(producers); boxes = zeroed(producers); batches = zeroed(producers)
        nextSeq = zeroed(streams); handledSeq = zeroed(streams)
        handled = zeroed(workers * lanes); timers = zeroed(workers * lanes)
        orderErrors = zeroed(workers); routeErrors = zeroed(workers)
        rng = UnsafeMutablePointer<UInt64>.allocate(capacity: workers)
        for w in 0..<workers { rng[w] = seed &+ UInt64(w + 1) &* 0xD1B5_4A32_D192_ED03 }
    }

    deinit {
        for p in [enq, rej, drop, posts, full, stopped, timedOut, boxes, batches, nextSeq, handledSeq, handled, timers,
                  orderErrors, routeErrors] { p.deallocate() }
        rng.deallocate()
    }

    @inline(__always) func stream(_ p: Int, _ l: Int, _ k: Int) -> Int { (p * lanes + l) * keys + k }
    @inline(__always) func cell(_ p: Int, _ w: Int, _ l: Int) -> Int { (p * workers + w) * lanes + l }
    @inline(__always) func worker(forKey k: Int) -> Int { Int(sp_key_worker(UInt64(k), UInt32(workers))) }

    func note(_ s: String) { firstError.withLock { if $0 == nil { $0 = s } } }

    /// On worker `w`: one event of a stream, which must be the next one.
    @inline(__always) func handle(_ e: SoakEvent, worker w: Int, lane l: Int) {
        handled[w * lanes + l] += 1
        let k = Int(e.key)
        if worker(forKey: k) != w || Int(e.lane) != l {
            routeErrors[w] += 1
            note("producer \(e.producer) key \(k) lane \(e.lane) handled on worker \(w) lane \(l)")
            return
        }
        let s = stream(Int(e.producer), l, k)
        if handledSeq[s] != Int(e.seq) {
            orderErrors[w] += 1
            note("stream producer \(e.producer) lane \(l) key \(k): expected seq \(handledSeq[s]), got \(e.seq)")
        }
        handledSeq[s] = Int(e.seq) + 1
    }

    /// A post's outcome for producer `p` (a foreign thread, or a worker posting from a handler):
    /// `n` events to (`w`, `l`), stream `s`. Returns false when the engine said `stopped`.
    @inline(__always) func record(_ r: Result<PostResult, PostError>, p: Int, w: Int, l: Int, s: Int, n: Int) -> Bool {
        posts[p] += n
        switch r {
        case .success(.enqueued):
            enq[cell(p, w, l)] += n
            nextSeq[s] += n
        case .success(.dropped):
            drop[cell(p, w, l)] += n
        case .failure(let e):
            rej[cell(p, w, l)] += n
            switch e.code {
            case .laneFull: full[p] += n
            case .stopped:
                stopped[p] += n
                return false
            case .timedOut: timedOut[p] += n
            default: note("producer \(p): unexpected \(e)")
            }
        }
        return true
    }
}

/// xorshift64*: the soak's only randomness, seeded per thread.
@inline(__always) func nextRandom(_ x: inout UInt64) -> UInt64 {
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    return x &* 2_685_821_657_736_338_717
}

/// One engine's life: flood, retune, shut down mid-flood, check.
struct Epoch {
    let options: Soak.Options
    let backend: Engine.Configuration.Backend
    let seed: UInt64
    let quota: Int

    static let keys = 64

    /// Small lanes on every full-lane policy, so they fill again and again.
    func configuration() -> Engine.Configuration {
        var c = Engine.Configuration.hostDefault
        c.backend = backend
        c.spin = .microseconds(5)
        c.lanes = [
            .init(name: "critical", policy: .strict(budget: 64), capacity: 64, onFull: .reject, maxBatch: 16),
            .init(name: "drop", policy: .weighted(weight: 4), capacity: 64, onFull: .drop, maxBatch: 32),
            .init(name: "reject", policy: .weighted(weight: 2), capacity: 128, onFull: .reject, maxBatch: 32),
            .init(name: "block", policy: .weighted(weight: 1), capacity: 64, onFull: .block(timeout: .milliseconds(2)), maxBatch: 32),
        ]
        return c
    }

    func run() -> (totals: Totals, failures: [String]) {
        let config = configuration()
        let workers = config.cpus.count, lanes = config.lanes.count, keys = Self.keys
        let foreign = options.foreign
        let tally = Tally(producers: foreign + workers, workers: workers, lanes: lanes, keys: keys, seed: seed)
        var failures: [String] = []
        let tokensBefore = (Token.created.load(ordering: .relaxed), Token.released.load(ordering: .relaxed))
        var totals = Totals()

        do {
            var builder = Engine.Builder(configuration: config, logger: {
                var l = Logger(label: "spindle-soak")
                l.logLevel = .error
                return l
            }())
            let kindBox = KindBox()
            // A handled event; one in 16 makes its worker a producer too (single or batch posts).
            let events = try builder.register(SoakEvent.self) { e, ctx in
                let w = ctx.worker.rawValue
                tally.handle(e, worker: w, lane: ctx.lane.index)
                guard e.spawn != 0, let kind = kindBox.kind else { return }
                let r = nextRandom(&tally.rng[w])
                let l = Int(r % UInt64(lanes)), k = Int((r >> 8) % UInt64(keys)), p = foreign + w
                let dest = tally.worker(forKey: k), s = tally.stream(p, l, k)
                let seq = UInt64(tally.nextSeq[s])
                let ev = SoakEvent(seq: seq, key: UInt32(k), producer: UInt16(p), lane: UInt8(l), spawn: 0)
                if (r >> 20) % 4 == 0 {
                    let n = 2 + Int((r >> 24) % 4)
                    let batch = (0..<n).map { i in var x = ev; x.seq = seq + UInt64(i); return x }
                    tally.batches[p] += 1
                    _ = tally.record(Result { () throws(PostError) in try ctx.post(contentsOf: batch, as: kind, lane: Lane(index: l), to: .key(UInt64(k))) }, p: p, w: dest, l: l, s: s, n: n)
                } else {
                    _ = tally.record(Result { () throws(PostError) in try ctx.post(ev, as: kind, lane: Lane(index: l), to: .key(UInt64(k))) }, p: p, w: dest, l: l, s: s, n: 1)
                }
            }
            kindBox.kind = events
            let boxed = try builder.register(SoakBoxed.self) { b, ctx in
                tally.handle(b.event, worker: ctx.worker.rawValue, lane: ctx.lane.index)
            }
            for w in 0..<workers {
                try builder.timer(every: .milliseconds(1), lane: Lane(index: 1), on: .worker(WorkerID(w))) { _, ctx in
                    tally.timers[ctx.worker.rawValue * lanes + ctx.lane.index] += 1
                }
            }
            let engine = try builder.start()

            // The flood: foreign producers until the engine says stopped.
            var rng0 = seed | 1
            let shutdownAt = quota * (60 + Int(nextRandom(&rng0) % 36)) / 100
            let progress = Atomic<Int>(0)
            let reached = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            for p in 0..<foreign {
                let t = Thread {
                    Self.produce(engine, tally, p: p, seed: seed &+ UInt64(p + 1) &* 0x9E37_79B9_7F4A_7C15, events: events,
                                 boxed: boxed, progress: progress, shutdownAt: shutdownAt, reached: reached)
                    finished.signal()
                }
                t.stackSize = 1 << 20
                t.start()
            }
            // Live retunes: weights, budgets and spin change under the flood (and through shutdown).
            let retuning = Atomic<Bool>(true)
            let retunes = Atomic<Int>(0)
            let retunerDone = DispatchSemaphore(value: 0)
            Thread {
                var r = seed ^ 0xABCD
                while retuning.load(ordering: .relaxed) {
                    var c = config
                    let x = nextRandom(&r)
                    c.lanes[0].policy = .strict(budget: 8 + Int(x % 120))
                    for l in 1..<lanes { c.lanes[l].policy = .weighted(weight: 1 + Int((x >> (8 * UInt64(l))) % 16)) }
                    c.spin = .microseconds(Int((x >> 40) % 3) * 20)
                    do { try engine.apply(configuration: c); retunes.add(1, ordering: .relaxed) } catch {
                        tally.note("retune refused: \(error)")
                    }
                    usleep(500)  // pacing, not synchronization
                }
                retunerDone.signal()
            }.start()

            // Wait for the shutdown point; a flood that stops making progress is a failure (a lost
            // wake-up shows up here), never a hang.
            var lastHandled = engine.handledTotal, lastProgress = sp_now_ns()
            while reached.wait(timeout: .now() + 1) == .timedOut {
                let h = engine.handledTotal
                if h != lastHandled {
                    lastHandled = h
                    lastProgress = sp_now_ns()
                } else if sp_now_ns() - lastProgress > 20_000_000_000 {
                    failures.append("no event handled for 20 s before the shutdown point:\n\(engine.stallReport())")
                    break
                }
            }
            let shutdownStarted = sp_now_ns()
            let report = try engine.shutdownBlocking(deadline: .now + .seconds(30))
            let shutdownSeconds = Double(sp_now_ns() - shutdownStarted) / 1e9
            retuning.store(false, ordering: .relaxed)
            for _ in 0..<foreign where finished.wait(timeout: .now() + 60) == .timedOut {
                failures.append("a producer did not return within 60 s of shutdown")
            }
            if retunerDone.wait(timeout: .now() + 30) == .timedOut { failures.append("the retuner did not stop") }
            if !failures.isEmpty { return (totals, failures) }
            // The workers drained and stopped before the deadline (else this is a failure); what is
            // still pending is checked below from the stream tallies (nothing may be).
            if shutdownSeconds >= 29 { failures.append("shutdown did not drain within 30 s: \(report)") }
            var racedPending = 0

            // Check every (worker, lane) against the tallies.
            let P = foreign + workers
            for w in 0..<workers {
                for l in 0..<lanes {
                    let s = engine.stats(worker: WorkerID(w), lane: Lane(index: l))
                    var enq = 0, rej = 0, drop = 0
                    for p in 0..<P {
                        enq += tally.enq[tally.cell(p, w, l)]
                        rej += tally.rej[tally.cell(p, w, l)]
                        drop += tally.drop[tally.cell(p, w, l)]
                    }
                    // Stream tallies: handled and still pending among the posts to (w, l).
                    var streamHandled = 0, streamPending = 0
                    for p in 0..<P {
                        for k in 0..<keys where tally.worker(forKey: k) == w {
                            let st = tally.stream(p, l, k)
                            streamHandled += tally.handledSeq[st]
                            streamPending += tally.nextSeq[st] - tally.handledSeq[st]
                            if tally.nextSeq[st] != tally.handledSeq[st] {
                                if p >= foreign {
                                    failures.append("stream p\(p) (worker \(p - foreign)) l\(l) k\(k): a handler's post left pending at shutdown")
                                }
                                racedPending += tally.nextSeq[st] - tally.handledSeq[st]
                            }
                            if tally.handledSeq[st] > tally.nextSeq[st] {
                                failures.append("stream p\(p) l\(l) k\(k): handled \(tally.handledSeq[st]) > enqueued \(tally.nextSeq[st])")
                            }
                        }
                    }
                    let handlerCount = tally.handled[w * lanes + l], timerCount = tally.timers[w * lanes + l]
                    let at = "worker \(w) lane \(l)"
                    if Int(s.rejected) != rej { failures.append("\(at): engine rejected \(s.rejected), producers \(rej)") }
                    if Int(s.dropped) != drop { failures.append("\(at): engine dropped \(s.dropped), producers \(drop)") }
                    if s.enqueued != s.handled + s.pending { failures.append("\(at): enqueued \(s.enqueued) ≠ handled + pending (\(s))") }
                    if Int(s.handled) != handlerCount + timerCount {
                        failures.append("\(at): engine handled \(s.handled), handlers counted \(handlerCount) + \(timerCount) timer events")
                    }
                    if handlerCount != streamHandled { failures.append("\(at): handlers counted \(handlerCount), streams \(streamHandled)") }
                    // What the engine enqueued beyond the producers' posts are timer events (handled or pending).
                    let timerPending = Int(s.pending) - streamPending
                    if timerPending < 0 || Int(s.enqueued) - enq != timerCount + timerPending {
                        failures.append("\(at): engine enqueued \(s.enqueued), producers \(enq), timer events \(timerCount) + \(timerPending) pending")
                    }
                    if l != 1 && timerCount != 0 { failures.append("\(at): timer events in a lane with no timer") }
                    totals.enqueued += Int(s.enqueued) - timerCount - max(timerPending, 0)
                    totals.rejected += rej; totals.dropped += drop
                    totals.handled += handlerCount; totals.pending += streamPending; totals.timers += timerCount
                }
                totals.sleeps += engine.workerStats(WorkerID(w)).sleeps
            }
            // Shutdown closes the foreign rings before it stops (main's fix of that race): a post
            // racing it is refused or handled, so nothing may be left pending after a drained shutdown.
            if racedPending > 0 {
                failures.append("\(racedPending) events of foreign posts pending after a drained shutdown (\(report))")
            }
            totals.raced += racedPending
            for p in 0..<P {
                var outcomes = 0
                for w in 0..<workers { for l in 0..<lanes { outcomes += tally.enq[tally.cell(p, w, l)] + tally.rej[tally.cell(p, w, l)] + tally.drop[tally.cell(p, w, l)] } }
                if outcomes != tally.posts[p] { failures.append("producer \(p): \(tally.posts[p]) posts, \(outcomes) outcomes") }
                totals.posts += tally.posts[p]; totals.laneFull += tally.full[p]; totals.stopped += tally.stopped[p]
                totals.timedOut += tally.timedOut[p]; totals.boxes += tally.boxes[p]; totals.batches += tally.batches[p]
                if p >= foreign { totals.spawned += tally.posts[p] }
            }
            for w in 0..<workers where tally.orderErrors[w] + tally.routeErrors[w] > 0 {
                failures.append("worker \(w): \(tally.orderErrors[w]) events out of order, \(tally.routeErrors[w]) on the wrong worker or lane")
            }
            if let first = tally.firstError.withLock({ $0 }) { failures.append("first: \(first)") }
            if totals.stopped == 0 { failures.append("the shutdown did not happen mid-flood (no post was refused as stopped)") }
            totals.retunes = retunes.load(ordering: .relaxed)
        } catch {
            failures.append("engine: \(error)")
        }
        // The engine is gone: every box created was released exactly once (a double release would
        // crash or push released past created).
        let created = Token.created.load(ordering: .relaxed) - tokensBefore.0
        let released = Token.released.load(ordering: .relaxed) - tokensBefore.1
        if created != released { failures.append("boxes: \(created) created, \(released) released") }
        if created != totals.boxes && failures.isEmpty { failures.append("boxes: \(created) created, producers counted \(totals.boxes)") }
        return (totals, failures)
    }

    /// A foreign producer: random lanes and keys; inline, boxed and batch posts; until `stopped`.
    static func produce(
        _ engine: Engine, _ tally: Tally, p: Int, seed: UInt64, events: EventKind<SoakEvent>, boxed: EventKind<SoakBoxed>,
        progress: borrowing Atomic<Int>, shutdownAt: Int, reached: DispatchSemaphore
    ) {
        var x = seed | 1
        let lanes = tally.lanes, keys = tally.keys
        var sinceReport = 0
        var batch = [SoakEvent](repeating: SoakEvent(seq: 0, key: 0, producer: 0, lane: 0, spawn: 0), count: 8)
        while true {
            let r = nextRandom(&x)
            let l = Int(r % UInt64(lanes)), k = Int((r >> 8) % UInt64(keys))
            let w = tally.worker(forKey: k), s = tally.stream(p, l, k)
            let seq = UInt64(tally.nextSeq[s])
            let ev = SoakEvent(seq: seq, key: UInt32(k), producer: UInt16(p), lane: UInt8(l), spawn: (r >> 16) % 16 == 0 ? 1 : 0)
            let lane = Lane(index: l), dest = Destination.key(UInt64(k))
            let choice = (r >> 24) % 16
            let n: Int
            let result: Result<PostResult, PostError>
            if choice == 0 {
                n = 1
                tally.boxes[p] += 1
                let b = SoakBoxed(token: Token(), event: ev)
                result = Result { () throws(PostError) in try engine.post(b, as: boxed, lane: lane, to: dest) }
            } else if choice == 1 {
                n = 2 + Int((r >> 32) % 7)
                for i in 0..<n {
                    batch[i] = ev
                    batch[i].seq = seq + UInt64(i)
                }
                tally.batches[p] += 1
                result = batch.withUnsafeBufferPointer { buf in
                    Result { () throws(PostError) in
                        try engine.post(contentsOf: UnsafeBufferPointer(rebasing: buf[0..<n]), as: events, lane: lane, to: dest)
                    }
                }
            } else {
                n = 1
                result = Result { () throws(PostError) in try engine.post(ev, as: events, lane: lane, to: dest) }
            }
            let more = tally.record(result, p: p, w: w, l: l, s: s, n: n)
            sinceReport += n
            if sinceReport >= 4096 || !more {
                let before = progress.add(sinceReport, ordering: .relaxed).oldValue
                if before < shutdownAt && before + sinceReport >= shutdownAt { reached.signal() }
                sinceReport = 0
            }
            if !more { return }
        }
    }
}

/// The event kind, known only after registration; written before start, read by handlers.
final class KindBox: @unchecked Sendable {
    var kind: EventKind<SoakEvent>?
}
