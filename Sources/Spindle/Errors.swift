import CSpindle

/// Why a post did not enqueue its event. A small value: creating and throwing one allocates
/// nothing, so the reject path stays as cheap as the accept path.
///
/// ```swift
/// do { try engine.post(tick, as: ticks, lane: bulk, to: .worker(1)) }
/// catch { print(error) }   // "post to worker 1, lane 3 rejected: lane full"
/// ```
@frozen
public struct PostError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reason.
    public enum Code: UInt8, Sendable, Hashable {
        /// The lane's ring for this producer had no room (`on_full = reject`, or a worker thread
        /// posting to a `block` lane: a worker never waits on a ring).
        case laneFull
        /// The engine is shutting down or has stopped: foreign posts are refused.
        case stopped
        /// A `block` lane stayed full until its timeout.
        case timedOut
        /// `.worker(id)` named a worker the engine does not have.
        case noSuchWorker
        /// `post(contentsOf:)` with more events than the lane's capacity.
        case batchTooLarge
        /// The lane index is not one of the configuration's lanes (`0..<lanes.count`).
        case noSuchLane
        /// A worker's ring to the destination is created on first use (beyond `eagerRingBytes`)
        /// and its memory could not be mapped: the post is refused and counted as rejected; a
        /// later post tries again.
        case outOfMemory
    }

    /// The reason.
    public var code: Code
    /// The destination worker (as resolved from the destination).
    public var worker: WorkerID
    /// The lane posted to.
    public var lane: Lane

    /// A post error.
    @inlinable
    public init(_ code: Code, worker: WorkerID, lane: Lane) {
        self.code = code
        self.worker = worker
        self.lane = lane
    }

    /// "post to worker 1, lane 3 rejected: lane full …"
    public var description: String {
        let reason: String
        switch code {
        case .laneFull: reason = "lane full (its ring has no free slot; raise the lane's capacity, slow the producer, or use on_full = drop/block)"
        case .stopped: reason = "engine stopped (shutdown has begun; foreign posts are refused)"
        case .timedOut: reason = "timed out waiting for room on a block lane"
        case .noSuchWorker: reason = "no such worker (destinations are 0..<workerCount)"
        case .batchTooLarge: reason = "batch larger than the lane's capacity"
        case .noSuchLane: reason = "no such lane (lanes are 0..<the configuration's lane count)"
        case .outOfMemory: reason = "out of memory (the ring to that worker could not be mapped on first use; a later post tries again)"
        }
        return "post to worker \(worker.rawValue), lane \(lane.index) rejected: \(reason)"
    }

    @usableFromInline
    static func code(for rc: Int32) -> Code {
        switch rc {
        case SP_ESTOPPED.rawValue: return .stopped
        case SP_ETIMEDOUT.rawValue: return .timedOut
        case SP_EBAD_WORKER.rawValue: return .noSuchWorker
        case SP_EBATCH_TOO_LARGE.rawValue: return .batchTooLarge
        case SP_EBAD_LANE.rawValue: return .noSuchLane
        case SP_ENOMEM.rawValue: return .outOfMemory
        default: return .laneFull
        }
    }
}

/// Errors of Spindle's cold paths: configuration, registration, start, profiles.
public struct SpindleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public enum Code: Sendable, Hashable {
        /// A configuration value broke a rule (the message names key, value, rule and fix).
        case invalidConfiguration
        /// A profile file was refused (the message names file, section, key, value, rule, fix).
        case invalidProfile
        /// `builder.lane(named:)` with a name the configuration does not have.
        case unknownLane
        /// An `InlineEvent` larger than 48 bytes or aligned over 16.
        case eventTooLarge
        /// Registration after `start()`, or the same builder started twice.
        case alreadyStarted
        /// The engine could not start (pinning, io_uring, threads): the message says why.
        case startFailed
        /// The call is not allowed on a worker thread (e.g. `shutdown`).
        case onWorkerThread
        /// A live retune asked for a change that needs a restart.
        case notLive
    }

    /// What kind of failure.
    public var code: Code
    /// One line: what, where, the rule and the fix.
    public var message: String

    /// An error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
