/// A benchmark scenario: one handoff pattern, measured for Spindle and for every peer that can
/// express it. Names are the CLI's and the JSON's (`spindle bench cross-core`).
public enum Scenario: String, CaseIterable, Sendable, Hashable, Codable {
    /// A handler posting to its own worker (`ctx.post`), 16-byte event.
    case sameCore = "same-core"
    /// Producer on one worker, handler on the other (the SPSC path).
    case crossCore = "cross-core"
    /// A non-worker thread posting through the MPSC path.
    case foreignThread = "foreign-thread"
    /// One event at a time to a sleeping worker from another worker (MSG_RING wake).
    case wakeWorker = "wake-worker"
    /// One event at a time to a sleeping worker from a foreign thread (eventfd wake).
    case wakeForeign = "wake-foreign"
    /// A flood on the lowest lane held at backlog D, with high-priority probes.
    case priorityIsolation = "priority-isolation"
    /// The same probes without the flood.
    case priorityBaseline = "priority-baseline"
    /// Open + mmap + validate a compiled profile (and check the host rules): per-load latency.
    /// Measured only where a profile loader is supplied (`spindle bench` supplies SpindleProfiles').
    case profileLoad = "profile-load"
    /// Lateness of a periodic 1 ms timer on an otherwise idle worker.
    case timer = "timer"
    /// A loopback TCP echo, one closed-loop connection: messages/s and round-trip time.
    case echo1 = "echo-1"
    /// The same echo with 64 closed-loop connections from one client thread.
    case echo64 = "echo-64"
    /// One worker: a control listener on the strict lane, a bulk listener on the last lane flooded by
    /// 64 connections; the control connection's ping round-trip time.
    case ioPriority = "io-priority"
    /// The same control pings with no flood (the baseline `io-priority` is compared with).
    case ioPriorityUnloaded = "io-priority-unloaded"
    /// Async code hopping onto an executor: pairs of tasks passing a baton, one job per hop.
    case executor = "executor"

    /// One line: what the scenario measures.
    public var summary: String {
        switch self {
        case .sameCore: return "a handler posts to its own worker (ctx.post), 16-byte event; one thread"
        case .crossCore: return "producer on worker 0, handler on worker 1 (SPSC ring)"
        case .foreignThread: return "a non-worker thread posts to worker 1 (MPSC ring)"
        case .wakeWorker:
            return "one event at a time from worker 0 to sleeping worker 1 (MSG_RING wake); post-to-handler latency"
        case .wakeForeign:
            return
                "one event at a time from a foreign thread to sleeping worker 1 (eventfd wake); post-to-handler latency"
        case .priorityIsolation: return "flood on lane 3 held at backlog D, lane-0 probe every K posts; probe latency"
        case .priorityBaseline: return "the lane-0 probes alone, one at a time (unflooded baseline)"
        case .profileLoad: return "open + mmap + validate a compiled profile, then the host check; per-load latency"
        case .timer: return "a periodic 1 ms timer on idle worker 1; lateness (deadline → the worker has it)"
        case .echo1: return "loopback TCP echo, 1 closed-loop connection of 64-byte messages; messages/s and RTT"
        case .echo64: return "loopback TCP echo, 64 closed-loop connections from one client thread; messages/s and RTT"
        case .ioPriority:
            return "control listener on the strict lane, 64 bulk connections flooding the bulk lane; control ping RTT"
        case .ioPriorityUnloaded: return "the control pings alone, one every 1 ms (unloaded baseline); RTT"
        case .executor:
            return "8 pairs of tasks pass a baton on the executor (Spindle: worker 1, lane 0); hops (jobs)/s, mallocs per hop"
        }
    }

    /// Whether the scenario's figure of merit is latency (else throughput).
    public var isLatency: Bool {
        switch self {
        case .sameCore, .crossCore, .foreignThread, .echo1, .echo64, .executor: return false
        case .wakeWorker, .wakeForeign, .priorityIsolation, .priorityBaseline, .profileLoad, .timer, .ioPriority,
            .ioPriorityUnloaded:
            return true
        }
    }

    /// Scenarios whose latency curves the SVG plot draws.
    public var isPlotted: Bool {
        switch self {
        case .wakeWorker, .wakeForeign, .priorityIsolation, .priorityBaseline, .timer, .echo1, .echo64, .ioPriority,
            .ioPriorityUnloaded:
            return true
        case .sameCore, .crossCore, .foreignThread, .profileLoad, .executor: return false
        }
    }

    /// Names that stand for several scenarios (`spindle bench echo`).
    public static let groups: [(name: String, scenarios: [Scenario])] = [("echo", [.echo1, .echo64])]

    /// Scenarios that run whenever this one is named, because its target compares with them in the
    /// same run: `io-priority` brings its unloaded baseline.
    public var companions: [Scenario] {
        self == .ioPriority ? [.ioPriorityUnloaded] : []
    }

    /// Parses CLI names; an empty list means every scenario. A group name (``groups``) stands for its
    /// scenarios; a scenario brings its ``companions`` right after it.
    /// - Throws: ``BenchError/unknownScenario(_:)`` naming the scenarios there are.
    public static func parse(_ names: [String]) throws(BenchError) -> [Scenario] {
        if names.isEmpty { return allCases }
        var out: [Scenario] = []
        for name in names {
            let named: [Scenario]
            if let s = Scenario(rawValue: name) {
                named = [s] + s.companions
            } else if let g = groups.first(where: { $0.name == name }) {
                named = g.scenarios
            } else {
                throw .unknownScenario(name)
            }
            for s in named where !out.contains(s) { out.append(s) }
        }
        return out
    }
}

/// A system measured in a scenario: Spindle itself or a peer. The raw value is the JSON's `system`.
public struct System: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The JSON name.
    public var rawValue: String
    /// A system by name (peers added from outside use their own names, e.g. `nio-eventloop`).
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Spindle, one `post` per event.
    public static let spindle = System(rawValue: "spindle")
    /// Spindle, `post(contentsOf:)` 32 events at a time.
    public static let spindleBatch = System(rawValue: "spindle-batch")
    /// A raw C SPSC ring with Spindle's slot size, capacity and batch.
    public static let rawCRing = System(rawValue: "raw-c-ring")
    /// A raw C Vyukov bounded MPSC ring.
    public static let rawMPSC = System(rawValue: "raw-mpsc")
    /// A raw eventfd wake-up.
    public static let rawEventfd = System(rawValue: "raw-eventfd")
    /// A raw io_uring MSG_RING wake-up.
    public static let rawMsgring = System(rawValue: "raw-msgring")
    /// `DispatchQueue.async` on a serial queue.
    public static let dispatch = System(rawValue: "dispatch")
    /// An `AsyncStream` producer and a `for await` consumer.
    public static let asyncStream = System(rawValue: "asyncstream")
    /// A mutex + condition-variable queue.
    public static let mutexQueue = System(rawValue: "mutex-queue")
    /// Spindle's worker executor as the serial executor of actors (`unownedExecutor`).
    public static let spindleActor = System(rawValue: "spindle-actor")
    /// The `executor` scenario's pairs spread over every worker's executor (as many CPUs as the
    /// global executor).
    public static let spindleWorkers = System(rawValue: "spindle-workers")
    /// Swift's global concurrent executor (tasks with no executor preference).
    public static let globalExecutor = System(rawValue: "global-executor")
    /// SwiftNIO `EventLoop.execute` (added by the Benchmarks package's runner).
    public static let nioEventLoop = System(rawValue: "nio-eventloop")
    /// A thread blocking in `read(2)` on a periodic CLOCK_MONOTONIC timerfd.
    public static let rawTimerfd = System(rawValue: "raw-timerfd")
    /// A thread waiting on its own io_uring for absolute `IORING_OP_TIMEOUT`s.
    public static let rawUringTimeout = System(rawValue: "raw-uring-timeout")
    /// A raw io_uring echo server: multishot accept, multishot recv into a buffer ring, send.
    public static let rawUring = System(rawValue: "raw-uring")
    /// A raw epoll echo server: level-triggered EPOLLIN, accept4, recv, send.
    public static let rawEpoll = System(rawValue: "raw-epoll")

    /// Whether this is a Spindle row (mallocs per event always measured, never null).
    public var isSpindle: Bool { self == .spindle || self == .spindleBatch || self == .spindleWorkers }

    /// The JSON name.
    public var description: String { rawValue }
}

/// Errors of the harness's cold paths.
public enum BenchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A scenario name the harness does not have.
    case unknownScenario(String)
    /// An option out of range.
    case invalidOption(String)
    /// A run could not be set up or failed (thread creation, io_uring, engine start).
    case runFailed(String)

    /// One line with the fix.
    public var description: String {
        switch self {
        case .unknownScenario(let n):
            let groups = Scenario.groups.map { "\($0.name) (= \($0.scenarios.map(\.rawValue).joined(separator: " + ")))" }
            return
                "unknown scenario \"\(n)\"; scenarios are: \((Scenario.allCases.map(\.rawValue) + groups).joined(separator: ", "))"
        case .invalidOption(let m): return m
        case .runFailed(let m): return m
        }
    }
}
