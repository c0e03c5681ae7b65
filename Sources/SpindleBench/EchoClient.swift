import CBenchPeers
import Foundation
import Synchronization

/// The client side of `echo` and `io-priority`, the same C client (`echo_client.c`) for every
/// server: it runs on a fresh thread pinned to the producer CPU, and reports the measured window
/// back through a callback, where the process's allocations are read (and, with
/// `SPINDLE_BENCH_SYSCALLS=1`, the server thread's syscalls).
enum EchoClient {
    /// `SPINDLE_BENCH_SYSCALLS=1`: count the server thread's syscalls over each echo window (a perf
    /// counter on `raw_syscalls:sys_enter`) and print them per 1,000 messages to stderr, with the CPU
    /// time the server and the client thread used in the window (which side is the bottleneck).
    static let countSyscalls = ProcessInfo.processInfo.environment["SPINDLE_BENCH_SYSCALLS"] != nil

    /// What the window callback records; touched by the client thread only until the join.
    final class Window: @unchecked Sendable {
        var mallocStart: UInt64 = 0
        var mallocEnd: UInt64 = 0
        var counter: Int32 = -1
        var syscallsStart: UInt64 = 0
        var syscallsEnd: UInt64 = 0
        var serverTID: Int32 = -1
        var serverCPU: (UInt64, UInt64) = (0, 0)
        var clientCPU: (UInt64, UInt64) = (0, 0)
    }

    /// Called on the client thread at the start (0) and the end (1) of the measured window.
    static let callback: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void = { ctx, phase in
        guard let ctx else { return }
        let w = Unmanaged<Window>.fromOpaque(ctx).takeUnretainedValue()
        if phase == 0 {
            if w.serverTID > 0 {
                w.syscallsStart = cbp_syscall_counter_read(w.counter)
                w.serverCPU.0 = cbp_thread_cpu_ns(w.serverTID)
                w.clientCPU.0 = cbp_thread_cpu_ns(0)
            }
            w.mallocStart = mallocsSoFar()
        } else {
            w.mallocEnd = mallocsSoFar()
            if w.serverTID > 0 {
                w.clientCPU.1 = cbp_thread_cpu_ns(0)
                w.serverCPU.1 = cbp_thread_cpu_ns(w.serverTID)
                w.syscallsEnd = cbp_syscall_counter_read(w.counter)
            }
        }
    }

    /// Runs one client round against a server on 127.0.0.1.
    /// - Parameters:
    ///   - port: the echo (bulk) listener.
    ///   - controlPort: io-priority's control listener (nil: echo).
    ///   - connections: closed-loop connections to `port`.
    ///   - messages: echo: round trips measured.
    ///   - pings: io-priority: control pings measured.
    ///   - serverTID: the server thread (for syscall counting).
    ///   - label: "echo-64 raw-epoll" (diagnostics).
    static func run(
        _ c: BenchConfig, port: Int, controlPort: Int? = nil, connections: Int, messages: Int = 0, pings: Int = 0,
        serverTID: Int32?, label: String
    ) throws -> Trial {
        let capacity = controlPort == nil ? messages : pings
        let samples = SampleBuffer(capacity: capacity)
        let window = Window()
        if countSyscalls, let tid = serverTID {
            window.serverTID = tid
            window.counter = cbp_syscall_counter_open(tid)
            if window.counter < 0 {
                print(
                    "warning: \(label): cannot count the server thread's syscalls (perf_event_open: errno \(-window.counter))",
                    to: &standardError)
            }
        }
        defer { cbp_syscall_counter_close(window.counter) }
        let cpu = c.producerCPU
        let bytes = c.echoMessageBytes
        let interval = c.ioPriorityPingNanoseconds
        let (rc, t, why) = try PinnedThread.run(cpu: nil) { () -> (Int32, cbp_trial, String?) in
            var spec = cbp_echo_client_spec()
            spec.port = UInt16(port)
            spec.control_port = UInt16(controlPort ?? 0)
            spec.connections = UInt32(connections)
            spec.message_bytes = UInt32(bytes)
            spec.messages = UInt64(messages)
            spec.pings = UInt32(pings)
            spec.ping_interval_ns = interval
            spec.cpu = Int32(cpu)
            spec.samples = samples.base
            spec.max_samples = UInt64(samples.capacity)
            spec.window = EchoClient.callback
            spec.window_ctx = Unmanaged.passUnretained(window).toOpaque()
            var t = cbp_trial()
            let rc = cbp_echo_client(&spec, &t)
            return (rc, t, spec.failure.map { String(cString: $0) })
        }
        if rc != 0 {
            throw BenchError.runFailed(
                "\(label): the echo client failed: \(why ?? "?"): \(String(cString: strerror(rc))) (errno \(rc))")
        }
        let n = min(Int(t.samples), samples.capacity)
        if countSyscalls && window.serverTID > 0 && t.events > 0 && t.elapsed_ns > 0 {
            let calls = window.syscallsEnd &- window.syscallsStart
            let per1000 = window.counter >= 0 ? String(format: "%.0f", Double(calls) * 1000 / Double(t.events)) : "?"
            let busy = { (cpu: (UInt64, UInt64)) in String(format: "%.0f %%", Double(cpu.1 &- cpu.0) * 100 / Double(t.elapsed_ns)) }
            print(
                "syscalls \(label): server thread \(window.serverTID): \(calls) syscalls for \(t.events) messages = \(per1000) per 1,000; CPU busy: server \(busy(window.serverCPU)), client \(busy(window.clientCPU))",
                to: &standardError)
        }
        return Trial(
            events: Int(t.events), seconds: Double(t.elapsed_ns) / 1e9,
            latencies: Array(UnsafeBufferPointer(start: samples.base, count: n)),
            mallocs: window.mallocEnd &- window.mallocStart)
    }
}
