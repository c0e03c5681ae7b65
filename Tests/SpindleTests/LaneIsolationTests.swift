import CTestSupport
import Dispatch
import Glibc
import Synchronization
import Testing

@testable import Spindle

struct Filler: InlineEvent { var n: UInt32 }

extension EngineSuites.TCPTests {
    /// A full weighted lane holds back only its own I/O completions: a strict lane's connection
    /// whose bytes arrive *behind* sixteen connections of the full lane is served in the next
    /// round, not after the full lane has drained the sixteen in front of it (io_uring used to
    /// stop reaping at the first completion whose lane was full). Nothing is lost meanwhile:
    /// every byte of every bulk connection and every filler event arrives.
    ///
    /// The bulk lane (capacity 64, one event per round) is filled by a control-lane handler that
    /// then holds the worker while the clients write — bulk first, control last — and waits
    /// until the kernel has acknowledged every byte (`SIOCOUTQ` = 0), so all 17 completions are
    /// queued, in that order, when the worker next enters the kernel.
    @Test(arguments: backends)
    func aFullLaneHoldsBackOnlyItsOwnCompletions(backend: Engine.Configuration.Backend) throws {
        var config = testConfig(workers: 1, backend: backend)
        config.lanes = [
            .init(name: "control", policy: .strict(budget: 64), capacity: 64),
            .init(name: "bulk", policy: .weighted(weight: 1), capacity: 64, maxBatch: 1),
        ]
        let control = Lane(index: 0), bulk = Lane(index: 1)
        var builder = Engine.Builder(configuration: config)
        let fillersHandled = Atomic<Int>(0), bulkBytes = Atomic<Int>(0), accepted = Atomic<Int>(0)
        let fillersPosted = Atomic<Int>(0)
        let seenAtControl = Recorder<Int>()  // fillers handled when the control bytes arrived
        let gate = WorkerGate()
        let fillerKind = try builder.register(Filler.self) { _, _ in fillersHandled.add(1, ordering: .relaxed) }
        let gateKind = try builder.register(Gate.self) { _, ctx in
            // Fill the bulk lane's local queue to the brim from its own worker, then hold.
            var n: UInt32 = 0
            while (try? ctx.post(Filler(n: n), as: fillerKind, lane: bulk)) != nil { n += 1 }
            fillersPosted.store(Int(n), ordering: .relaxed)
            gate.hold()
        }
        let bulkListeners = try builder.listen(on: .loopback(port: 0), lane: bulk) { e, _ in
            switch e.kind {
            case .accepted: accepted.add(1, ordering: .relaxed)
            case .data: bulkBytes.add(e.byteCount, ordering: .relaxed)
            default: break
            }
        }
        let controlListeners = try builder.listen(on: .loopback(port: 0), lane: control) { e, _ in
            switch e.kind {
            case .accepted: accepted.add(1, ordering: .relaxed)
            case .data: seenAtControl.append(fillersHandled.load(ordering: .relaxed))
            default: break
            }
        }
        let engine = try builder.start()
        let bulkClients = try (0..<16).map { _ in try TestClient(port: bulkListeners[0].localPort!) }
        let controlClient = try TestClient(port: controlListeners[0].localPort!)
        #expect(eventually { accepted.load(ordering: .relaxed) == 17 }, "accepted \(accepted.load(ordering: .relaxed)) of 17")

        try engine.post(Gate(id: 1), as: gateKind, lane: control, to: .worker(WorkerID(0)))
        #expect(gate.waitUntilHeld(), "the gate handler never ran")
        for c in bulkClients { #expect(c.write([1])) }
        #expect(controlClient.write([2]))
        let acknowledged = eventually {
            (bulkClients.map(\.fd) + [controlClient.fd]).allSatisfy { fd in
                var pending: Int32 = -1
                return ioctl(fd, UInt(TIOCOUTQ), &pending) == 0 && pending == 0
            }
        }
        #expect(acknowledged, "the kernel did not acknowledge every client's byte within 10 s")
        gate.open()

        #expect(eventually { seenAtControl.count == 1 }, "the control connection's byte never arrived")
        let posted = fillersPosted.load(ordering: .relaxed)
        #expect(posted == 64, "the handler filled the bulk lane with \(posted) events, not its capacity")
        // Served in the round after the one that found the lane full: at most a few bulk events
        // (one per round) went first. Stuck behind the bulk completions it would see ≥ 15.
        let seen = seenAtControl.all.first ?? -1
        #expect(seen >= 0 && seen <= 3, "the control byte arrived after \(seen) bulk events were handled: it waited behind the full lane")
        // Nothing lost: every filler, every bulk byte.
        #expect(eventually { fillersHandled.load(ordering: .relaxed) == posted && bulkBytes.load(ordering: .relaxed) == 16 },
                "fillers \(fillersHandled.load(ordering: .relaxed)) of \(posted), bulk bytes \(bulkBytes.load(ordering: .relaxed)) of 16")
        let s = engine.stats(lane: bulk)
        #expect(s.enqueued == s.handled + s.pending, "\(s)")
        _ = engine.stop()
    }

    /// A strict lane's reply goes out before the weighted lanes run: a control handler sends
    /// `+PONG` and posts one bulk event whose handler then holds the worker. The client must
    /// read the reply while that bulk handler is still holding — on io_uring the round ends after
    /// the strict lane's send so the round's one `io_uring_enter` submits it; epoll writes at once.
    /// (Without the cut the send waited in the SQ behind the bulk batch: the read timed out.)
    @Test(arguments: backends)
    func aStrictReplyLeavesBeforeTheWeightedBatch(backend: Engine.Configuration.Backend) throws {
        var config = testConfig(workers: 1, backend: backend)
        config.lanes = [
            .init(name: "control", policy: .strict(budget: 64), capacity: 64),
            .init(name: "bulk", policy: .weighted(weight: 1), capacity: 64),
        ]
        let control = Lane(index: 0), bulk = Lane(index: 1)
        var builder = Engine.Builder(configuration: config)
        let gate = WorkerGate()
        let problems = Recorder<String>()
        let holdKind = try builder.register(Filler.self) { _, _ in gate.hold() }
        let listeners = try builder.listen(on: .loopback(port: 0), lane: control) { e, ctx in
            guard case .data = e.kind else { return }
            do {
                _ = try ctx.send(Array("+PONG\r\n".utf8), on: e.connection)
                try ctx.post(Filler(n: 1), as: holdKind, lane: bulk)
            } catch { problems.append("\(error)") }
        }
        let engine = try builder.start()
        let client = try TestClient(port: listeners[0].localPort!)
        #expect(client.write(Array("PING\r\n".utf8)))
        #expect(gate.waitUntilHeld(), "the bulk handler never ran")
        // The bulk handler holds the worker now; the reply must already be on its way.
        let reply = client.read(7)  // bounded by the client's 10 s receive timeout
        gate.open()
        #expect(reply == Array("+PONG\r\n".utf8), "read \(reply.count) bytes while the bulk handler held the worker: the strict lane's reply waited behind the weighted batch")
        #expect(problems.all.isEmpty, "\(problems.all)")
        _ = engine.stop()
    }
}
