// The request side of RESP2 (the Redis protocol), as a server reads it: multibulk frames
// (`*<n>\r\n` then n × `$<len>\r\n<bytes>\r\n`) and inline commands (`PING\r\n`). Pure Swift, no
// engine dependency, no allocation per frame: arguments are (offset, count) pairs into the caller's
// bytes, and a frame that spans reads is resumed where it stopped (never re-scanned).

/// What a server accepts from one connection. Every input a client controls is bounded by one of
/// these, so a malformed or hostile frame costs at most these many bytes before it is refused.
public struct RESPLimits: Sendable, Hashable {
    /// Longest bulk string (an argument), in bytes. Redis's `proto-max-bulk-len` default: 512 MiB.
    public var maxBulkLength: Int
    /// Most arguments in one multibulk frame. Redis's limit: 1,048,576.
    public var maxArguments: Int
    /// Longest inline command, and longest `*<n>` / `$<len>` header line, in bytes (Redis: 64 KiB).
    public var maxInlineLength: Int

    /// The defaults (Redis's own limits).
    public init(maxBulkLength: Int = 512 << 20, maxArguments: Int = 1 << 20, maxInlineLength: Int = 64 << 10) {
        self.maxBulkLength = max(0, maxBulkLength)
        self.maxArguments = max(1, maxArguments)
        self.maxInlineLength = max(16, maxInlineLength)
    }
}

/// Why a request was refused. ``description`` is the text of the `-ERR` reply, after which the
/// server closes the connection (the stream cannot be resynchronised).
public enum RESPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first byte of a request is neither `*` nor the start of an inline command (a reply type
    /// byte such as `$`, `+`, `-`, `:`, or a control byte: binary data).
    case badRequestByte(UInt8)
    /// An element of a multibulk frame does not start with `$`.
    case expectedBulk(got: UInt8)
    /// `*<n>` is not a decimal integer (or not followed by `\r\n`).
    case invalidMultibulkLength
    /// `$<len>` is not a decimal integer ≥ 0 (or not followed by `\r\n`).
    case invalidBulkLength
    /// More arguments than ``RESPLimits/maxArguments``.
    case tooManyArguments(Int, limit: Int)
    /// A bulk string longer than ``RESPLimits/maxBulkLength``.
    case bulkTooLarge(Int, limit: Int)
    /// A bulk string's bytes are not followed by `\r\n`.
    case missingCRLF
    /// A `*<n>` header line longer than ``RESPLimits/maxInlineLength`` without its end.
    case multibulkHeaderTooLong
    /// A `$<len>` header line longer than ``RESPLimits/maxInlineLength`` without its end.
    case bulkHeaderTooLong
    /// An inline command longer than ``RESPLimits/maxInlineLength``.
    case inlineTooLong
    /// An inline command with a control byte in it (binary data), other than tab and `\r`.
    case controlByteInInline(UInt8)
    /// An inline argument opened with a quote that is not closed (or closed inside a word).
    case unbalancedQuotes

    /// The reply text, without `-ERR ` (starts with "Protocol error: ").
    public var description: String {
        switch self {
        case .badRequestByte(let b): return "Protocol error: unexpected byte \(Self.show(b)) at the start of a request"
        case .expectedBulk(let b): return "Protocol error: expected '$', got \(Self.show(b))"
        case .invalidMultibulkLength: return "Protocol error: invalid multibulk length"
        case .invalidBulkLength: return "Protocol error: invalid bulk length"
        case .tooManyArguments(let n, let limit): return "Protocol error: \(n) arguments, over the limit of \(limit)"
        case .bulkTooLarge(let n, let limit): return "Protocol error: bulk length \(n) over the limit of \(limit) bytes"
        case .missingCRLF: return "Protocol error: a bulk string is not followed by CRLF"
        case .multibulkHeaderTooLong: return "Protocol error: too big mbulk count string"
        case .bulkHeaderTooLong: return "Protocol error: too big bulk count string"
        case .inlineTooLong: return "Protocol error: too big inline request"
        case .controlByteInInline(let b): return "Protocol error: control byte \(Self.show(b)) in an inline request"
        case .unbalancedQuotes: return "Protocol error: unbalanced quotes in request"
        }
    }

    /// A byte as `'c'` when printable, else `0xNN`.
    static func show(_ b: UInt8) -> String {
        if b >= 0x21 && b <= 0x7E { return "'\(Character(Unicode.Scalar(b)))'" }
        let hex = "0123456789abcdef"
        let hi = hex[hex.index(hex.startIndex, offsetBy: Int(b >> 4))]
        let lo = hex[hex.index(hex.startIndex, offsetBy: Int(b & 0xF))]
        return "0x\(hi)\(lo)"
    }
}

/// One argument of a parsed command: `count` bytes at `offset` from the start of its frame.
@frozen
public struct RESPArgument: Sendable, Hashable {
    /// Offset from the first byte of the frame.
    public var offset: Int
    /// Length in bytes.
    public var count: Int
    /// An argument.
    @inlinable public init(offset: Int, count: Int) {
        self.offset = offset
        self.count = count
    }
}

/// An incremental RESP2 request parser for one connection.
///
/// Hand it the unconsumed bytes of the connection, starting at the first byte of the current
/// frame: ``next(_:)`` returns a command (its ``arguments`` are offsets into those bytes, valid
/// until the next call), asks for more bytes (pass the same bytes again, longer: it resumes where it
/// stopped, so a frame that arrives a byte at a time costs O(frame), and the bytes may have moved,
/// e.g. into a connection buffer), or refuses the stream with a ``RESPError``.
///
/// ```swift
/// var parser = RESPParser()
/// var offset = 0
/// loop: while true {
///     switch parser.next(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
///     case .command(let consumed): run(parser.arguments); offset += consumed
///     case .needMore: break loop         // keep bytes[offset...] and call again with more
///     case .failure(let error): reply("-ERR \(error)"); close()
///     }
/// }
/// ```
public struct RESPParser: Sendable {
    /// What ``next(_:)`` found.
    public enum Outcome: Sendable, Hashable {
        /// A whole frame of `consumed` bytes; ``RESPParser/arguments`` holds its arguments (empty
        /// for an empty line or `*0` / `*-1`: nothing to run).
        case command(consumed: Int)
        /// The frame is not complete yet.
        case needMore
        /// The stream is malformed; the parser stays failed.
        case failure(RESPError)
    }

    /// The limits it enforces.
    public let limits: RESPLimits
    /// The arguments of the last command returned, as offsets into the bytes passed to ``next(_:)``.
    public private(set) var arguments: [RESPArgument] = []

    // Resumption state, all relative to the first byte of the current frame.
    @usableFromInline var expected = 0  // arguments of the multibulk frame in progress; 0: none
    @usableFromInline var position = 0  // the next byte to parse
    @usableFromInline var bulkLength = -1  // ≥ 0: the payload of this length starts at `position`
    @usableFromInline var scanned = 0  // bytes before this were searched for '\n' already
    @usableFromInline var failed: RESPError?
    @usableFromInline var returned = false  // `arguments` belong to a frame already returned

    /// A parser with `limits`.
    public init(limits: RESPLimits = RESPLimits()) { self.limits = limits }

    /// True between frames (no partial frame is held).
    public var isAtFrameStart: Bool { expected == 0 && position == 0 && scanned == 0 }

    /// Bytes of the current frame known to be needed in all (its bulk payload's end), or nil while
    /// a header line is still being read. Lets a caller size its buffer once for a large value.
    public var bytesNeeded: Int? { bulkLength >= 0 ? position + bulkLength + 2 : nil }

    /// Parses the next frame of `bytes` (which start at the current frame's first byte).
    public mutating func next(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        if let failed { return .failure(failed) }
        if returned {
            arguments.removeAll(keepingCapacity: true)
            returned = false
        }
        let outcome: Outcome
        if expected == 0 {
            if bytes.isEmpty { return .needMore }
            let first = bytes[0]
            if first == UInt8(ascii: "*") {
                outcome = header(bytes)
            } else {
                outcome = inline(bytes)
            }
        } else {
            outcome = elements(bytes)
        }
        switch outcome {
        case .command:
            expected = 0
            position = 0
            bulkLength = -1
            scanned = 0
            returned = true
        case .failure(let e): failed = e
        case .needMore: break
        }
        return outcome
    }

    /// Index of the next '\n' at or after `from`, searching only bytes not searched before.
    @inline(__always)
    mutating func findNewline(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var i = max(from, scanned)
        let n = bytes.count
        while i < n {
            if bytes[i] == 0x0A { return i }
            i &+= 1
        }
        scanned = n
        return nil
    }

    /// A decimal integer in bytes[start..<end]: optional '-', 1...18 digits (no '+', no spaces).
    @inline(__always)
    static func integer(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
        var i = start
        var negative = false
        if i < end && bytes[i] == UInt8(ascii: "-") {
            negative = true
            i &+= 1
        }
        guard i < end, end - i <= 18 else { return nil }
        var v = 0
        while i < end {
            let d = bytes[i] &- 0x30
            guard d <= 9 else { return nil }
            v = v &* 10 &+ Int(d)
            i &+= 1
        }
        return negative ? -v : v
    }

    mutating func header(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        // A line may hold maxInlineLength bytes before its "\r\n"; the same rule whether its end
        // has arrived or not, so a stream split anywhere fails the same way it fails whole.
        guard let nl = findNewline(bytes, from: 1) else {
            return bytes.count > limits.maxInlineLength + 1 ? .failure(.multibulkHeaderTooLong) : .needMore
        }
        if nl > limits.maxInlineLength + 1 { return .failure(.multibulkHeaderTooLong) }
        guard nl >= 2, bytes[nl - 1] == 0x0D, let n = Self.integer(bytes, 1, nl - 1) else {
            return .failure(.invalidMultibulkLength)
        }
        position = nl + 1
        scanned = position
        if n <= 0 { return .command(consumed: position) }  // `*0`, `*-1`: nothing to run
        if n > limits.maxArguments { return .failure(.tooManyArguments(n, limit: limits.maxArguments)) }
        expected = n
        return elements(bytes)
    }

    mutating func elements(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        while arguments.count < expected {
            if bulkLength < 0 {
                guard position < bytes.count else { return .needMore }
                let b = bytes[position]
                guard b == UInt8(ascii: "$") else { return .failure(.expectedBulk(got: b)) }
                guard let nl = findNewline(bytes, from: position + 1) else {
                    return bytes.count - position > limits.maxInlineLength + 1 ? .failure(.bulkHeaderTooLong) : .needMore
                }
                if nl - position > limits.maxInlineLength + 1 { return .failure(.bulkHeaderTooLong) }
                guard nl >= position + 2, bytes[nl - 1] == 0x0D, let len = Self.integer(bytes, position + 1, nl - 1),
                    len >= 0
                else { return .failure(.invalidBulkLength) }
                if len > limits.maxBulkLength { return .failure(.bulkTooLarge(len, limit: limits.maxBulkLength)) }
                bulkLength = len
                position = nl + 1
            }
            let end = position + bulkLength
            guard bytes.count >= end + 2 else {
                scanned = max(scanned, min(bytes.count, end))  // the payload is never searched for '\n'
                return .needMore
            }
            guard bytes[end] == 0x0D, bytes[end + 1] == 0x0A else { return .failure(.missingCRLF) }
            arguments.append(RESPArgument(offset: position, count: bulkLength))
            position = end + 2
            scanned = position
            bulkLength = -1
        }
        return .command(consumed: position)
    }

    mutating func inline(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        let first = bytes[0]
        // `*` starts a multibulk frame; a reply type byte or a control byte here is a client
        // speaking the protocol wrong (or binary garbage), not a command.
        switch first {
        case UInt8(ascii: "$"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"):
            return .failure(.badRequestByte(first))
        case 0x09, 0x0A, 0x0D, 0x20...0x7E, 0x80...0xFF: break
        default: return .failure(.badRequestByte(first))
        }
        guard let nl = findNewline(bytes, from: 0) else {
            return bytes.count > limits.maxInlineLength + 1 ? .failure(.inlineTooLong) : .needMore
        }
        if nl > limits.maxInlineLength + 1 { return .failure(.inlineTooLong) }
        var end = nl
        if end > 0 && bytes[end - 1] == 0x0D { end -= 1 }
        var i = 0
        while i < end {
            let b = bytes[i]
            if b == 0x20 || b == 0x09 {
                i += 1
                continue
            }
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                // A quoted argument (no escapes): up to the same quote, which must end the word.
                var j = i + 1
                while j < end && bytes[j] != b { j += 1 }
                guard j < end, j + 1 == end || bytes[j + 1] == 0x20 || bytes[j + 1] == 0x09 else {
                    return .failure(.unbalancedQuotes)
                }
                for k in (i + 1)..<j where bytes[k] < 0x20 && bytes[k] != 0x09 || bytes[k] == 0x7F {
                    return .failure(.controlByteInInline(bytes[k]))
                }
                guard arguments.count < limits.maxArguments else {
                    return .failure(.tooManyArguments(arguments.count + 1, limit: limits.maxArguments))
                }
                arguments.append(RESPArgument(offset: i + 1, count: j - i - 1))
                i = j + 1
                continue
            }
            var j = i
            while j < end {
                let c = bytes[j]
                if c == 0x20 || c == 0x09 { break }
                if c < 0x20 || c == 0x7F { return .failure(.controlByteInInline(c)) }
                j += 1
            }
            guard arguments.count < limits.maxArguments else {
                return .failure(.tooManyArguments(arguments.count + 1, limit: limits.maxArguments))
            }
            arguments.append(RESPArgument(offset: i, count: j - i))
            i = j
        }
        return .command(consumed: nl + 1)
    }
}

extension RESPParser {
    /// A decimal integer argument as Redis reads one (`string2ll`): optional '-', digits only,
    /// within Int64; nil otherwise.
    public static func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        var negative = false
        if bytes.count > 0 && bytes[0] == UInt8(ascii: "-") {
            negative = true
            i = 1
        }
        guard i < bytes.count, bytes.count - i <= 19 else { return nil }
        if bytes.count - i > 1 && bytes[i] == UInt8(ascii: "0") { return nil }  // no leading zeros
        var v: UInt64 = 0
        while i < bytes.count {
            let d = bytes[i] &- 0x30
            guard d <= 9 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            v = s
            i += 1
        }
        if negative {
            guard v <= UInt64(Int64.max) + 1 else { return nil }
            return v == UInt64(Int64.max) + 1 ? Int.min : -Int(v)
        }
        guard v <= UInt64(Int64.max) else { return nil }
        return Int(v)
    }
}
