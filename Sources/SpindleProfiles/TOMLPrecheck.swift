import Spindle

/// Checks TOML source for what the TOML parser underneath (toml++ 3, vendored by TOMLKit 0.6)
/// asserts on instead of reporting: a table header (`[…]` or `[[…]]`) whose first character is
/// neither a bare-key character nor a quote — `[é]`, `[\u{1}]`, `[` followed by bytes that are not
/// UTF-8 — stops a debug build with `Assertion is_bare_key_character(*cp) || is_string_delimiter(*cp)
/// failed` and is undefined in a release build. Found by the TOML fuzzer (`Fuzz/`); refused here
/// with a one-line message, before the parser sees it. Strings and comments are skipped (a line in
/// a multi-line string that starts with `[` is not a header).
enum TOMLPrecheck {
    static func check(_ text: String, name: String) throws(SpindleError) {
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), hash = UInt8(ascii: "#")
        let open = UInt8(ascii: "["), backslash = UInt8(ascii: "\\")
        var closing: UInt8? = nil  // inside a multi-line string closed by three of these
        var lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line)
            var i = 0
            if let q = closing {
                guard let end = Self.end(of: bytes, from: 0, quote: q, triple: true) else { continue }
                i = end
                closing = nil
            } else {
                var j = 0
                // The parser skips a byte-order mark at the start (found by the fuzzer: BOM then `[\u{C8}`).
                if lineNumber == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { j = 3 }
                while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
                if j < bytes.count, bytes[j] == open {
                    j += 1
                    if j < bytes.count, bytes[j] == open { j += 1 }
                    while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
                    if j >= bytes.count || !Self.startsKey(bytes[j]) {
                        let saw = j >= bytes.count ? "the end of the line" : Self.describe(bytes, at: j)
                        throw SpindleError(
                            .invalidProfile,
                            "\(name): line \(lineNumber), column \(j + 1): a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw \(saw); fix: correct the TOML syntax"
                        )
                    }
                }
            }
            // The rest of the line: skip strings, stop at a comment, note a multi-line string left open.
            while i < bytes.count {
                let c = bytes[i]
                if c == hash { break }
                if c == quote || c == apostrophe {
                    let triple = i + 2 < bytes.count && bytes[i + 1] == c && bytes[i + 2] == c
                    guard let end = Self.end(of: bytes, from: i + (triple ? 3 : 1), quote: c, triple: triple) else {
                        if triple { closing = c }
                        break
                    }
                    i = end
                    continue
                }
                i += c == backslash ? 2 : 1
            }
        }
    }

    /// Bare-key characters and quotes: what may start a key.
    static func startsKey(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
            || c == 0x22 || c == 0x27
    }

    /// Index just past the string's closing quote(s) from `from`, or nil when the line ends first.
    /// Basic strings (`"`) honour backslash escapes; literal strings (`'`) have none.
    static func end(of bytes: [UInt8], from: Int, quote: UInt8, triple: Bool) -> Int? {
        var i = from
        while i < bytes.count {
            if quote == UInt8(ascii: "\"") && bytes[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if bytes[i] == quote {
                if !triple { return i + 1 }
                if i + 2 < bytes.count && bytes[i + 1] == quote && bytes[i + 2] == quote { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// "'{'" for ASCII, "U+00E9" otherwise (U+FFFD: a byte that was not UTF-8).
    static func describe(_ bytes: [UInt8], at i: Int) -> String {
        let c = bytes[i]
        if c >= 0x20 && c < 0x7F { return "'\(Character(UnicodeScalar(c)))'" }
        var n = 1
        while i + n < bytes.count, n < 4, bytes[i + n] & 0xC0 == 0x80 { n += 1 }
        let scalar = String(decoding: bytes[i..<i + n], as: UTF8.self).unicodeScalars.first?.value ?? UInt32(c)
        return "U+" + String(scalar, radix: 16, uppercase: true).leftPadded(4)
    }
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
