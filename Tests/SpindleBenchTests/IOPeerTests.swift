import CBenchPeers
import Foundation
import Testing

@testable import SpindleBench

/// The raw I/O peers and the echo client, run for a few messages: every echo comes back and is
/// checked (sequence numbers), every wait is bounded, failures say what failed. Timing is not
/// tested here (`spindle bench timer echo io-priority` measures it).
@Suite("Raw I/O peers")
struct IOPeerTests {
    /// Runs the client on a fresh thread (it pins itself to `cpu`).
    static func client(
        port: UInt16, control: UInt16 = 0, connections: UInt32, messages: UInt64 = 0, pings: UInt32 = 0,
        samples: Int
    ) -> (rc: Int32, trial: cbp_trial, samples: [UInt64], failure: String?) {
        let buffer = SampleBuffer(capacity: samples)
        let result = try! PinnedThread.run(cpu: nil) { () -> (Int32, cbp_trial, String?) in
            var spec = cbp_echo_client_spec()
            spec.port = port
            spec.control_port = control
            spec.connections = connections
            spec.message_bytes = 64
            spec.messages = messages
            spec.pings = pings
            spec.ping_interval_ns = 200_000
            spec.cpu = -1
            spec.samples = buffer.base
            spec.max_samples = UInt64(buffer.capacity)
            var t = cbp_trial()
            let rc = cbp_echo_client(&spec, &t)
            return (rc, t, spec.failure.map { String(cString: $0) })
        }
        let n = min(Int(result.1.samples), buffer.capacity)
        return (result.0, result.1, Array(UnsafeBufferPointer(start: buffer.base, count: n)), result.2)
    }

    @Test("both raw servers echo every message of 1 and 8 closed-loop connections", arguments: [CBP_ECHO_URING, CBP_ECHO_EPOLL])
    func echoes(kind: cbp_echo_kind) throws {
        var server: OpaquePointer?
        try #require(cbp_echo_server_start(kind, -1, 1, &server) == 0)
        defer { _ = cbp_echo_server_stop(server) }
        let port = cbp_echo_server_port(server, 0)
        #expect(port != 0 && cbp_echo_server_tid(server) > 0)
        for conns: UInt32 in [1, 8] {
            let r = Self.client(port: port, connections: conns, messages: 400, samples: 400)
            #expect(r.rc == 0, "\(r.failure ?? "")")
            #expect(r.trial.events == 400 && r.samples.count == 400)
            #expect(r.samples.allSatisfy { $0 > 0 && $0 < 2_000_000_000 })
        }
    }

    @Test("with a control port: pings are timed while the bulk connections flood, or alone")
    func controlPings() throws {
        var server: OpaquePointer?
        try #require(cbp_echo_server_start(CBP_ECHO_EPOLL, -1, 2, &server) == 0)
        defer { _ = cbp_echo_server_stop(server) }
        let (control, bulk) = (cbp_echo_server_port(server, 0), cbp_echo_server_port(server, 1))
        let flooded = Self.client(port: bulk, control: control, connections: 4, pings: 20, samples: 20)
        #expect(flooded.rc == 0, "\(flooded.failure ?? "")")
        #expect(flooded.samples.count == 20)
        #expect(flooded.trial.events > 0)  // bulk round trips in the window
        let alone = Self.client(port: bulk, control: control, connections: 0, pings: 10, samples: 10)
        #expect(alone.rc == 0, "\(alone.failure ?? "")")
        #expect(alone.samples.count == 10 && alone.trial.events == 10)  // no bulk: events are the pings
    }

    @Test("a client with nowhere to connect fails at once and says why")
    func refused() throws {
        var server: OpaquePointer?
        try #require(cbp_echo_server_start(CBP_ECHO_EPOLL, -1, 1, &server) == 0)
        let port = cbp_echo_server_port(server, 0)
        #expect(cbp_echo_server_stop(server) == 0)  // its listener is closed now
        let r = Self.client(port: port, connections: 1, messages: 10, samples: 10)
        #expect(r.rc == ECONNREFUSED)
        #expect(r.failure == "connect failed")
    }

    @Test("bad client specs are refused with EINVAL")
    func invalid() {
        #expect(Self.client(port: 1, connections: 0, messages: 1, samples: 1).rc == EINVAL)  // nothing to do
        #expect(Self.client(port: 1, connections: 300, messages: 1, samples: 1).rc == EINVAL)  // > 256
        #expect(Self.client(port: 1, control: 2, connections: 1, pings: 0, samples: 1).rc == EINVAL)
    }

    @Test("the raw timers fire on a 1 ms grid and report lateness per firing", arguments: [false, true])
    func timers(uring: Bool) {
        let n = 20
        let buffer = SampleBuffer(capacity: n)
        let (rc, t) = try! PinnedThread.run(cpu: nil) { () -> (Int32, cbp_trial) in
            var t = cbp_trial()
            let rc =
                uring
                ? cbp_timer_uring(UInt32(n), 1_000_000, -1, buffer.base, &t)
                : cbp_timer_timerfd(UInt32(n), 1_000_000, -1, buffer.base, &t)
            return (rc, t)
        }
        #expect(rc == 0)
        #expect(t.events == UInt64(n) && t.samples == UInt64(n))
        // n firings of a 1 ms period take at least (n - 1) ms, coalesced periods included
        #expect(t.elapsed_ns >= UInt64(n - 1) * 1_000_000)
        #expect(UnsafeBufferPointer(start: buffer.base, count: n).allSatisfy { $0 < 1_000_000_000 })
        #expect(cbp_timer_timerfd(0, 1_000_000, -1, buffer.base, nil) == EINVAL)
    }

    @Test("the syscall counter counts a thread's syscalls where perf is allowed")
    func syscallCounter() {
        // "/proc/thread-self" → "PID/task/TID"
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"),
            let tid = link.split(separator: "/").last.flatMap({ Int32($0) })
        else { return }
        let fd = cbp_syscall_counter_open(tid)
        guard fd >= 0 else { return }  // no perf or tracefs here: the bench prints a warning instead
        defer { cbp_syscall_counter_close(fd) }
        let before = cbp_syscall_counter_read(fd)
        for _ in 0..<100 { _ = getppid() }
        let after = cbp_syscall_counter_read(fd)
        #expect(after - before >= 100)
        #expect(cbp_thread_cpu_ns(0) > 0 && cbp_thread_cpu_ns(tid) > 0)
    }
}
