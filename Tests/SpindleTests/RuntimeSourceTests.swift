import CSpindle
import Foundation
import Synchronization
import Testing

@testable import Spindle

extension EngineSuites {
    /// Sources a handler adds at run time on its own worker — a TCP listener, an fd watch, a UDP
    /// socket — behave as the builder's: events in their lane on that worker, bytes exact, and a
    /// cancel from the handler ends each with exactly one final event and none after.
    @Suite struct RuntimeSourceTests {
        @Test(arguments: backends)
        func handlerAddedSourcesWorkAndCancelOnce(backend: Engine.Configuration.Backend) throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 2, backend: backend))
            let worker = WorkerID(min(1, builder.configuration.cpus.count - 1))
            let wrongWorker = Atomic<Int>(0)
            // Listener: echo, count its connections' events; the final `cancelled` counted apart.
            let accepted = Atomic<Int>(0), listenerEnds = Atomic<Int>(0), afterEnd = Atomic<Int>(0)
            let listeners = try builder.listeners(lane: Lane(index: 2)) { e, ctx in
                if ctx.worker != worker { wrongWorker.add(1, ordering: .relaxed) }
                if listenerEnds.load(ordering: .relaxed) > 0 && e.kind != .closed { afterEnd.add(1, ordering: .relaxed) }
                switch e.kind {
                case .accepted: accepted.add(1, ordering: .relaxed)
                case .data: _ = try e.withBytes { s in try s.withUnsafeBytes { try ctx.send($0, on: e.connection) } }
                case .cancelled: listenerEnds.add(1, ordering: .relaxed)
                default: break
                }
            }
            // Watch: the tag comes back; one final cancelled event.
            let watched = Atomic<Int>(0), watchEnds = Atomic<Int>(0), badTag = Atomic<Int>(0)
            let pipeFDs = Mutex<(Int32, Int32)>((-1, -1))
            let watches = try builder.watches(lane: Lane(index: 3)) { r, _ in
                if r.tag != 77 { badTag.add(1, ordering: .relaxed) }
                if r.isCancelled { watchEnds.add(1, ordering: .relaxed); return }
                let fd = pipeFDs.withLock { $0.0 }
                var b = [UInt8](repeating: 0, count: 64)
                while true {
                    let n = read(fd, &b, 64)
                    if n <= 0 { break }
                    watched.add(n, ordering: .relaxed)
                }
            }
            // UDP: answer each datagram with its bytes reversed.
            let datagramEnds = Atomic<Int>(0)
            let datagrams = try builder.datagrams(lane: Lane(index: 2)) { d, ctx in
                if d.kind == .cancelled { datagramEnds.add(1, ordering: .relaxed); return }
                guard d.kind == .received, let from = d.sender else { return }
                let bytes = d.withBytes { s in s.withUnsafeBytes { Array($0.reversed()) } }
                _ = bytes.withUnsafeBytes { try? ctx.send($0, to: from, on: d.socket) }
            }
            // A gate event adds (0), cancels (1) or tries a port in use (2), on `worker`.
            let ids = Mutex<[SourceID]>([]), tcpPort = Atomic<Int>(0), udpPort = Atomic<Int>(0)
            let errors = Mutex<[String]>([])
            let control = try builder.register(Gate.self) { g, ctx in
                do {
                    switch g.id {
                    case 0:
                        let l = try ctx.listen(on: .loopback(port: 0), as: listeners)
                        let w = try ctx.watch(fd: pipeFDs.withLock { $0.0 }, as: watches, tag: 77)
                        let u = try ctx.udp(bind: .loopback(port: 0), as: datagrams)
                        tcpPort.store(ctx.localPort(of: l) ?? -1, ordering: .releasing)
                        udpPort.store(ctx.localPort(of: u) ?? -1, ordering: .releasing)
                        ids.withLock { $0 = [l, w, u] }
                    case 1:
                        for id in ids.withLock({ $0 }) where !ctx.cancel(id) { errors.withLock { $0.append("cancel \(id) refused") } }
                        for id in ids.withLock({ $0 }) where ctx.cancel(id) { errors.withLock { $0.append("second cancel \(id) accepted") } }
                    default:
                        _ = try ctx.listen(on: .loopback(port: tcpPort.load(ordering: .acquiring)), as: listeners)
                        errors.withLock { $0.append("a second listener on a port in use was accepted") }
                    }
                } catch {
                    errors.withLock { $0.append("\(g.id): \(error)") }
                }
            }
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            defer { close(fds[0]); close(fds[1]) }
            pipeFDs.withLock { $0 = (fds[0], fds[1]) }
            let engine = try builder.start()
            defer { _ = engine.stop() }
            try engine.post(Gate(id: 0), as: control, lane: Lane(index: 0), to: .worker(worker))
            #expect(eventually { tcpPort.load(ordering: .acquiring) != 0 }, "the handler never added its sources")
            try #require(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
            try #require(tcpPort.load(ordering: .acquiring) > 0 && udpPort.load(ordering: .acquiring) > 0)

            // TCP: 4 connections, 256 KiB each, echoed exactly.
            for c in 0..<4 {
                let client = try TestClient(port: tcpPort.load(ordering: .acquiring))
                let msg = patternBytes(c, 256 << 10)
                #expect(client.write(msg))
                #expect(client.read(msg.count) == msg, "connection \(c): echo differs")
            }
            #expect(eventually { accepted.load(ordering: .relaxed) == 4 })
            // Watch: 10 bytes read by the handler.
            #expect(write(fds[1], "0123456789", 10) == 10)
            #expect(eventually { watched.load(ordering: .relaxed) == 10 }, "watch read \(watched.load(ordering: .relaxed))")
            // UDP: a round trip.
            let reply = udpRoundTrip(Array("spindle".utf8), port: udpPort.load(ordering: .acquiring))
            #expect(reply == Array("eldnips".utf8), "udp reply \(String(describing: reply))")
            // A port in use: refused with the kernel's reason, thrown inside the handler.
            try engine.post(Gate(id: 2), as: control, lane: Lane(index: 0), to: .worker(worker))
            #expect(eventually { errors.withLock { $0.count } == 1 })
            #expect(errors.withLock { $0.first ?? "" }.contains("in use"), "\(errors.withLock { $0 })")
            errors.withLock { $0 = [] }
            // Cancel all three from the handler: one final event each, none after.
            try engine.post(Gate(id: 1), as: control, lane: Lane(index: 0), to: .worker(worker))
            #expect(eventually { listenerEnds.load(ordering: .relaxed) == 1 && watchEnds.load(ordering: .relaxed) == 1 && datagramEnds.load(ordering: .relaxed) == 1 },
                    "final events: listener \(listenerEnds.load(ordering: .relaxed)), watch \(watchEnds.load(ordering: .relaxed)), udp \(datagramEnds.load(ordering: .relaxed))")
            #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
            _ = write(fds[1], "x", 1)
            #expect((try? TestClient(port: tcpPort.load(ordering: .acquiring))) == nil, "the cancelled listener still accepts")
            _ = engine.stop()
            #expect(listenerEnds.load(ordering: .relaxed) == 1 && watchEnds.load(ordering: .relaxed) == 1 && datagramEnds.load(ordering: .relaxed) == 1)
            #expect(afterEnd.load(ordering: .relaxed) == 0, "listener events after its final event")
            #expect(watched.load(ordering: .relaxed) == 10, "the cancelled watch still read")
            #expect(badTag.load(ordering: .relaxed) == 0 && wrongWorker.load(ordering: .relaxed) == 0)
        }

        /// Kinds are checked at registration; a closed fd is refused inside the handler.
        @Test func runTimeKindsAreChecked() throws {
            var builder = Engine.Builder(configuration: testConfig(workers: 1))
            #expect(throws: SpindleError.self) { _ = try builder.watches(lane: Lane(index: 99)) { _, _ in } }
            let kind = try builder.watches(lane: Lane(index: 1)) { _, _ in }
            let refused = Mutex<String>("")
            let gate = try builder.register(Gate.self) { _, ctx in
                do { _ = try ctx.watch(fd: -1, as: kind) } catch { refused.withLock { $0 = "\(error)" } }
            }
            let engine = try builder.start()
            try engine.post(Gate(id: 0), as: gate, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            #expect(eventually { !refused.withLock { $0 }.isEmpty })
            #expect(refused.withLock { $0 }.contains("rule an open fd"))
            _ = engine.stop()
        }
    }
}

/// Sends one datagram to 127.0.0.1:`port` and waits (5 s at most) for one back.
func udpRoundTrip(_ msg: [UInt8], port: Int) -> [UInt8]? {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var to = sockaddr_in()
    to.sin_family = sa_family_t(AF_INET)
    to.sin_port = in_port_t(UInt16(port).bigEndian)
    to.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let sent = withUnsafePointer(to: &to) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, msg, msg.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard sent == msg.count else { return nil }
    var back = [UInt8](repeating: 0, count: 2048)
    let got = recv(fd, &back, back.count, 0)
    return got >= 0 ? Array(back.prefix(got)) : nil
}

extension EngineSuites.RuntimeSourceTests {
    /// `listen(on: port 0, on: .spread)` on several workers: one port for every worker's listener
    /// (SO_REUSEPORT), which each handle reports, and connections to it are served.
    @Test func portZeroOnEveryWorkerIsOnePort() throws {
        var builder = Engine.Builder(configuration: testConfig(workers: 2))
        let accepted = Atomic<Int>(0)
        let handles = try builder.listen(on: .loopback(port: 0), lane: Lane(index: 2), on: .spread) { e, ctx in
            if e.kind == .accepted { accepted.add(1, ordering: .relaxed) }
            if e.kind == .data { _ = try e.withBytes { s in try s.withUnsafeBytes { try ctx.send($0, on: e.connection) } } }
        }
        let engine = try builder.start()
        defer { _ = engine.stop() }
        let ports = Set(handles.compactMap(\.localPort))
        #expect(handles.count == builder.configuration.cpus.count)
        #expect(ports.count == 1, "ports \(ports)")
        let port = try #require(ports.first)
        for c in 0..<16 {
            let client = try TestClient(port: port)
            let msg = patternBytes(c, 1000)
            #expect(client.write(msg) && client.read(msg.count) == msg)
        }
        #expect(eventually { accepted.load(ordering: .relaxed) == 16 })
    }
}
