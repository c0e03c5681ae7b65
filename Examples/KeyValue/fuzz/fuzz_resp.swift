// libFuzzer entry for the RESP request parser (Examples/KeyValue/RESP), built by
// scripts/fuzz-resp.sh with `swiftc -sanitize=fuzzer,address` together with the parser's sources.
//
// Properties checked on every input (a failure traps, which libFuzzer reports as a crash):
// 1. The parser never reads outside the bytes it is given (AddressSanitizer) and never traps.
// 2. Every argument it returns lies inside its frame, and a frame's length is > 0.
// 3. Splitting the input in two at a point taken from the input, and feeding it the way the server
//    does (unconsumed tail kept and passed again, longer), gives the same commands and the same
//    error as feeding it whole.
// 4. Error texts name the protocol; the integer and reply readers never trap on any bytes.
// 5. Nothing is held without bound: while the parser waits for more bytes, the unfinished frame and
//    the end it announces stay within what the limits allow (arguments × (bulk + header)); an
//    unterminated line is refused at the inline limit.

let limits = RESPLimits(maxBulkLength: 4096, maxArguments: 64, maxInlineLength: 256)

/// The longest frame the limits allow: every argument at the bulk limit with a header line each.
let frameBound = (limits.maxArguments + 1) * (limits.maxBulkLength + limits.maxInlineLength + 4)

struct Run: Equatable {
    var commands: [[[UInt8]]] = []
    var error: RESPError?
}

func feed(_ pieces: [UnsafeRawBufferPointer]) -> Run {
    var parser = RESPParser(limits: limits)
    var held: [UInt8] = []
    var run = Run()
    for piece in pieces {
        held.append(contentsOf: piece)
        var offset = 0
        loop: while true {
            let outcome = held.withUnsafeBytes { all -> RESPParser.Outcome in
                let rest = UnsafeRawBufferPointer(rebasing: all[offset...])
                let o = parser.next(rest)
                if case .command(let n) = o {
                    precondition(n > 0 && n <= rest.count, "frame length \(n) of \(rest.count)")
                    for a in parser.arguments {
                        precondition(a.offset >= 0 && a.count >= 0 && a.offset + a.count <= n, "argument outside its frame")
                    }
                    for a in parser.arguments {  // the integer reader runs on client bytes too (EX, INCR)
                        _ = RESPParser.parseInteger(UnsafeRawBufferPointer(rebasing: rest[a.offset..<(a.offset + a.count)]))
                    }
                    if !parser.arguments.isEmpty {
                        run.commands.append(parser.arguments.map { Array(rest[$0.offset..<($0.offset + $0.count)]) })
                    }
                }
                return o
            }
            switch outcome {
            case .command(let n): offset += n
            case .needMore:
                let waiting = held.count - offset
                precondition(waiting <= frameBound, "holds \(waiting) bytes, past any frame the limits allow")
                precondition((parser.bytesNeeded ?? 0) <= frameBound, "expects a frame past the limits")
                break loop
            case .failure(let e):
                precondition(e.description.hasPrefix("Protocol error: "), "an error reply names the protocol")
                run.error = e
                return run
            }
        }
        held.removeFirst(offset)
    }
    return run
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let whole = feed([all])
    let cut = size > 0 ? Int(data[0]) * size / 256 : 0
    let split = feed([UnsafeRawBufferPointer(rebasing: all[..<cut]), UnsafeRawBufferPointer(rebasing: all[cut...])])
    precondition(whole == split, "split at \(cut) parsed differently")
    // The reply reader (used on replies the server wrote) must not trap on any bytes either.
    var p = 0
    while p < size, let n = RESPReply.length(all, from: p) {
        precondition(n > 0 && p + n <= size, "reply length outside the bytes")
        p += n
    }
    return 0
}
