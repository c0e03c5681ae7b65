import SpindleRESP

/// The commands the server knows. Raw values travel in hop messages between workers.
enum Op: UInt8 {
    case ping, echo, get, set, del, exists, incr, mget, mset, dbsize, flushall, info, quit, command, config, unknown

    /// The command named by `name` (ASCII, any case), without allocating.
    static func lookup(_ name: UnsafeRawBufferPointer) -> Op {
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == name.count else { return false }
            let p = s.utf8Start
            for i in 0..<name.count where name[i] & 0xDF != p[i] & 0xDF { return false }  // ASCII letters: case-insensitive
            return true
        }
        switch name.count {
        case 3: return eq("GET") ? .get : eq("SET") ? .set : eq("DEL") ? .del : .unknown
        case 4:
            return eq("PING") ? .ping : eq("ECHO") ? .echo : eq("INCR") ? .incr : eq("MGET") ? .mget
                : eq("MSET") ? .mset : eq("INFO") ? .info : eq("QUIT") ? .quit : .unknown
        case 6: return eq("EXISTS") ? .exists : eq("DBSIZE") ? .dbsize : eq("CONFIG") ? .config : .unknown
        case 7: return eq("COMMAND") ? .command : .unknown
        case 8: return eq("FLUSHALL") ? .flushall : .unknown
        default: return .unknown
        }
    }

    /// The lower-case name, for error replies.
    var name: String {
        switch self {
        case .ping: "ping"
        case .echo: "echo"
        case .get: "get"
        case .set: "set"
        case .del: "del"
        case .exists: "exists"
        case .incr: "incr"
        case .mget: "mget"
        case .mset: "mset"
        case .dbsize: "dbsize"
        case .flushall: "flushall"
        case .info: "info"
        case .quit: "quit"
        case .command: "command"
        case .config: "config"
        case .unknown: "unknown"
        }
    }
}

/// A command's arguments after its name: borrowed bytes (a frame in a receive buffer or a
/// connection's buffer, or a hop's request), never copied.
struct Args {
    let base: UnsafeRawPointer
    let list: UnsafeBufferPointer<RESPArgument>

    var count: Int { list.count }

    @inline(__always)
    subscript(i: Int) -> UnsafeRawBufferPointer {
        let a = list[i]
        return UnsafeRawBufferPointer(start: base + a.offset, count: a.count)
    }

    /// True when argument `i` equals `word` (ASCII, any case).
    @inline(__always)
    func `is`(_ i: Int, _ word: StaticString) -> Bool {
        let b = self[i]
        guard b.count == word.utf8CodeUnitCount else { return false }
        let p = word.utf8Start
        for k in 0..<b.count where b[k] & 0xDF != p[k] & 0xDF { return false }
        return true
    }
}

/// The options of `SET key value [EX s | PX ms] [NX | XX] [KEEPTTL]`, checked where the command
/// arrives (so an owner only ever runs valid ones).
struct SetOptions {
    var ttlNanoseconds: UInt64 = 0
    var onlyIfMissing = false
    var onlyIfPresent = false
    var keepTTL = false

    /// Parses `args[2...]`; the error reply text on failure.
    static func parse(_ args: Args) -> Result<SetOptions, SetError> {
        var o = SetOptions()
        var i = 2
        var haveTTL = false
        while i < args.count {
            if args.is(i, "EX") || args.is(i, "PX") {
                let seconds = args.is(i, "EX")
                guard !haveTTL, !o.keepTTL, i + 1 < args.count else { return .failure(.syntax) }
                let a = args[i + 1]
                guard let n = RESPParser.parseInteger(a), n > 0 else { return .failure(.expireTime) }
                let (ns, over) = UInt64(n).multipliedReportingOverflow(by: seconds ? 1_000_000_000 : 1_000_000)
                guard !over, ns < UInt64(Int64.max) / 2 else { return .failure(.expireTime) }
                o.ttlNanoseconds = ns
                haveTTL = true
                i += 2
            } else if args.is(i, "NX") && !o.onlyIfPresent {
                o.onlyIfMissing = true
                i += 1
            } else if args.is(i, "XX") && !o.onlyIfMissing {
                o.onlyIfPresent = true
                i += 1
            } else if args.is(i, "KEEPTTL") && !haveTTL {
                o.keepTTL = true
                i += 1
            } else {
                return .failure(.syntax)
            }
        }
        return .success(o)
    }

    enum SetError: Error {
        case syntax, expireTime
    }
}
