import Spindle
import SpindleRESP

/// What travels on the engine's worker→worker rings: a retained `Hop`, as a bit pattern (inline,
/// 8 bytes; the ring's release/acquire hands the object's contents from one worker to the other).
struct HopMessage: InlineEvent {
    var bits: UInt
}

/// A batch of commands from one connection to the worker that owns their keys, and then their
/// replies back: one post each way per (connection, owner, read) however deep the pipeline.
///
/// The origin worker fills `request`, posts it; the owner runs the commands against its store,
/// writes `reply` (and `replyEnds`), posts it back; the origin copies each reply into its
/// connection's output in order and recycles the hop once no reply slot refers to it. Only one
/// worker touches a hop at a time.
final class Hop {
    /// Encoded commands: per command `op` (1 byte), argument count (4), then per argument its
    /// length (4) and bytes. Lengths little-endian.
    var request: [UInt8] = []
    var count = 0
    var reply: [UInt8] = []
    var replyEnds: [Int] = []
    /// The reply arrived (set on the origin).
    var done = false
    /// Reply slots of the origin's connection that still refer to this hop.
    var refs = 0
    var connection: Connection?
    var serial: UInt64 = 0
    var origin = 0
    var owner = 0
    var lane = 0

    func prepare(connection: Connection, serial: UInt64, origin: Int, owner: Int, lane: Int) {
        self.connection = connection
        self.serial = serial
        self.origin = origin
        self.owner = owner
        self.lane = lane
        done = false
        refs = 0
        count = 0
    }

    /// Empties the hop for reuse; buffers that grew large are given back.
    func recycle() {
        if request.capacity > 256 << 10 { request = [] } else { request.removeAll(keepingCapacity: true) }
        if reply.capacity > 256 << 10 { reply = [] } else { reply.removeAll(keepingCapacity: true) }
        if replyEnds.capacity > 4096 { replyEnds = [] } else { replyEnds.removeAll(keepingCapacity: true) }
        connection = nil
        count = 0
        refs = 0
        done = false
    }

    @inline(__always)
    private func append32(_ v: Int) {
        let x = UInt32(truncatingIfNeeded: v)
        request.append(UInt8(truncatingIfNeeded: x))
        request.append(UInt8(truncatingIfNeeded: x >> 8))
        request.append(UInt8(truncatingIfNeeded: x >> 16))
        request.append(UInt8(truncatingIfNeeded: x >> 24))
    }

    /// Adds a command with the arguments `args[range]`; returns its index in the hop.
    func add(_ op: Op, _ args: Args, _ range: Range<Int>) -> Int {
        request.append(op.rawValue)
        append32(range.count)
        for i in range {
            let a = args[i]
            append32(a.count)
            request.append(contentsOf: a)
        }
        count += 1
        return count - 1
    }

    /// Adds a command with the arguments of `args` at `indices` (a split command's part).
    func add(_ op: Op, _ args: Args, _ indices: [Int]) -> Int {
        request.append(op.rawValue)
        append32(indices.count)
        for k in 0..<indices.count {
            let a = args[indices[k]]
            append32(a.count)
            request.append(contentsOf: a)
        }
        count += 1
        return count - 1
    }

    /// Runs the commands (on the owner) through `shard`, each reply appended to `reply` and its end
    /// to `replyEnds`. No closure captures a variable (no box, even unoptimised).
    func runCommands(on shard: Shard) {
        reply.removeAll(keepingCapacity: true)
        replyEnds.removeAll(keepingCapacity: true)
        request.withUnsafeBytes { req in
            var p = 0
            for _ in 0..<count {
                let op = Op(rawValue: req[p]) ?? .unknown
                let argc = Int(req[p + 1]) | Int(req[p + 2]) << 8 | Int(req[p + 3]) << 16 | Int(req[p + 4]) << 24
                p += 5
                shard.scratch.removeAll(keepingCapacity: true)
                for _ in 0..<argc {
                    let n = Int(req[p]) | Int(req[p + 1]) << 8 | Int(req[p + 2]) << 16 | Int(req[p + 3]) << 24
                    shard.scratch.append(RESPArgument(offset: p + 4, count: n))
                    p += 4 + n
                }
                shard.scratch.withUnsafeBufferPointer { list in
                    shard.run(op, Args(base: req.baseAddress!, list: list), into: &self.reply)
                }
                replyEnds.append(reply.count)
            }
        }
    }

    /// The byte range of command `i`'s reply.
    func replyRange(_ i: Int) -> Range<Int> { (i == 0 ? 0 : replyEnds[i - 1])..<replyEnds[i] }

    /// Answers every command with `error` (a post that could not be made).
    func fail(_ error: StaticString) {
        reply.removeAll(keepingCapacity: true)
        replyEnds.removeAll(keepingCapacity: true)
        for _ in 0..<count {
            reply.appendRESPError(error)
            replyEnds.append(reply.count)
        }
        done = true
    }
}
