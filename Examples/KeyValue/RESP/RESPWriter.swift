// The reply side of RESP2, appended into a byte array the caller reuses (`removeAll(keepingCapacity:)`),
// so writing a reply allocates nothing once the array has grown to its working size.

extension Array where Element == UInt8 {
    /// `+<text>\r\n` (a status reply such as `+OK`). `text` must not contain CR or LF.
    @inlinable
    public mutating func appendRESPSimple(_ text: StaticString) {
        append(UInt8(ascii: "+"))
        text.withUTF8Buffer { append(contentsOf: $0) }
        appendCRLF()
    }

    /// `-<text>\r\n`, with every CR or LF in `text` replaced by a space (an error reply is one line).
    public mutating func appendRESPError(_ text: String) {
        append(UInt8(ascii: "-"))
        for b in text.utf8 { append(b == 0x0D || b == 0x0A ? 0x20 : b) }
        appendCRLF()
    }

    /// `-<text>\r\n` for a constant message (no allocation).
    @inlinable
    public mutating func appendRESPError(_ text: StaticString) {
        append(UInt8(ascii: "-"))
        text.withUTF8Buffer { append(contentsOf: $0) }
        appendCRLF()
    }

    /// `:<n>\r\n`
    @inlinable
    public mutating func appendRESPInteger(_ n: Int) {
        append(UInt8(ascii: ":"))
        appendDecimal(n)
        appendCRLF()
    }

    /// `$<count>\r\n<bytes>\r\n`
    @inlinable
    public mutating func appendRESPBulk(_ bytes: UnsafeRawBufferPointer) {
        append(UInt8(ascii: "$"))
        appendDecimal(bytes.count)
        appendCRLF()
        append(contentsOf: bytes)
        appendCRLF()
    }

    /// `$<count>\r\n<bytes>\r\n` from an array.
    @inlinable
    public mutating func appendRESPBulk(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { appendRESPBulk($0) }
    }

    /// `$-1\r\n` (the null bulk string: a missing key).
    @inlinable
    public mutating func appendRESPNull() {
        append(UInt8(ascii: "$"))
        append(UInt8(ascii: "-"))
        append(UInt8(ascii: "1"))
        appendCRLF()
    }

    /// `*<count>\r\n`, the header of an array of `count` replies that follow.
    @inlinable
    public mutating func appendRESPArrayHeader(_ count: Int) {
        append(UInt8(ascii: "*"))
        appendDecimal(count)
        appendCRLF()
    }

    @inlinable
    mutating func appendCRLF() {
        append(0x0D)
        append(0x0A)
    }

    /// The decimal digits of `n` (no allocation).
    @inlinable
    public mutating func appendDecimal(_ n: Int) {
        if n < 0 {
            append(UInt8(ascii: "-"))
            if n == Int.min {
                for b in "9223372036854775808".utf8 { append(b) }
                return
            }
        }
        var v = n < 0 ? -n : n
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch on the stack
        let count = Swift.withUnsafeMutableBytes(of: &digits) { buf -> Int in
            var i = 24
            repeat {
                i -= 1
                buf[i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
            } while v > 0
            return i
        }
        Swift.withUnsafeBytes(of: &digits) { append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[count...])) }
    }
}

/// Reads the RESP replies a server wrote: lengths of whole replies, for reassembling replies that
/// were computed apart (e.g. the parts of a multi-key command split across shards).
public enum RESPReply {
    /// The byte length of the one complete reply at the start of `bytes`, or nil when it is not
    /// complete or not RESP2 (simple, error, integer, bulk, null, array of those).
    public static func length(_ bytes: UnsafeRawBufferPointer, from start: Int = 0) -> Int? {
        guard start < bytes.count else { return nil }
        var i = start + 1
        while i < bytes.count && bytes[i] != 0x0A { i += 1 }
        guard i < bytes.count else { return nil }
        let lineEnd = i + 1
        switch bytes[start] {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"): return lineEnd - start
        case UInt8(ascii: "$"):
            guard let n = RESPParser.integer(bytes, start + 1, i - 1) else { return nil }
            if n < 0 { return lineEnd - start }
            return lineEnd + n + 2 <= bytes.count ? lineEnd + n + 2 - start : nil
        case UInt8(ascii: "*"):
            guard let n = RESPParser.integer(bytes, start + 1, i - 1) else { return nil }
            var p = lineEnd
            if n > 0 {
                for _ in 0..<n {
                    guard let l = length(bytes, from: p) else { return nil }
                    p += l
                }
            }
            return p - start
        default: return nil
        }
    }

    /// The integer of a `:<n>\r\n` reply at `start`, or nil.
    public static func integer(_ bytes: UnsafeRawBufferPointer, from start: Int = 0) -> Int? {
        guard start < bytes.count, bytes[start] == UInt8(ascii: ":") else { return nil }
        var i = start + 1
        while i < bytes.count && bytes[i] != 0x0D { i += 1 }
        return RESPParser.parseInteger(UnsafeRawBufferPointer(rebasing: bytes[(start + 1)..<i]))
    }
}
