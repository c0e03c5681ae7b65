import Spindle
import SpindleRESP

/// One client connection, on the worker that accepted it: its partial input, its parser, the
/// replies it is owed in order (a queue of slots, some waiting for another worker), and its output.
final class Session {
    let connection: Connection
    /// Distinguishes this session from a later one with a recycled connection id.
    let serial: UInt64
    /// The lane index of its listener (its hops travel on the same lane).
    let lane: Int
    var parser: RESPParser

    /// Bytes of an unfinished frame (or unprocessed while parked), from `inputStart`. Empty on the
    /// fast path: frames are parsed in place from the engine's receive buffer.
    var input: [UInt8] = []
    var inputStart = 0
    /// Replies ready to send, from `outStart`; handed to the engine in ≤ 64 KiB calls.
    var out: [UInt8] = []
    var outStart = 0
    /// Bytes handed to `ctx.send` whose `sent` event has not come back.
    var inEngine = 0

    /// Replies owed, in command order, from `head`. Empty on the fast path (a reply computed on
    /// this worker with nothing before it goes straight to `out`).
    var slots: [Slot] = []
    var head = 0
    /// Replies computed here that wait behind others (`Slot.ready`, local parts of a split command).
    var deferred: [UInt8] = []
    var parts: [Part] = []
    /// MGET split across owners: for each key in order, the index of the part that holds its value.
    var aux: [Int32] = []
    /// The hop being filled for each owner during this read.
    var building: [Hop?]

    /// Waiting for room (pipeline depth or hop capacity) with input kept in `input`.
    var parked = false
    /// In the shard's list of sessions waiting for send chunks.
    var waitingForChunks = false
    /// Close once every owed reply is out (after QUIT or a protocol error).
    var closeAfterFlush = false
    /// `ctx.close` was called or the engine reported the connection closed.
    var closing = false

    init(connection: Connection, serial: UInt64, lane: Int, workers: Int, limits: RESPLimits) {
        self.connection = connection
        self.serial = serial
        self.lane = lane
        self.parser = RESPParser(limits: limits)
        self.building = Array(repeating: nil, count: workers)
    }

    var owed: Int { slots.count - head }
    var hasInput: Bool { inputStart < input.count }
}

/// A reply owed to a session.
struct Slot {
    enum Kind: UInt8 {
        /// Computed: `deferred[a..<b]`.
        case ready
        /// Command `a` of `hop`.
        case remote
        /// A command split across owners: `parts[a..<b]`, assembled by `op`; MGET's order in `aux[c..<d]`.
        case multi
    }
    var kind: Kind
    var op: Op
    var hop: Hop?
    var a: Int
    var b: Int
    var c: Int = 0
    var d: Int = 0
}

/// One owner's share of a split command: `deferred[a..<b]` when computed here, else command `a` of `hop`.
struct Part {
    var hop: Hop?
    var a: Int
    var b: Int
}
