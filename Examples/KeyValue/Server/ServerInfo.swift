import Glibc
import Spindle

extension ServerCore {
    /// The INFO reply: server, clients, stats (this server's and the hops'), keyspace, and the
    /// engine's own counters per lane (summed over workers) and per worker. `section` is accepted
    /// and ignored: every section is returned.
    func info(section: String?) -> String {
        let engine = self.engine.withLock { $0 }
        func total(_ pick: (Counters) -> Int) -> Int { shards.reduce(0) { $0 + pick($1.counters) } }
        var lines: [String] = [
            "# Server",
            "redis_version:7.0.0",
            "spindle_kv_version:0.1.0",
            "redis_mode:standalone",
            "process_id:\(getpid())",
            "tcp_port:\(dataPort.load(ordering: .relaxed))",
            "control_port:\(controlPort.load(ordering: .relaxed))",
            "uptime_in_seconds:\((ContinuousClock.now - started).components.seconds)",
            "workers:\(workers)",
            "backend:\(engine.map { $0.backend == .ioUring ? "io_uring" : "epoll" } ?? "stopped")",
            "",
            "# Clients",
            "connected_clients:\(total { $0.connections.load(ordering: .relaxed) })",
            "",
            "# Stats",
            "total_connections_received:\(total { $0.accepted.load(ordering: .relaxed) })",
            "total_commands_processed:\(total { $0.commands.load(ordering: .relaxed) })",
            "expired_keys:\(total { $0.expired.load(ordering: .relaxed) })",
            "hops_sent:\(total { $0.hopsSent.load(ordering: .relaxed) })",
            "hops_served:\(total { $0.hopsServed.load(ordering: .relaxed) })",
            "protocol_errors:\(total { $0.protocolErrors.load(ordering: .relaxed) })",
            "output_limit_closes:\(total { $0.outputOverflows.load(ordering: .relaxed) })",
            "input_waits:\(total { $0.parks.load(ordering: .relaxed) })",
            "busy_replies:\(total { $0.busy.load(ordering: .relaxed) })",
            "stalled_hop_replies:\(total { $0.stalledReplies.load(ordering: .relaxed) })",
            "",
            "# Keyspace",
            "db0:keys=\(total { $0.keys.load(ordering: .relaxed) }),expires=\(total { $0.expires.load(ordering: .relaxed) }),avg_ttl=0",
        ]
        if let engine {
            lines.append("")
            lines.append("# Lanes")
            for (i, lane) in engine.configuration.lanes.enumerated() {
                let s = engine.stats(lane: Lane(index: i))
                let policy: String
                switch lane.policy {
                case .strict(let budget): policy = "strict,budget=\(budget)"
                case .weighted(let weight): policy = "weighted,weight=\(weight)"
                }
                lines.append("lane\(i)_\(lane.name):policy=\(policy),enqueued=\(s.enqueued),handled=\(s.handled),rejected=\(s.rejected),dropped=\(s.dropped),failed=\(s.failed),pending=\(s.pending)")
            }
            lines.append("")
            lines.append("# Workers")
            for w in 0..<engine.workerCount {
                let ws = engine.workerStats(WorkerID(w)), io = engine.ioStats(WorkerID(w))
                lines.append("worker\(w):cpu=\(engine.configuration.cpus[w]),rounds=\(ws.rounds),batches=\(ws.batches),sleeps=\(ws.sleeps),wakeups_sent=\(ws.wakeupsSent),slow_batches=\(ws.slowBatches),io_sources=\(io.live),io_enters=\(io.enters),io_stalled=\(io.stalled),io_nobufs=\(io.nobufs),io_short_sends=\(io.shortSends)")
            }
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
