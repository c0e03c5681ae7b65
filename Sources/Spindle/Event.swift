/// Anything a handler can receive. A type that also adopts ``InlineEvent`` travels inline in the
/// ring's 64-byte slot; any other event is boxed (one allocation per post, released exactly once).
public protocol Event: Sendable {}

/// An event copied by value into the ring slot: no allocation, no reference counting.
///
/// Registration refuses a type larger than 48 bytes or aligned over 16
/// (``SpindleError/Code/eventTooLarge``), so inline storage is never lost silently.
///
/// ```swift
/// struct Quote: InlineEvent { var symbol: UInt32; var bid: Double; var ask: Double }
/// ```
public protocol InlineEvent: Event, BitwiseCopyable {}

/// The token ``Engine/Builder/register(_:handler:)-3lxt3`` returns for an event type: posts name it, so
/// the hot path does no cast and no lookup, and an event with no handler cannot be posted.
@frozen
public struct EventKind<E: Event>: Sendable, Hashable {
    /// The handler's index in the engine's table.
    public let index: UInt32
    /// Whether `E` travels inline (else boxed).
    public let isInline: Bool
    /// Identifies the builder that made the token; posting it to another engine is refused.
    @usableFromInline let builderID: UInt64

    @usableFromInline
    init(index: UInt32, isInline: Bool, builderID: UInt64) {
        self.index = index
        self.isInline = isInline
        self.builderID = builderID
    }
}

/// What an accepted post did. Errors (rejections) are thrown as ``PostError`` instead.
@frozen
public enum PostResult: Sendable, Hashable {
    /// The event is in a ring and will be handled (or reported at shutdown).
    case enqueued
    /// The lane is full and its policy is `drop`: the event (the newest) was discarded and counted.
    case dropped
}

/// Per-worker state: one `State` per worker, built on that worker's thread (so its memory is on
/// the worker's NUMA node) and handed to handlers `inout` — no lock, no retain. Like Seastar's
/// `sharded<T>`. Obtain one with ``Engine/Builder/coreLocal(_:)``.
@frozen
public struct CoreLocal<State>: Sendable {
    /// Index in each worker's state table.
    @usableFromInline let index: Int
    @usableFromInline init(index: Int) { self.index = index }
}

/// Boxed events travel as a retained pointer to one of these.
@usableFromInline
final class EventBox<E: Event> {
    @usableFromInline let value: E
    @usableFromInline init(_ value: E) { self.value = value }
}
