import CSpindle

/// A worker, numbered densely `0..<workerCount`. The CPU it runs on is a separate fact
/// (``WorkerContext/cpu``, ``Engine/Configuration/cpus``).
@frozen
public struct WorkerID: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The index.
    public var rawValue: Int
    /// A worker id.
    @inlinable public init(rawValue: Int) { self.rawValue = rawValue }
    /// A worker id.
    @inlinable public init(_ rawValue: Int) { self.rawValue = rawValue }
    /// `lhs` before `rhs`.
    @inlinable public static func < (lhs: WorkerID, rhs: WorkerID) -> Bool { lhs.rawValue < rhs.rawValue }
    /// "worker 3"
    public var description: String { "worker \(rawValue)" }
}

/// A priority lane: 0 is the highest. Obtain one with ``Engine/Builder/lane(named:)``.
@frozen
public struct Lane: Sendable, Hashable, CustomStringConvertible {
    /// The lane's index on every worker.
    public let index: Int
    /// A lane by index (``Engine/Builder/lane(named:)`` checks the name exists; this does not).
    @inlinable public init(index: Int) { self.index = index }
    /// "lane 2"
    public var description: String { "lane \(index)" }
}

/// Where a post goes.
@frozen
public enum Destination: Sendable, Hashable {
    /// A given worker.
    case worker(WorkerID)
    /// The worker a fixed 64-bit mixer picks for `key`: stable across processes and runs, so
    /// every event with one key lands on one worker, in order per producer.
    case key(UInt64)
    /// Round robin over the workers, per producing thread.
    case spread

    /// The C core's destination word (a worker index, or SP_DEST_SPREAD) for an engine of `workerCount` workers.
    @inlinable
    public func raw(workerCount: UInt32) -> UInt32 {
        switch self {
        case .worker(let w): return w.rawValue >= 0 && w.rawValue < Int(workerCount) ? UInt32(w.rawValue) : UInt32.max - 2
        case .key(let k): return sp_key_worker(k, workerCount)
        case .spread: return SP_DEST_SPREAD
        }
    }
}
