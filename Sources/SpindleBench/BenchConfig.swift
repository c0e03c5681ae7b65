import Spindle

/// Everything a harness run is parameterised by: rounds, sizes, CPUs, the engine configuration.
/// Built by `spindle bench` from its options; printed into the JSON's `config`.
public struct BenchConfig: Sendable {
    /// How fast a system is, which sets how many events one of its rounds posts (so each round
    /// lasts ~0.1–0.3 s whatever the system).
    public enum Speed: Sendable { case fast, medium, slow }

    /// Measured rounds per row (the median is reported with min–max).
    public var runs: Int = 5
    /// Unmeasured rounds before them.
    public var warmups: Int = 1
    /// Smaller rounds (`--quick`): the whole suite in under a minute.
    public var quick: Bool = false
    /// The engine configuration of the Spindle rows (the embedded default, or `--profile`).
    public var engine: Engine.Configuration
    /// Where the configuration came from ("embedded default" or the profile's path).
    public var engineSource: String
    /// The CPU the producer (or worker 0) runs on.
    public var producerCPU: Int
    /// The CPU the consumer (or worker 1) runs on.
    public var consumerCPU: Int
    /// Priority isolation: unhandled events the flooder keeps queued (the credit window D).
    public var backlog: Int = 4000
    /// Priority isolation: a probe after every K flood posts.
    public var probeEvery: Int = 64
    /// Priority isolation: the handler's work per flood event (cbp_work iterations, ~1 ns each), the
    /// same in every system so the consumer is the bottleneck and the backlog builds up to D.
    public var workIterations: Int = 40
    /// Wake scenarios: how long the waker waits after the sleeper went to sleep (so its vCPU halts).
    public var settleNanoseconds: UInt64 = 100_000
    /// Seconds in which a round must handle at least one event; a round that stalls longer ends
    /// the run with exit code 1 and a diagnostic (``Watchdog``). Generous: a healthy round handles
    /// an event every ~100 µs even on a busy machine.
    public var stallSeconds: Double = 5
    /// Wake scenarios: events per round.
    public var wakeEvents: Int { quick ? 300 : 1000 }
    /// Priority baseline: probes per round.
    public var baselineProbes: Int { quick ? 3000 : 10000 }
    /// Timer: the period of the timer (1 ms).
    public var timerPeriodNanoseconds: UInt64 = 1_000_000
    /// Timer: firings per round (a round lasts firings × period).
    public var timerFirings: Int { quick ? 500 : 2000 }
    /// Echo: bytes per message (both directions).
    public var echoMessageBytes: Int = 64
    /// Echo: round trips per round with `connections` closed-loop connections (~0.2–1 s a round).
    public func echoMessages(connections: Int) -> Int {
        connections <= 1 ? (quick ? 3000 : 10000) : (quick ? 25_000 : 100_000)
    }
    /// io-priority: bulk connections flooding the bulk listener.
    public var ioPriorityBulkConnections: Int = 64
    /// io-priority: control pings per round, one every `ioPriorityPingNanoseconds`.
    public var ioPriorityPings: Int { quick ? 300 : 1000 }
    /// io-priority: the control ping interval (1 ms).
    public var ioPriorityPingNanoseconds: UInt64 = 1_000_000

    /// A configuration for `engine`, producer on its first CPU and consumer on its second.
    public init(engine: Engine.Configuration, engineSource: String, quick: Bool = false, runs: Int? = nil) {
        self.engine = engine
        self.engineSource = engineSource
        self.quick = quick
        self.runs = runs ?? (quick ? 3 : 5)
        self.producerCPU = engine.cpus.first ?? 0
        self.consumerCPU = engine.cpus.count > 1 ? engine.cpus[1] : (engine.cpus.first ?? 0)
    }

    /// Events per throughput round for a system of the given speed.
    public func events(_ speed: Speed) -> Int {
        switch speed {
        case .fast: return quick ? 2_000_000 : 8_000_000
        case .medium: return quick ? 200_000 : 1_000_000
        case .slow: return quick ? 50_000 : 200_000
        }
    }

    /// Flood events per priority round for a system of the given speed.
    public func floodEvents(_ speed: Speed) -> Int {
        switch speed {
        case .fast: return quick ? 256_000 : 1_024_000
        case .medium: return quick ? 64_000 : 256_000
        case .slow: return quick ? 32_000 : 96_000
        }
    }

    /// Checks the options.
    /// - Throws: ``BenchError/invalidOption(_:)`` naming the option, the value and the rule.
    public func validate() throws(BenchError) {
        if runs < 1 || runs > 1000 { throw .invalidOption("--runs \(runs): must be 1...1000") }
        if engine.cpus.count < 2 {
            throw .invalidOption(
                "the engine configuration has \(engine.cpus.count) CPU(s): the cross-core scenarios need 2; use a profile with at least two CPUs"
            )
        }
        if backlog < 1 || backlog >= 4096 {
            throw .invalidOption("backlog \(backlog): must be 1...4095 (below the lane capacity)")
        }
        if probeEvery < 1 { throw .invalidOption("probe interval \(probeEvery): must be at least 1") }
    }

    /// The `config` object of the JSON report.
    var json: [(String, JSONValue)] {
        [
            ("runs", .int(runs)), ("warmups", .int(warmups)), ("quick", .bool(quick)),
            ("engine", .string(engineSource)),
            ("workers", .int(engine.cpus.count)), ("cpus", .array(engine.cpus.map { .int($0) })),
            ("lanes", .array(engine.lanes.map { .string($0.name) })),
            ("producer_cpu", .int(producerCPU)), ("consumer_cpu", .int(consumerCPU)),
            ("slot_bytes", .int(64)), ("event_bytes", .int(16)),
            ("events_fast", .int(events(.fast))), ("events_medium", .int(events(.medium))),
            ("events_slow", .int(events(.slow))),
            ("backlog", .int(backlog)), ("probe_every", .int(probeEvery)),
            ("work_iterations", .int(workIterations)), ("settle_ns", .int(Int(settleNanoseconds))),
            ("wake_events", .int(wakeEvents)), ("baseline_probes", .int(baselineProbes)),
            ("clock", .string("CLOCK_MONOTONIC")), ("stall_seconds", .double(stallSeconds)),
            ("timer_period_ns", .int(Int(timerPeriodNanoseconds))), ("timer_firings", .int(timerFirings)),
            ("echo_message_bytes", .int(echoMessageBytes)),
            ("echo_messages_1", .int(echoMessages(connections: 1))),
            ("echo_messages_64", .int(echoMessages(connections: 64))),
            ("io_priority_bulk_connections", .int(ioPriorityBulkConnections)),
            ("io_priority_pings", .int(ioPriorityPings)),
            ("io_priority_ping_ns", .int(Int(ioPriorityPingNanoseconds))),
        ]
    }
}
