import CSpindle
import Spindle

/// What `detect` saw on a host: CPU model, kernel, NUMA layout, caches, io_uring features and
/// the measured wake-up latency. The HOST section of a profile holds one of these; host drift is
/// a difference between the recorded facts and ``HostFacts/current``.
public struct HostFacts: Sendable, Hashable {
    /// io_uring features found by the probe.
    public struct UringFeatures: OptionSet, Sendable, Hashable {
        /// The raw `SP_FEAT_*` bits.
        public var rawValue: UInt32
        /// Features from raw bits.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `IORING_SETUP_SINGLE_ISSUER`.
        public static let singleIssuer = UringFeatures(rawValue: UInt32(SP_FEAT_SINGLE_ISSUER))
        /// `IORING_SETUP_DEFER_TASKRUN`.
        public static let deferTaskrun = UringFeatures(rawValue: UInt32(SP_FEAT_DEFER_TASKRUN))
        /// `IORING_SETUP_COOP_TASKRUN`.
        public static let coopTaskrun = UringFeatures(rawValue: UInt32(SP_FEAT_COOP_TASKRUN))
        /// `IORING_OP_MSG_RING`.
        public static let msgRing = UringFeatures(rawValue: UInt32(SP_FEAT_MSG_RING))
        /// TOML names, in bit order.
        public static let names: [(String, UringFeatures)] = [
            ("single_issuer", .singleIssuer), ("defer_taskrun", .deferTaskrun), ("coop_taskrun", .coopTaskrun),
            ("msg_ring", .msgRing),
        ]
    }

    /// `model name` from /proc/cpuinfo (printable ASCII, at most 63 bytes).
    public var cpuModel: String = ""
    /// Kernel release (`uname -r`).
    public var kernel: String = ""
    /// The CPUs of each NUMA node, node 0 first. Empty: an unknown host.
    public var nodeCPUs: [[Int]] = []
    /// SLIT distances between nodes (10 on the diagonal).
    public var distances: [[Int]] = []
    /// io_uring features.
    public var uringFeatures: UringFeatures = []
    /// Measured one-way wake-up of a sleeping thread in ns (0: not measured).
    public var wakeNanoseconds: Int = 0
    /// Cache line in bytes (0: unknown).
    public var cacheLine: Int = 0
    /// L2 bytes per core (0: unknown).
    public var l2Bytes: Int = 0
    /// L3 bytes per L3 (0: unknown).
    public var l3Bytes: Int = 0

    /// Facts of an unknown host (a hand-written profile).
    public init() {}

    /// Whether any layout is recorded.
    public var isKnown: Bool { !nodeCPUs.isEmpty }

    /// The node each CPU is on.
    public func node(ofCPU cpu: Int) -> Int? { nodeCPUs.firstIndex { $0.contains(cpu) } }

    /// The facts of this machine, read once per process (io_uring probed; wake-up not measured).
    public static var current: HostFacts { HostFacts(sp_host_current(nil).pointee) }

    /// Reads the host under a sysfs/procfs-shaped `root` ("/" for this machine, a fixture tree in
    /// tests) and the CPUs this process may run on (wraps `sp_host_read`).
    public static func read(root: String) throws(SpindleError) -> (facts: HostFacts, allowedCPUs: [Int]) {
        var raw = sp_host_facts()
        var allowed = [UInt64](repeating: 0, count: Int(SP_MAX_CPUS) / 64)
        var msg = [CChar](repeating: 0, count: Int(SP_PROFILE_MSG_MAX))
        guard sp_host_read(root, &raw, &allowed, &msg, msg.count) == 0 else {
            throw SpindleError(.invalidProfile, cMessage(msg))
        }
        var cpus: [Int] = []
        for (w, word) in allowed.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { cpus.append(w * 64 + bit) }
        }
        return (HostFacts(raw), cpus)
    }

    /// Converts the C facts.
    public init(_ raw: sp_host_facts) {
        var raw = raw
        cpuModel = Self.string(&raw.cpu_model)
        kernel = Self.string(&raw.kernel)
        let nodes = Int(min(raw.numa_nodes, UInt32(SP_MAX_NODES)))
        let span = Int(min(raw.cpu_span, UInt32(SP_MAX_CPUS)))
        var perNode = [[Int]](repeating: [], count: nodes)
        withUnsafeBytes(of: &raw.cpu_node) { buf in
            for cpu in 0..<span where Int(buf[cpu]) < nodes { perNode[Int(buf[cpu])].append(cpu) }
        }
        nodeCPUs = perNode
        distances = withUnsafeBytes(of: &raw.distance) { buf in
            (0..<nodes).map { i in (0..<nodes).map { j in Int(buf[i * Int(SP_MAX_NODES) + j]) } }
        }
        uringFeatures = UringFeatures(rawValue: raw.uring_features)
        wakeNanoseconds = Int(raw.wake_ns)
        cacheLine = Int(raw.cache_line)
        l2Bytes = Int(raw.l2_bytes)
        l3Bytes = Int(raw.l3_bytes)
    }

    /// The C facts (fingerprint computed). Values that cannot be represented are clamped here
    /// and refused by the loader's range checks, which run on every encoded profile.
    public func cValue() -> sp_host_facts {
        var raw = sp_host_facts()
        Self.store(cpuModel, into: &raw.cpu_model)
        Self.store(kernel, into: &raw.kernel)
        raw.numa_nodes = UInt32(clamping: nodeCPUs.count)
        withUnsafeMutableBytes(of: &raw.cpu_node) { buf in
            for i in 0..<buf.count { buf[i] = UInt8(SP_NODE_NONE) }
            var span = 0
            for (n, cpus) in nodeCPUs.enumerated() {
                for cpu in cpus where cpu >= 0 && cpu < buf.count {
                    buf[cpu] = UInt8(clamping: n)
                    span = max(span, cpu + 1)
                }
            }
            raw.cpu_span = UInt32(span)
        }
        withUnsafeMutableBytes(of: &raw.distance) { buf in
            for (i, row) in distances.enumerated() where i < Int(SP_MAX_NODES) {
                for (j, d) in row.enumerated() where j < Int(SP_MAX_NODES) {
                    buf[i * Int(SP_MAX_NODES) + j] = UInt8(clamping: d)
                }
            }
        }
        raw.uring_features = uringFeatures.rawValue
        raw.wake_ns = UInt32(clamping: wakeNanoseconds)
        raw.cache_line = UInt32(clamping: cacheLine)
        raw.l2_bytes = UInt32(clamping: l2Bytes)
        raw.l3_bytes = UInt32(clamping: l3Bytes)
        raw.fingerprint = sp_host_fingerprint(&raw)
        return raw
    }

    /// FNV-1a fingerprint of CPU model, kernel and NUMA layout.
    public var fingerprint: UInt64 {
        var raw = cValue()
        return sp_host_fingerprint(&raw)
    }

    static func string<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { buf in String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func store<T>(_ s: String, into tuple: inout T) {
        withUnsafeMutableBytes(of: &tuple) { buf in
            for (i, b) in s.utf8.prefix(buf.count - 1).enumerated() { buf[i] = b }
        }
    }
}
