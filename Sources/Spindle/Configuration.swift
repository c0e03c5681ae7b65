import CSpindle

extension Engine {
    /// Everything that sets how an engine behaves on a host: its workers and their CPUs, its lanes,
    /// spin time and io_uring settings. Mirrors the C core's `sp_config`.
    ///
    /// Build one by hand, take ``hostDefault`` (the embedded default), or load a compiled profile.
    /// Every value is checked by ``validate(host:)`` before an engine starts.
    public struct Configuration: Sendable, Hashable {
        /// How a worker's memory is placed.
        public enum NUMAPolicy: UInt32, Sendable, Hashable, CaseIterable {
            /// Rings and per-worker state on the worker's own node (the consumer's node).
            case local = 0
            /// Interleaved across nodes.
            case interleave = 1
            /// Leave placement to the kernel.
            case none = 2
        }

        /// The kernel interface workers sleep and wake with.
        public enum Backend: UInt32, Sendable, Hashable, CaseIterable {
            /// io_uring where the kernel allows it, else epoll + eventfd (one log line says so).
            case auto = 0
            /// io_uring only: start fails where it is denied.
            case ioUring = 1
            /// epoll + eventfd.
            case epoll = 2
        }

        /// The CPU each worker runs on: worker `i` is pinned to `cpus[i]`. Distinct, non-empty.
        public var cpus: [Int]
        /// The lanes every worker has, lane 0 highest. 1...8 of them.
        public var lanes: [LaneConfiguration]
        /// Where memory lives.
        public var numaPolicy: NUMAPolicy
        /// Sleep/wake interface.
        public var backend: Backend
        /// How long an idle worker busy-polls before it sleeps in the kernel.
        public var spin: Duration
        /// io_uring submission queue entries per worker (power of two, 8...32768).
        public var uringEntries: Int
        /// Ask for SINGLE_ISSUER | DEFER_TASKRUN (else COOP_TASKRUN) when the kernel has them.
        public var uringDeferTaskrun: Bool
        /// Cross-core SPSC rings are all created at start while they total less than this many
        /// bytes; beyond it a pair's rings are created on first use (a counted one-time slow path).
        public var eagerRingBytes: Int
        /// A batch that takes longer than this is counted as slow (`nil`: not measured).
        public var slowBatchThreshold: Duration?

        /// A configuration with the given CPUs and lanes; other fields take their default values.
        public init(
            cpus: [Int], lanes: [LaneConfiguration], numaPolicy: NUMAPolicy = .local, backend: Backend = .auto,
            spin: Duration = .microseconds(50), uringEntries: Int = 256, uringDeferTaskrun: Bool = true,
            eagerRingBytes: Int = 64 << 20, slowBatchThreshold: Duration? = .milliseconds(10)
        ) {
            self.cpus = cpus
            self.lanes = lanes
            self.numaPolicy = numaPolicy
            self.backend = backend
            self.spin = spin
            self.uringEntries = uringEntries
            self.uringDeferTaskrun = uringDeferTaskrun
            self.eagerRingBytes = eagerRingBytes
            self.slowBatchThreshold = slowBatchThreshold
        }

        /// The embedded default for this host: every CPU this process may run on, four lanes
        /// (`critical` strict 64, `high` weighted 8, `normal` weighted 4, `bulk` weighted 1),
        /// capacity 4096, `reject` when full, max batch 32, spin 50 µs.
        public static var hostDefault: Configuration {
            var raw = sp_config()
            sp_config_host_default(&raw)
            return Configuration(raw)
        }

        /// Checks every field's range and every cross-field rule (and, with `host`, that the CPUs
        /// exist and this process may run on them).
        /// - Throws: ``SpindleError`` naming the key, the value, the rule and the fix.
        public func validate(host: Bool = true) throws(SpindleError) {
            let raw = try cValue()
            var msg = [CChar](repeating: 0, count: 512)
            let rc = sp_config_validate([raw], host ? 1 : 0, &msg, msg.count)
            if rc != 0 {
                throw SpindleError(.invalidConfiguration, String(cMessage: msg))
            }
        }
    }

    /// One lane's settings (the same on every worker).
    public struct LaneConfiguration: Sendable, Hashable {
        /// How the scheduler serves a lane.
        public enum Policy: Sendable, Hashable {
            /// Served before every weighted lane, up to `budget` events per round.
            case strict(budget: Int)
            /// Served by deficit round robin with quantum `weight × maxBatch`.
            case weighted(weight: Int)
        }

        /// What a post to a full lane does.
        public enum OnFull: Sendable, Hashable {
            /// The post throws ``PostError`` with code ``PostError/Code/laneFull``.
            case reject
            /// The newest event (the one being posted) is discarded and counted as dropped.
            case drop
            /// A foreign thread waits for room up to `timeout` (`nil`: until shutdown); a worker
            /// thread never waits and gets `reject` behaviour.
            case block(timeout: Duration?)
        }

        /// Name used to look the lane up (`builder.lane(named:)`), at most 31 bytes of UTF-8.
        public var name: String
        /// Scheduling policy.
        public var policy: Policy
        /// Ring slots per source (power of two, 64...4194304).
        public var capacity: Int
        /// Full-lane behaviour.
        public var onFull: OnFull
        /// Most events handed to handlers in one dispatch (1...1024, at most `capacity`).
        public var maxBatch: Int

        /// A lane.
        public init(name: String, policy: Policy, capacity: Int = 4096, onFull: OnFull = .reject, maxBatch: Int = 32) {
            self.name = name
            self.policy = policy
            self.capacity = capacity
            self.onFull = onFull
            self.maxBatch = maxBatch
        }
    }
}
