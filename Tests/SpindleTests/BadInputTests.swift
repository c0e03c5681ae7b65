import CSpindle
import Foundation
import Synchronization
import Testing

@testable import Spindle

/// Exactly 48 bytes, every byte distinct per event: a payload at the inline limit must arrive whole.
struct Full48: InlineEvent { var a: UInt64, b: UInt64, c: UInt64, d: UInt64, e: UInt64, f: UInt64 }
/// No payload at all.
struct Empty: InlineEvent {}
/// Aligned to 32: over the slot's 16-byte payload alignment.
struct Wide: InlineEvent { var v: SIMD8<Float> }

extension Full48 {
    init(_ n: UInt64) { self.init(a: n, b: n &* 3, c: ~n, d: n << 7, e: n ^ 0x5555, f: 0xFEED_0000_0000_0000 | n) }
    func isIntact(_ n: UInt64) -> Bool {
        a == n && b == n &* 3 && c == ~n && d == n << 7 && e == n ^ 0x5555 && f == 0xFEED_0000_0000_0000 | n
    }
}

extension EngineSuites {
    /// Bad input wherever it enters the engine: a clear error, nothing counted twice or lost, no box
    /// leaked. (What other suites already cover is listed in docs/reliability.md.)
    @Suite(.serialized)
    struct BadInputTests {
        /// A lane index the configuration does not have: `noSuchLane` from any thread and from a
        /// handler, for inline, boxed and batch posts; nothing handled, a box released.
        @Test(arguments: backends)
        func laneThatDoesNotExist(backend: Engine.Configuration.Backend) throws {
            let liveBefore = Tracker.live.load(ordering: .relaxed)
            var builder = Engine.Builder(configuration: testConfig(backend: backend), logger: quietLogger)
            let handled = Atomic<Int>(0)
            let codes = Recorder<String>()
            let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let boxed = try builder.register(Boxed.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let probe = try builder.register(Gate.self) { _, ctx in
                for lane in [4, 8, 255] {
                    do throws(PostError) { try ctx.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: lane)) } catch { codes.append("\(error.code)") }
                    do throws(PostError) { try ctx.post(Boxed(tracker: Tracker(), seq: 0), as: boxed, lane: Lane(index: lane)) } catch { codes.append("\(error.code)") }
                }
            }
            let engine = try builder.start()
            for lane in [4, 8, 255, Int(Int32.max)] {
                #expect(throws: PostError(.noSuchLane, worker: WorkerID(0), lane: Lane(index: lane))) {
                    try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: lane), to: .worker(WorkerID(0)))
                }
                #expect(throws: PostError(.noSuchLane, worker: WorkerID(0), lane: Lane(index: lane))) {
                    try engine.post(Boxed(tracker: Tracker(), seq: 0), as: boxed, lane: Lane(index: lane), to: .worker(WorkerID(0)))
                }
                #expect(throws: PostError(.noSuchLane, worker: WorkerID(0), lane: Lane(index: lane))) {
                    try engine.post(contentsOf: [Tick(seq: 0, producer: 0), Tick(seq: 1, producer: 0)], as: ticks, lane: Lane(index: lane), to: .worker(WorkerID(0)))
                }
            }
            try engine.post(Gate(id: 0), as: probe, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { codes.count == 6 })
            #expect(codes.all == Array(repeating: "noSuchLane", count: 6))
            let report = engine.stop()
            #expect(handled.load(ordering: .relaxed) == 0)
            #expect(report.totals.reduce(0) { $0 + $1.enqueued } == 1, "only the probe: \(report.totals)")
            #expect(eventually { Tracker.live.load(ordering: .relaxed) == liveBefore }, "a refused box was not released")
        }

        /// A worker that does not exist, from a handler (the foreign path: FullLaneTests.noSuchWorkerIsRejected).
        @Test(arguments: backends)
        func workerThatDoesNotExistFromAHandler(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(backend: backend), logger: quietLogger)
            let codes = Recorder<String>()
            let ticks = try builder.register(Tick.self) { _, _ in }
            let probe = try builder.register(Gate.self) { _, ctx in
                for w in [-1, 64, 4096] {
                    do throws(PostError) { try ctx.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 1), to: .worker(WorkerID(w))) } catch { codes.append("\(error.code)") }
                    do throws(PostError) { try ctx.post(contentsOf: [Tick(seq: 0, producer: 0)], as: ticks, lane: Lane(index: 1), to: .worker(WorkerID(w))) } catch { codes.append("\(error.code)") }
                }
            }
            let engine = try builder.start()
            #expect(throws: PostError.self) { try engine.post(Tick(seq: 0, producer: 0), as: ticks, lane: Lane(index: 1), to: .worker(WorkerID(-1))) }
            try engine.post(Gate(id: 0), as: probe, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { codes.count == 6 })
            #expect(codes.all == Array(repeating: "noSuchWorker", count: 6))
            #expect(engine.stop().totals[1].enqueued == 0)
        }

        /// After shutdown: boxed and batch posts are refused (`stopped`), counted as rejected, and
        /// the box is released (inline posts: FullLaneTests.postingAfterShutdownIsRefused).
        @Test(arguments: backends)
        func boxedAndBatchPostsAfterShutdown(backend: Engine.Configuration.Backend) throws {
            let liveBefore = Tracker.live.load(ordering: .relaxed)
            do {
                var builder = Engine.Builder(configuration: testConfig(backend: backend), logger: quietLogger)
                let ticks = try builder.register(Tick.self) { _, _ in }
                let boxed = try builder.register(Boxed.self) { _, _ in }
                let engine = try builder.start()
                _ = engine.stop()
                #expect(throws: PostError(.stopped, worker: WorkerID(0), lane: Lane(index: 2))) {
                    try engine.post(Boxed(tracker: Tracker(), seq: 0), as: boxed, lane: Lane(index: 2), to: .worker(WorkerID(0)))
                }
                #expect(throws: PostError(.stopped, worker: WorkerID(0), lane: Lane(index: 2))) {
                    try engine.post(contentsOf: (0..<10).map { Tick(seq: $0, producer: 0) }, as: ticks, lane: Lane(index: 2), to: .worker(WorkerID(0)))
                }
                #expect(Tracker.live.load(ordering: .relaxed) == liveBefore, "the refused box was kept")
                #expect(engine.stats(worker: WorkerID(0), lane: Lane(index: 2)).rejected == 11)
            }
        }

        /// From a handler to a full lane: `reject` throws `laneFull`, `drop` returns `.dropped`, and the
        /// counts say so (a full `block` lane from a handler: FullLaneTests.workerPostingToFullBlockLaneGetsReject).
        @Test(arguments: backends)
        func handlerPostingToFullLanes(backend: Engine.Configuration.Backend) throws {
            var config = testConfig(workers: 1, backend: backend)
            config.lanes[1].capacity = 64
            config.lanes[1].onFull = .drop
            config.lanes[2].capacity = 64
            var builder = Engine.Builder(configuration: config, logger: quietLogger)
            let outcomes = Recorder<String>()
            let handled = Grid(workers: 1, lanes: 4)
            let ticks = try builder.register(Tick.self) { _, ctx in handled.add(0, ctx.lane.index) }
            let probe = try builder.register(Gate.self) { _, ctx in
                // Its own queue, 64 slots, not drained while this handler runs: 100 posts each.
                for lane in [1, 2] {
                    var enq = 0, dropped = 0, full = 0
                    for i in 0..<100 {
                        do throws(PostError) {
                            if try ctx.post(Tick(seq: UInt64(i), producer: 0), as: ticks, lane: Lane(index: lane)) == .enqueued { enq += 1 } else { dropped += 1 }
                        } catch { if error.code == .laneFull { full += 1 } }
                    }
                    outcomes.append("lane \(lane): \(enq) enqueued, \(dropped) dropped, \(full) full")
                }
            }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: probe, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { handled[0, 1] + handled[0, 2] == 128 })
            #expect(outcomes.all == ["lane 1: 64 enqueued, 36 dropped, 0 full", "lane 2: 64 enqueued, 0 dropped, 36 full"])
            let t = engine.stop().totals
            #expect(t[1].enqueued == 64 && t[1].dropped == 36 && t[1].rejected == 0 && t[1].handled == 64)
            #expect(t[2].enqueued == 64 && t[2].dropped == 0 && t[2].rejected == 36 && t[2].handled == 64)
        }

        /// Payloads at the inline limit arrive whole (foreign, handler, batch); an empty event is
        /// fine; one aligned over 16 is refused at registration (over 48 bytes:
        /// FullLaneTests.inlineEventOver48BytesIsRefusedAtRegistration).
        @Test(arguments: backends)
        func payloadsAtTheInlineLimit(backend: Engine.Configuration.Backend) throws {
            #expect(MemoryLayout<Full48>.size == 48 && MemoryLayout<Empty>.size == 0)
            var builder = Engine.Builder(configuration: testConfig(backend: backend), logger: quietLogger)
            if MemoryLayout<Wide>.alignment > 16 {
                do {
                    _ = try builder.register(Wide.self) { _, _ in }
                    Issue.record("an InlineEvent aligned to \(MemoryLayout<Wide>.alignment) was registered")
                } catch { #expect(error.code == .eventTooLarge && error.message.contains("aligned to \(MemoryLayout<Wide>.alignment)"), "\(error)") }
            }
            let intact = Atomic<Int>(0), broken = Atomic<Int>(0), empties = Atomic<Int>(0)
            let kind = LateBox<EventKind<Full48>?>(nil)
            let full = try builder.register(Full48.self) { e, ctx in
                if e.isIntact(e.a) { intact.add(1, ordering: .relaxed) } else { broken.add(1, ordering: .relaxed) }
                if e.a < 1000 {  // each foreign one is re-posted once from the handler, to the other worker
                    let next = WorkerID((ctx.worker.rawValue + 1) % ctx.workerCountForTests)
                    try ctx.post(Full48(e.a + 1_000_000), as: kind.value!, lane: Lane(index: 2), to: .worker(next))
                }
            }
            kind.value = full
            let empty = try builder.register(Empty.self) { _, _ in empties.add(1, ordering: .relaxed) }
            let engine = try builder.start()
            for n in 0..<UInt64(500) { try postRetrying(engine, Full48(n), full, Lane(index: 1), .spread) }
            let batch = (500..<UInt64(1000)).map(Full48.init)
            for chunk in stride(from: 0, to: batch.count, by: 50) {
                try engine.post(contentsOf: Array(batch[chunk..<chunk + 50]), as: full, lane: Lane(index: 3), to: .worker(WorkerID(0)))
            }
            for _ in 0..<100 { try postRetrying(engine, Empty(), empty, Lane(index: 2), .spread) }
            #expect(eventually { intact.load(ordering: .relaxed) + broken.load(ordering: .relaxed) == 2000 && empties.load(ordering: .relaxed) == 100 })
            #expect(broken.load(ordering: .relaxed) == 0, "\(broken.load(ordering: .relaxed)) 48-byte payloads arrived damaged")
            #expect(intact.load(ordering: .relaxed) == 2000)
            #expect(engine.stop().drained)
        }

        /// UDP datagrams of 0 bytes, of the largest size a receive buffer holds, and over it: the
        /// first two arrive exactly; the oversized one is reported as failed with EMSGSIZE (not
        /// handed over cut short), and the socket goes on.
        @Test(arguments: backends)
        func zeroLengthAndMaximumSizeDatagrams(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1, backend: backend), logger: quietLogger)
            let seen = Recorder<String>()
            let handle = try builder.udp(bind: .loopback(port: 0), lane: Lane(index: 2)) { e, _ in
                switch e.kind {
                case .received:
                    let ok = e.withBytes { span in
                        span.withUnsafeBytes { b in b.enumerated().allSatisfy { $0.element == UInt8(truncatingIfNeeded: $0.offset &* 7) } }
                    }
                    seen.append("received \(e.byteCount) \(ok ? "intact" : "damaged")")
                case .failed: seen.append("failed \(e.error.map { "\($0)" } ?? "?")")
                default: break
                }
            }
            let engine = try builder.start()
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var size: Int32 = 1 << 20
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = in_port_t(UInt16(handle.localPort!).bigEndian)
            to.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let largest = Int(SP_RECV_BUFFER_SIZE) - Int(SP_UDP_ADDR_SPACE)
            for n in [0, largest, largest + 1, 60000, 5] {
                let msg = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                let sent = withUnsafePointer(to: &to) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, msg, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                #expect(sent == n, "sendto \(n): \(sent)")
            }
            #expect(eventually { seen.count == 5 }, "\(seen.all)")
            #expect(seen.all == ["received 0 intact", "received \(largest) intact", "failed EMSGSIZE", "failed EMSGSIZE", "received 5 intact"])
            _ = engine.stop()
        }
    }
}

extension WorkerContext {
    /// The engine's worker count, for tests that pick another worker.
    var workerCountForTests: Int { Int(_local.pointee.workerCount) }
}
