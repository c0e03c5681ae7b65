import CSpindle
import Spindle

/// `spindle profile detect`: reads a host and writes a profile source tuned to it, each value
/// with a comment saying why.
public enum HostDetector {
    /// Where a worker runs and where its rings live.
    public struct WorkerPlacement: Sendable, Hashable {
        /// Dense worker number.
        public var worker: Int
        /// The CPU it is pinned to.
        public var cpu: Int
        /// The NUMA node of that CPU (`nil` on an unknown host).
        public var node: Int?
        /// The node its rings live on: a ring lives on its consumer's node, and the consumer of a
        /// worker's rings is the worker.
        public var ringNode: Int? { node }
    }

    /// The result of detection.
    public struct Detection {
        /// The profile source (engine, lanes, host facts).
        public var source: ProfileSource
        /// Where each worker runs.
        public var placement: [WorkerPlacement]
        /// Commented TOML, ready to edit and compile.
        public var toml: String
    }

    /// A housekeeping CPU is left to the kernel (timers, RCU, most IRQs) once a host has this many
    /// allowed CPUs; below it every CPU is worth more as a worker.
    public static let housekeepingThreshold = 8

    /// Reads the host under `root` ("/" for this machine) and derives a profile.
    /// - Parameters:
    ///   - root: the file system root to read `/sys` and `/proc` under ("/", or a fixture tree).
    ///   - measure: measure the wake-up latency here and derive the spin time from it (only
    ///     meaningful for root "/").
    ///   - probeUring: probe io_uring features (this kernel's; off for fixture trees).
    public static func detect(root: String = "/", measure: Bool = false, probeUring: Bool? = nil) throws(SpindleError) -> Detection {
        var (facts, allowed) = try HostFacts.read(root: root)
        if probeUring ?? (root == "/") { facts.uringFeatures = HostFacts.UringFeatures(rawValue: sp_host_probe_uring()) }
        if measure { facts.wakeNanoseconds = Int(sp_host_measure_wake_ns(200)) }
        guard !allowed.isEmpty else {
            throw SpindleError(.invalidProfile, "\(root): host = no CPUs allowed: rule at least one CPU this process may run on; fix: check the affinity (taskset) and cgroup cpuset")
        }
        var comments: [String: [String]] = [:]
        var workers = allowed
        if allowed.count >= housekeepingThreshold, let first = allowed.first {
            workers.removeFirst()
            comments["engine.cpus", default: []].append("every CPU this process may use (\(CPUList.format(allowed))) except CPU \(first), left to the kernel's housekeeping (\(allowed.count) >= \(housekeepingThreshold) CPUs)")
        } else {
            comments["engine.cpus", default: []].append("every CPU this process may use (affinity and cgroup cpuset): \(CPUList.format(allowed))")
        }
        workers = Array(workers.prefix(Int(SP_MAX_WORKERS)))
        var cfg = sp_config()
        sp_config_host_default(&cfg)  // lanes and engine defaults, the same as the embedded default
        cfg.worker_count = UInt32(workers.count)
        withUnsafeMutableBytes(of: &cfg.cpus) { buf in
            for i in 0..<buf.count { buf[i] = 0 }
            for (i, cpu) in workers.enumerated() { buf.storeBytes(of: UInt16(cpu), toByteOffset: i * 2, as: UInt16.self) }
        }
        cfg.numa_policy = SP_NUMA_LOCAL.rawValue
        comments["engine.numa_policy"] = [facts.nodeCPUs.count > 1
            ? "\(facts.nodeCPUs.count) NUMA nodes: each worker's rings and state on its own node"
            : "one NUMA node: local costs nothing and stays right if the profile moves to a bigger host"]
        cfg.backend = SP_BACKEND_AUTO.rawValue
        let names = HostFacts.UringFeatures.names.filter { facts.uringFeatures.contains($0.1) }.map(\.0)
        comments["engine.backend"] = [names.isEmpty
            ? "io_uring not probed or denied here: auto falls back to epoll + eventfd with one log line"
            : "io_uring offers \(names.joined(separator: ", ")): auto uses it"]
        cfg.uring_flags = UInt32(SP_URING_WANT_DEFER_TASKRUN | SP_URING_WANT_COOP_TASKRUN)
        comments["engine.uring_defer_taskrun"] = [facts.uringFeatures.contains(.deferTaskrun)
            ? "SINGLE_ISSUER + DEFER_TASKRUN present: the fastest wake-up measured on this kind of host"
            : "asked for; used only where the kernel has it (else COOP_TASKRUN)"]
        if facts.wakeNanoseconds > 0 {
            // Ski rental: spinning as long as a sleep+wake costs bounds the loss at 2x either way.
            let spinUs = min(1000, max(5, (2 * facts.wakeNanoseconds + 999) / 1000))
            cfg.spin_ns = UInt64(spinUs) * 1000
            comments["engine.spin_us"] = ["measured: waking a sleeping thread costs \(facts.wakeNanoseconds) ns one way here (median of 200); spin for two wake-ups (\(spinUs) µs) so an idle worker never loses more than 2x to sleeping"]
        } else {
            comments["engine.spin_us"] = ["default: a wake-up costs ~22 µs one way on the reference host; run `detect --measure` to derive it here"]
        }
        let perLane = 4096 * Int(SP_SLOT_SIZE)
        comments["engine.eager_ring_bytes"] = ["\(workers.count) workers x \(workers.count - 1) peers x 4 lanes x \(perLane >> 10) KiB = \((workers.count * max(0, workers.count - 1) * 4 * perLane) >> 20) MiB of SPSC rings; below this bound they are all created at start"]
        if facts.l2Bytes > 0 {
            comments["lanes.critical"] = ["capacity 4096 x 64 B = 256 KiB per ring (L2 here: \(facts.l2Bytes >> 10) KiB per core)"]
        }
        comments["host"] = ["what detect saw; `validate` warns when this host differs (refuses with --strict)"]
        let source = ProfileSource(config: cfg, host: facts)
        _ = try source.encode(name: "detect")  // proves the derived profile compiles
        var header = ["Spindle profile written by `spindle profile detect` for \(facts.cpuModel), kernel \(facts.kernel)",
                      "edit, then: spindle profile compile THIS.toml -o host.spindle && spindle profile validate host.spindle"]
        for p in placement(of: source) {
            header.append("worker \(p.worker) on CPU \(p.cpu)" + (p.node.map { ", node \($0): its rings live on node \($0)" } ?? ""))
        }
        return Detection(source: source, placement: placement(of: source), toml: source.render(comments: comments, header: header))
    }

    /// Where the workers of `source` run and which node each one's rings live on.
    public static func placement(of source: ProfileSource) -> [WorkerPlacement] {
        source.cpus.enumerated().map { WorkerPlacement(worker: $0.offset, cpu: $0.element, node: source.host.node(ofCPU: $0.element)) }
    }
}
