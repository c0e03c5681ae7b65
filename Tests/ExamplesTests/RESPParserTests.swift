import Testing

@testable import SpindleRESP

/// Feeds a parser the way the server does: bytes arrive in pieces; whole frames are taken from the
/// start of what is held, the unconsumed tail is kept (copied) and passed again, longer, with the
/// next piece. Returns the commands (each a list of arguments) and the error, if any.
func parse(_ pieces: [[UInt8]], limits: RESPLimits = RESPLimits()) -> (commands: [[[UInt8]]], error: RESPError?) {
    var parser = RESPParser(limits: limits)
    var held: [UInt8] = []
    var commands: [[[UInt8]]] = []
    for piece in pieces {
        held += piece
        var offset = 0
        loop: while true {
            let outcome = held.withUnsafeBytes { all -> RESPParser.Outcome in
                let rest = UnsafeRawBufferPointer(rebasing: all[offset...])
                let o = parser.next(rest)
                if case .command = o, !parser.arguments.isEmpty {
                    commands.append(parser.arguments.map { Array(rest[$0.offset..<($0.offset + $0.count)]) })
                }
                return o
            }
            switch outcome {
            case .command(let n): offset += n
            case .needMore: break loop
            case .failure(let e): return (commands, e)
            }
        }
        held.removeFirst(offset)
    }
    return (commands, nil)
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func multibulk(_ args: [[UInt8]]) -> [UInt8] {
    var out = bytes("*\(args.count)\r\n")
    for a in args { out += bytes("$\(a.count)\r\n") + a + bytes("\r\n") }
    return out
}

@Suite struct RESPParserTests {
    /// A pipeline of every frame kind: multibulk with binary payloads (CR, LF, NUL inside a bulk),
    /// an empty bulk, inline commands (quoted, tabs, CRLF and bare LF), empty lines, `*0`, `*-1`.
    static let pipeline: [UInt8] = {
        var s: [UInt8] = []
        s += multibulk([bytes("SET"), bytes("key:1"), [0x0D, 0x0A, 0x00, 0xFF, 0x24, 0x2A]])
        s += bytes("PING\r\n")
        s += multibulk([bytes("GET"), bytes("key:1")])
        s += bytes("\r\n")  // an empty line: nothing to run
        s += bytes("SET \"a b\"\t'c d' e\n")
        s += bytes("*0\r\n*-1\r\n")
        s += multibulk([bytes("ECHO"), []])
        s += multibulk((0..<40).map { bytes("arg\($0)") })
        s += bytes("  ECHO   spaced  \r\n")
        return s
    }()

    static let expected: [[[UInt8]]] = [
        [bytes("SET"), bytes("key:1"), [0x0D, 0x0A, 0x00, 0xFF, 0x24, 0x2A]],
        [bytes("PING")],
        [bytes("GET"), bytes("key:1")],
        [bytes("SET"), bytes("a b"), bytes("c d"), bytes("e")],
        [bytes("ECHO"), []],
        (0..<40).map { bytes("arg\($0)") },
        [bytes("ECHO"), bytes("spaced")],
    ]

    @Test func parsesEveryFrameKindInOnePiece() {
        let r = parse([Self.pipeline])
        #expect(r.error == nil)
        #expect(r.commands == Self.expected)
    }

    /// The pipeline split at every byte boundary (two pieces), and fed one byte at a time, parses
    /// exactly as it does whole.
    @Test func splitAtEveryByteBoundaryParsesIdentically() {
        let p = Self.pipeline
        for k in 0...p.count {
            let r = parse([Array(p[..<k]), Array(p[k...])])
            #expect(r.error == nil, "split at \(k)")
            #expect(r.commands == Self.expected, "split at \(k)")
        }
        let single = parse(p.map { [$0] })
        #expect(single.error == nil)
        #expect(single.commands == Self.expected, "one byte at a time")
    }

    /// Three pieces at every pair of boundaries of a shorter pipeline.
    @Test func splitAtEveryPairOfBoundariesParsesIdentically() {
        let p = multibulk([bytes("SET"), bytes("k"), bytes("v\r\nv")]) + bytes("PING\r\n") + multibulk([bytes("GET"), bytes("k")])
        let want: [[[UInt8]]] = [[bytes("SET"), bytes("k"), bytes("v\r\nv")], [bytes("PING")], [bytes("GET"), bytes("k")]]
        for i in 0...p.count {
            for j in i...p.count {
                let r = parse([Array(p[..<i]), Array(p[i..<j]), Array(p[j...])])
                #expect(r.error == nil && r.commands == want, "split at \(i), \(j)")
            }
        }
    }

    /// Each malformed input is refused with its own error, whether whole or a byte at a time.
    @Test(arguments: [
        ("$3\r\nfoo\r\n", RESPError.badRequestByte(UInt8(ascii: "$"))),
        ("+PING\r\n", .badRequestByte(UInt8(ascii: "+"))),
        ("\u{01}\u{02}garbage", .badRequestByte(0x01)),
        ("*1\r\n+PING\r\n", .expectedBulk(got: UInt8(ascii: "+"))),
        ("*x\r\n", .invalidMultibulkLength),
        ("*1\n", .invalidMultibulkLength),
        ("*1\r\n$-5\r\n", .invalidBulkLength),
        ("*1\r\n$abc\r\n", .invalidBulkLength),
        ("*1\r\n$\r\n", .invalidBulkLength),
        ("*1\r\n$99999999999999999999\r\n", .invalidBulkLength),
        ("*1\r\n$3\r\nfooXY", .missingCRLF),
        ("*2000000\r\n", .tooManyArguments(2_000_000, limit: 1 << 20)),
        ("*1\r\n$600000000\r\n", .bulkTooLarge(600_000_000, limit: 512 << 20)),
        ("SET \"a b\r\n", .unbalancedQuotes),
        ("SET \"a\"b c\r\n", .unbalancedQuotes),
        ("SET a\u{00}b\r\n", .controlByteInInline(0)),
    ])
    func malformedInputIsRefused(input: String, error: RESPError) {
        let b = bytes(input)
        #expect(parse([b]).error == error)
        #expect(parse(b.map { [$0] }).error == error, "a byte at a time")
    }

    /// An unterminated header or inline line is refused once it passes the inline limit, not
    /// buffered without end.
    @Test func unterminatedLinesAreBounded() {
        let limits = RESPLimits(maxInlineLength: 1024)
        #expect(parse([bytes("*") + [UInt8](repeating: 0x31, count: 2000)], limits: limits).error == .multibulkHeaderTooLong)
        #expect(parse([bytes("*1\r\n$") + [UInt8](repeating: 0x31, count: 2000)], limits: limits).error == .bulkHeaderTooLong)
        #expect(parse([[UInt8](repeating: 0x41, count: 2000)], limits: limits).error == .inlineTooLong)
        #expect(parse([[UInt8](repeating: 0x41, count: 1000)], limits: limits).error == nil, "under the limit: waits for more")
        #expect(parse([bytes("*1\r\n$5\r\nab")], limits: RESPLimits(maxBulkLength: 4)).error == .bulkTooLarge(5, limit: 4))
        // A line's end found past the limit fails as its absence does (a fuzz finding: whole, this
        // was "invalid multibulk length"; split before the end, "too big mbulk count string").
        for line in [bytes("*") + [UInt8](repeating: 0xFF, count: 1100) + bytes("\r\n"),
                     bytes("*1\r\n$") + [UInt8](repeating: 0x31, count: 1100) + bytes("\r\n"),
                     [UInt8](repeating: 0x41, count: 1100) + bytes("\r\n")] {
            let whole = parse([line], limits: limits).error
            #expect(whole != nil)
            for cut in [1, 500, 1025, 1026, 1027, 1100, line.count - 1] {
                #expect(parse([Array(line[..<cut]), Array(line[cut...])], limits: limits).error == whole, "cut at \(cut)")
            }
        }
        // At the limit exactly: accepted whole and split at every point.
        let atLimit = [UInt8](repeating: 0x41, count: 1024) + bytes("\r\n")
        for cut in 0...atLimit.count {
            let r = parse([Array(atLimit[..<cut]), Array(atLimit[cut...])], limits: limits)
            #expect(r.error == nil && r.commands.count == 1, "cut at \(cut)")
        }
        #expect(parse([bytes("*3\r\n")], limits: RESPLimits(maxArguments: 2)).error == .tooManyArguments(3, limit: 2))
    }

    /// A large bulk announces its size before its bytes arrive (the server refuses one over its
    /// input bound at once, and sizes its buffer once for one under it).
    @Test func bytesNeededIsKnownAfterTheBulkHeader() {
        var parser = RESPParser()
        let head = bytes("*2\r\n$3\r\nSET\r\n$100000\r\nab")
        let o = head.withUnsafeBytes { parser.next($0) }
        #expect(o == .needMore)
        #expect(parser.bytesNeeded == head.count - 2 + 100_000 + 2)
    }

    @Test func integersParseAsRedisDoes() {
        func p(_ s: String) -> Int? { bytes(s).withUnsafeBytes { RESPParser.parseInteger($0) } }
        #expect(p("0") == 0)
        #expect(p("-12") == -12)
        #expect(p("9223372036854775807") == Int.max)
        #expect(p("-9223372036854775808") == Int.min)
        #expect(p("9223372036854775808") == nil)
        #expect(p("") == nil)
        #expect(p("-") == nil)
        #expect(p("+1") == nil)
        #expect(p("01") == nil)
        #expect(p(" 1") == nil)
        #expect(p("1a") == nil)
    }

    @Test func repliesAreWrittenAndMeasured() {
        var out: [UInt8] = []
        out.appendRESPSimple("OK")
        out.appendRESPInteger(Int.min)
        out.appendRESPInteger(0)
        out.appendRESPNull()
        bytes("a\r\nb").withUnsafeBytes { out.appendRESPBulk($0) }
        out.appendRESPArrayHeader(2)
        out.appendRESPInteger(-7)
        out.appendRESPError("ERR two\r\nlines")
        #expect(String(decoding: out, as: UTF8.self)
            == "+OK\r\n:-9223372036854775808\r\n:0\r\n$-1\r\n$4\r\na\r\nb\r\n*2\r\n:-7\r\n-ERR two  lines\r\n")
        out.withUnsafeBytes { b in
            var p = 0
            var lengths: [Int] = []
            while let l = RESPReply.length(b, from: p) {
                lengths.append(l)
                p += l
            }
            #expect(lengths == [5, 23, 4, 5, 10, 26])
            #expect(p == b.count)
            #expect(RESPReply.integer(b, from: 5) == Int.min)
        }
    }
}
