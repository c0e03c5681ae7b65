import CBenchPeers

/// The raw C peers of the I/O scenarios (`timer.c`, `echo_server.c`): the same kernel mechanisms
/// Spindle's backends use, driven by one pinned thread with no engine around them.
enum CIOPeers {
    static var contenders: [Contender] {
        [
            Contender(system: .rawTimerfd, scenarios: [.timer]) { _, c in try timer(uring: false, c) },
            Contender(system: .rawUringTimeout, scenarios: [.timer]) { _, c in try timer(uring: true, c) },
            Contender(system: .rawUring, scenarios: [.echo1, .echo64]) { s, c in try echo(CBP_ECHO_URING, .rawUring, s, c) },
            // The FIFO comparison of io-priority: one loop serving control and bulk alike.
            Contender(system: .rawEpoll, scenarios: [.echo1, .echo64, .ioPriority, .ioPriorityUnloaded]) { s, c in
                try echo(CBP_ECHO_EPOLL, .rawEpoll, s, c)
            },
        ]
    }

    /// A periodic timer on the consumer CPU (where Spindle's worker 1 runs): lateness per firing.
    static func timer(uring: Bool, _ c: BenchConfig) throws -> Trial {
        let n = c.timerFirings
        let samples = SampleBuffer(capacity: n)
        let (cpu, period) = (Int32(c.consumerCPU), c.timerPeriodNanoseconds)
        let (t, m) = try CPeers.measured {
            uring
                ? cbp_timer_uring(UInt32(n), period, cpu, samples.base, $0)
                : cbp_timer_timerfd(UInt32(n), period, cpu, samples.base, $0)
        }
        return CPeers.trial(
            t, mallocs: m, latencies: Array(UnsafeBufferPointer(start: samples.base, count: Int(t.samples))))
    }

    /// A raw echo server thread on the consumer CPU and the shared client on the producer CPU.
    static func echo(_ kind: cbp_echo_kind, _ system: System, _ s: Scenario, _ c: BenchConfig) throws -> Trial {
        let priority = s == .ioPriority || s == .ioPriorityUnloaded
        var server: OpaquePointer?
        try CPeers.check(cbp_echo_server_start(kind, Int32(c.consumerCPU), priority ? 2 : 1, &server), "echo server start")
        guard let server else { throw BenchError.runFailed("echo server start returned no server") }
        var stopped = false
        defer { if !stopped { _ = cbp_echo_server_stop(server) } }
        let label = "\(s.rawValue) \(system)"
        let tid = cbp_echo_server_tid(server)
        let trial: Trial
        if priority {
            // listener 0: control, listener 1: bulk (one epoll set: served in the order they come)
            trial = try EchoClient.run(
                c, port: Int(cbp_echo_server_port(server, 1)), controlPort: Int(cbp_echo_server_port(server, 0)),
                connections: s == .ioPriority ? c.ioPriorityBulkConnections : 0, pings: c.ioPriorityPings,
                serverTID: tid, label: label)
        } else {
            let n = SpindleIO.connections(s)
            trial = try EchoClient.run(
                c, port: Int(cbp_echo_server_port(server, 0)), connections: n,
                messages: c.echoMessages(connections: n), serverTID: tid, label: label)
        }
        stopped = true
        try CPeers.check(cbp_echo_server_stop(server), "echo server loop")
        return trial
    }
}
