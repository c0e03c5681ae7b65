/// A strict TOML 1.0 parser for profile sources: pure Swift over UTF-8 bytes, no C or C++
/// underneath. It reports every malformed input as a ``TOMLError`` with its line and column and
/// never traps: input is bounded (``TOMLParser/maxBytes``) and so is nesting
/// (``TOMLParser/maxDepth``: arrays, inline tables, table headers and dotted keys together), so
/// neither the recursion nor the tree it builds can grow without bound. Dates and times are valid
/// TOML but no profile key takes one: they are refused with a message that says so.

/// A TOML value: what a key holds.
enum TOMLValue: Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var int: Int? { if case .integer(let i) = self { i } else { nil } }
    var bool: Bool? { if case .boolean(let b) = self { b } else { nil } }
    var array: [TOMLValue]? { if case .array(let a) = self { a } else { nil } }
    var table: TOMLTable? { if case .table(let t) = self { t } else { nil } }

    /// The type's name in messages: "an integer, not string".
    var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "floating-point number"
        case .boolean: "boolean"
        case .array: "array"
        case .table: "table"
        }
    }

    /// "an integer", "a string".
    var aTypeName: String { (typeName.first == "i" || typeName.first == "a" ? "an " : "a ") + typeName }

    /// The value written back as (one-line) TOML, for messages: `[1, 2]`, `{ name = "a" }`.
    var rendered: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .integer(let i): "\(i)"
        case .float(let d): d.isNaN ? "nan" : "\(d)"
        case .boolean(let b): "\(b)"
        case .array(let a): "[" + a.map(\.rendered).joined(separator: ", ") + "]"
        case .table(let t): t.isEmpty ? "{}" : "{ " + t.keys.map { "\($0) = \(t[$0]!.rendered)" }.joined(separator: ", ") + " }"
        }
    }
}

/// A TOML table: keys in the order they first appear, each with its value.
struct TOMLTable: Equatable {
    private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]

    init() {}

    /// A table from literal pairs (tests).
    init(_ pairs: KeyValuePairs<String, TOMLValue>) {
        for (k, v) in pairs { append(k, v) }
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    subscript(key: String) -> TOMLValue? { values[key] }

    mutating func append(_ key: String, _ value: TOMLValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Same keys with the same values (the order is not compared).
    static func == (a: TOMLTable, b: TOMLTable) -> Bool { a.values == b.values }
}

/// A syntax error: where (1-based line and column, in characters; a byte-order mark is not
/// counted) and what was expected and seen.
struct TOMLError: Error, Equatable, CustomStringConvertible {
    let line: Int
    let column: Int
    let message: String
    var description: String { "line \(line), column \(column): \(message)" }
}

struct TOMLParser {
    /// The largest source accepted (1 MiB; a profile is a few kilobytes).
    static let maxBytes = 1 << 20
    /// The deepest nesting accepted: each `[` of an array, `{` of an inline table, part of a
    /// table header's name and part of a dotted key is one level.
    static let maxDepth = 64

    /// Parses a whole document.
    static func parse(_ bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
        var p = TOMLParser(bytes)
        return try p.document()
    }

    static func parse(_ text: String) throws(TOMLError) -> TOMLTable { try parse(Array(text.utf8)) }

    private let b: [UInt8]
    private var i = 0
    /// Where the text starts (3 after a byte-order mark).
    private var start = 0

    private init(_ bytes: [UInt8]) { b = bytes }

    // MARK: Tables under construction

    /// How a table came to be: it decides what may define or extend it later.
    private enum Origin {
        /// Named on the way to a header's table (`a` of `[a.b]`): a header may still define it.
        case implicit
        /// Defined by a `[header]` (or the root, or an inline table): never defined again.
        case header
        /// Made by a dotted key (`a.b = 1` makes `a`): only dotted keys of its section extend it.
        case dotted
    }

    private final class Builder {
        var origin: Origin
        var keys: [String] = []
        var slots: [String: Slot] = [:]
        init(_ origin: Origin) { self.origin = origin }

        func add(_ key: String, _ slot: Slot) {
            keys.append(key)
            slots[key] = slot
        }

        func table() -> TOMLTable {
            var t = TOMLTable()
            for k in keys {
                switch slots[k]! {
                case .value(let v, _): t.append(k, v)
                case .table(let child, _): t.append(k, .table(child.table()))
                case .tables(let list, _): t.append(k, .array(list.items.map { .table($0.table()) }))
                }
            }
            return t
        }
    }

    private final class TableList {
        var items: [Builder]
        init(_ first: Builder) { items = [first] }
    }

    /// A key's content; `at` is where it was first written (for "first at line N").
    private enum Slot {
        case value(TOMLValue, at: Int)
        case table(Builder, at: Int)
        case tables(TableList, at: Int)

        var at: Int {
            switch self {
            case .value(_, let a), .table(_, let a), .tables(_, let a): a
            }
        }
    }

    private typealias Key = [(name: String, at: Int)]

    // MARK: Document

    private mutating func document() throws(TOMLError) -> TOMLTable {
        guard b.count <= Self.maxBytes else {
            throw fail(at: 0, "expected at most \(Self.maxBytes) bytes (1 MiB), saw \(b.count) bytes")
        }
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        i = start
        let root = Builder(.header)
        var current = root
        var depth = 0
        while true {
            skipSpace()
            guard i < b.count else { break }
            switch b[i] {
            case .hash:
                try comment()
                continue
            case .lf, .cr:
                try newline()
                continue
            case .openBracket:
                let open = i
                i += 1
                let isArray = i < b.count && b[i] == .openBracket
                if isArray { i += 1 }
                skipSpace()
                let key = try self.key(header: true)
                skipSpace()
                let closing = isArray ? "']]' to close the array-of-tables header" : "']' to close the table header"
                guard i < b.count, b[i] == .closeBracket else { throw fail("expected \(closing)") }
                i += 1
                if isArray {
                    guard i < b.count, b[i] == .closeBracket else { throw fail("expected \(closing)") }
                    i += 1
                }
                current = try defineTable(key, array: isArray, root: root, header: open)
                depth = key.count
                try endOfLine("the table header")
            default:
                try keyValue(into: current, depth: depth)
                try endOfLine("the value")
            }
        }
        return root.table()
    }

    /// After a header or key/value: spaces, an optional comment, then a newline or the end.
    private mutating func endOfLine(_ after: String) throws(TOMLError) {
        skipSpace()
        if i < b.count, b[i] == .hash { try comment() }
        guard i < b.count else { return }
        guard b[i] == .lf || b[i] == .cr else { throw fail("expected a newline or a comment after \(after)") }
        try newline()
    }

    /// `[a.b]` and `[[a.b]]`: the table the following keys go into.
    private func defineTable(_ key: Key, array: Bool, root: Builder, header: Int) throws(TOMLError) -> Builder {
        var t = root
        let shown = key.map { Self.showKey($0.name) }.joined(separator: ".")
        for (n, part) in key.enumerated() {
            let last = n == key.count - 1
            guard let slot = t.slots[part.name] else {
                let made = Builder(last ? .header : .implicit)
                t.add(part.name, last && array ? .tables(TableList(made), at: part.at) : .table(made, at: part.at))
                t = made
                continue
            }
            switch slot {
            case .table(let existing, let first):
                if last {
                    if array {
                        throw fail(at: header, "expected [[\(shown)]] to name an array of tables, saw a table of that name (first at line \(line(of: first)))")
                    }
                    switch existing.origin {
                    case .implicit: existing.origin = .header
                    case .header:
                        throw fail(at: header, "expected each table defined once, saw [\(shown)] again (first at line \(line(of: first)))")
                    case .dotted:
                        throw fail(at: header, "expected each table defined once, saw [\(shown)] again (defined by dotted keys at line \(line(of: first)))")
                    }
                }
                t = existing
            case .tables(let list, let first):
                if last {
                    guard array else {
                        throw fail(at: header, "expected [[\(shown)]] for another table of the array, saw [\(shown)] (the array starts at line \(line(of: first)))")
                    }
                    let made = Builder(.header)
                    list.items.append(made)
                    return made
                }
                t = list.items[list.items.count - 1]
            case .value(let v, let first):
                throw fail(at: header, "expected a table for `\(Self.showKey(part.name))`, saw \(v.aTypeName) set at line \(line(of: first)) (a value is never extended)")
            }
        }
        return t
    }

    /// `a.b.c = value` into `table`.
    private mutating func keyValue(into table: Builder, depth: Int) throws(TOMLError) {
        let key = try self.key(header: false)
        skipSpace()
        guard i < b.count, b[i] == .equals else {
            throw fail("expected '=' after the key `\(key.map { Self.showKey($0.name) }.joined(separator: "."))`")
        }
        i += 1
        skipSpace()
        guard depth + key.count <= Self.maxDepth else { throw tooDeep(at: key[0].at) }
        let value = try self.value(depth: depth + key.count)
        var t = table
        for part in key.dropLast() {
            switch t.slots[part.name] {
            case nil:
                let made = Builder(.dotted)
                t.add(part.name, .table(made, at: part.at))
                t = made
            case .table(let existing, _) where existing.origin == .dotted:
                t = existing
            case let slot?:
                let what = if case .value(let v, _) = slot { v.aTypeName } else { "a table defined elsewhere" }
                throw fail(at: part.at, "expected a new key or a table of dotted keys for `\(Self.showKey(part.name))`, saw \(what) (first at line \(line(of: slot.at)))")
            }
        }
        let last = key[key.count - 1]
        if let slot = t.slots[last.name] {
            throw fail(at: last.at, "expected each key once, saw `\(Self.showKey(last.name))` again (first at line \(line(of: slot.at)))")
        }
        t.add(last.name, .value(value, at: last.at))
    }

    // MARK: Keys

    /// A bare, quoted or dotted key.
    private mutating func key(header: Bool) throws(TOMLError) -> Key {
        var parts: Key = []
        while true {
            let at = i
            parts.append((try simpleKey(first: header && parts.isEmpty), at))
            if parts.count > Self.maxDepth { throw tooDeep(at: at) }
            skipSpace()
            guard i < b.count, b[i] == .dot else { return parts }
            i += 1
            skipSpace()
        }
    }

    private mutating func simpleKey(first headerStart: Bool) throws(TOMLError) -> String {
        let from = i
        while i < b.count, Self.isBare(b[i]) { i += 1 }
        if i > from { return String(decoding: b[from..<i], as: UTF8.self) }
        if i < b.count, b[i] == .quote || b[i] == .apostrophe {
            if i + 2 < b.count, b[i + 1] == b[i], b[i + 2] == b[i] {
                throw fail("expected a key (a bare name or a one-line quoted string), saw a multi-line string")
            }
            return b[i] == .quote ? try basicString(multiLine: false) : try literalString(multiLine: false)
        }
        if headerStart {
            throw fail(at: i, "a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw \(seen())")
        }
        throw fail("expected a key (A-Z a-z 0-9 _ - or a quoted name)")
    }

    static func isBare(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == .underscore || c == .minus
    }

    /// A key as written in messages: bare when it can be, quoted otherwise.
    static func showKey(_ k: String) -> String {
        !k.isEmpty && k.utf8.allSatisfy(isBare) ? k : TOMLValue.string(k).rendered
    }

    // MARK: Values

    private mutating func value(depth: Int) throws(TOMLError) -> TOMLValue {
        guard i < b.count else { throw fail("expected a value") }
        switch b[i] {
        case .quote:
            let triple = i + 2 < b.count && b[i + 1] == .quote && b[i + 2] == .quote
            return .string(try basicString(multiLine: triple))
        case .apostrophe:
            let triple = i + 2 < b.count && b[i + 1] == .apostrophe && b[i + 2] == .apostrophe
            return .string(try literalString(multiLine: triple))
        case .openBracket: return try array(depth: depth)
        case .openBrace: return try inlineTable(depth: depth)
        default: return try scalar()
        }
    }

    private mutating func array(depth: Int) throws(TOMLError) -> TOMLValue {
        let open = i
        guard depth < Self.maxDepth else { throw tooDeep(at: open) }
        i += 1
        var items: [TOMLValue] = []
        while true {
            try skipBlank()
            guard i < b.count else { throw unclosed("']' to close the array", open) }
            if b[i] == .closeBracket {
                i += 1
                return .array(items)
            }
            items.append(try value(depth: depth + 1))
            try skipBlank()
            guard i < b.count else { throw unclosed("']' to close the array", open) }
            if b[i] == .comma {
                i += 1
            } else if b[i] != .closeBracket {
                throw fail("expected ',' or ']' in the array")
            }
        }
    }

    private mutating func inlineTable(depth: Int) throws(TOMLError) -> TOMLValue {
        let open = i
        guard depth < Self.maxDepth else { throw tooDeep(at: open) }
        i += 1
        let t = Builder(.header)
        skipSpace()
        if i < b.count, b[i] == .closeBrace {
            i += 1
            return .table(t.table())
        }
        while true {
            skipSpace()
            try keyValue(into: t, depth: depth + 1)
            skipSpace()
            guard i < b.count else { throw unclosed("'}' to close the inline table", open) }
            switch b[i] {
            case .comma:
                i += 1
                skipSpace()
                if i < b.count, b[i] == .closeBrace { throw fail("expected a key after ',' (an inline table has no trailing comma)") }
            case .closeBrace:
                i += 1
                return .table(t.table())
            default:
                throw fail("expected ',' or '}' in the inline table (it is on one line)")
            }
        }
    }

    /// Booleans, numbers, inf and nan: one run of characters that may make up a number.
    private mutating func scalar() throws(TOMLError) -> TOMLValue {
        let from = i
        while i < b.count, Self.isBare(b[i]) || b[i] == .plus || b[i] == .dot || b[i] == .colon { i += 1 }
        let token = b[from..<i]
        guard !token.isEmpty else {
            throw fail("expected a value (a string, number, true, false, array or inline table)")
        }
        let text = String(decoding: token, as: UTF8.self)
        switch text {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        let digits = token.prefix { $0 >= 0x30 && $0 <= 0x39 }.count
        let next = from + digits < b.count ? b[from + digits] : 0
        if (digits == 4 && next == .minus) || (digits == 2 && next == .colon) {
            throw fail(at: from, "expected a string, number, true, false, array or inline table (profiles use no dates or times), saw the date or time `\(text)…`")
        }
        return try number(token, text)
    }

    private func number(_ token: ArraySlice<UInt8>, _ text: String) throws(TOMLError) -> TOMLValue {
        let from = token.startIndex
        func bad(_ what: String) -> TOMLError { fail(at: from, "expected \(what), saw `\(text)`") }
        var k = from
        var negative = false
        if b[k] == .plus || b[k] == .minus {
            negative = b[k] == .minus
            k += 1
        }
        let end = token.endIndex
        let isHex: (UInt8) -> Bool = { Self.digitValue($0, radix: 16) != nil }
        for j in token.indices where b[j] == .underscore {
            guard j > from, j + 1 < end, isHex(b[j - 1]), isHex(b[j + 1]) else { throw bad("an underscore only between two digits") }
        }
        // 0x, 0o, 0b
        if k + 1 < end, b[k] == 0x30, b[k + 1] == 0x78 || b[k + 1] == 0x6F || b[k + 1] == 0x62 {
            let radix: UInt64 = b[k + 1] == 0x78 ? 16 : b[k + 1] == 0x6F ? 8 : 2
            let name = radix == 16 ? "a hexadecimal" : radix == 8 ? "an octal" : "a binary"
            guard k == from else { throw bad("\(name) integer without a sign") }
            guard let (digits, stop) = run(from: k + 2, end: end, { Self.digitValue($0, radix: radix) != nil }), stop == end else {
                throw bad("\(name) integer (digits, an underscore only between two)")
            }
            var v: UInt64 = 0
            for d in digits {
                let (m, o1) = v.multipliedReportingOverflow(by: radix)
                let (s, o2) = m.addingReportingOverflow(UInt64(Self.digitValue(d, radix: radix)!))
                guard !o1, !o2, s <= UInt64(Int.max) else { throw bad("an integer that fits in 64 bits (at most 0x7fffffffffffffff)") }
                v = s
            }
            return .integer(Int(v))
        }
        let isDigit: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        guard let (intDigits, afterInt) = run(from: k, end: end, isDigit) else {
            throw bad("a value (a string, number, true, false, array or inline table)")
        }
        if intDigits.count > 1, intDigits[0] == 0x30 { throw bad("a number without leading zeros") }
        var j = afterInt
        var isFloat = false
        var clean = negative ? "-" : ""
        clean += String(decoding: intDigits, as: UTF8.self)
        if j < end, b[j] == .dot {
            guard let (frac, after) = run(from: j + 1, end: end, isDigit) else {
                throw bad("digits after the decimal point (an underscore only between two)")
            }
            clean += "." + String(decoding: frac, as: UTF8.self)
            j = after
            isFloat = true
        }
        if j < end, b[j] == 0x65 || b[j] == 0x45 {
            j += 1
            var sign = ""
            if j < end, b[j] == .plus || b[j] == .minus {
                sign = b[j] == .minus ? "-" : ""
                j += 1
            }
            guard let (exp, after) = run(from: j, end: end, isDigit) else {
                throw bad("digits in the exponent (an underscore only between two)")
            }
            clean += "e" + sign + String(decoding: exp, as: UTF8.self)
            j = after
            isFloat = true
        }
        guard j == end else {
            throw bad(j < end && b[j] == .underscore ? "an underscore only between two digits" : "a number (a string, number, true, false, array or inline table)")
        }
        if isFloat {
            guard let d = Double(clean), d.isFinite else { throw bad("a floating-point number that fits in 64 bits") }
            return .float(d)
        }
        var v = 0
        for d in intDigits {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int(d - 0x30)) : m.addingReportingOverflow(Int(d - 0x30))
            guard !o1, !o2 else { throw bad("an integer that fits in 64 bits (-9223372036854775808...9223372036854775807)") }
            v = s
        }
        return .integer(v)
    }

    /// Digits with single underscores between them, from `k`: the digits and where they stop;
    /// nil when there is no digit at `k` or an underscore is not between two digits.
    private func run(from k: Int, end: Int, _ isDigit: (UInt8) -> Bool) -> ([UInt8], Int)? {
        var j = k
        var digits: [UInt8] = []
        guard j < end, isDigit(b[j]) else { return nil }
        while j < end {
            if isDigit(b[j]) {
                digits.append(b[j])
                j += 1
            } else if b[j] == .underscore {
                guard j + 1 < end, isDigit(b[j + 1]) else { return nil }
                j += 1
            } else {
                break
            }
        }
        return (digits, j)
    }

    private static func digitValue(_ c: UInt8, radix: UInt64) -> UInt64? {
        let v: UInt64
        switch c {
        case 0x30...0x39: v = UInt64(c - 0x30)
        case 0x61...0x66: v = UInt64(c - 0x61 + 10)
        case 0x41...0x46: v = UInt64(c - 0x41 + 10)
        default: return nil
        }
        return v < radix ? v : nil
    }

    // MARK: Strings

    /// `"…"` or `"""…"""`, at the opening quote; all escapes of TOML 1.0.
    private mutating func basicString(multiLine: Bool) throws(TOMLError) -> String {
        let open = i
        i += multiLine ? 3 : 1
        if multiLine { skipFirstNewline() }
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw unclosed(multiLine ? "'\"\"\"' to close the string" : "'\"' to close the string", open) }
            let c = b[i]
            switch c {
            case .quote:
                if !multiLine {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if try closeMultiLine(.quote, &out) { return String(decoding: out, as: UTF8.self) }
            case .backslash:
                try escape(multiLine: multiLine, &out)
            case .lf:
                guard multiLine else { throw fail("expected '\"' to close the string") }
                out.append(.lf)
                i += 1
            case .cr where i + 1 < b.count && b[i + 1] == .lf:
                guard multiLine else { throw fail("expected '\"' to close the string") }
                out.append(.lf)
                i += 2
            default:
                try plain(c, &out)
            }
        }
    }

    /// `'…'` or `'''…'''`, at the opening apostrophe: no escapes.
    private mutating func literalString(multiLine: Bool) throws(TOMLError) -> String {
        let open = i
        i += multiLine ? 3 : 1
        if multiLine { skipFirstNewline() }
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw unclosed(multiLine ? "\"'''\" to close the string" : "\"'\" to close the string", open) }
            let c = b[i]
            switch c {
            case .apostrophe:
                if !multiLine {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if try closeMultiLine(.apostrophe, &out) { return String(decoding: out, as: UTF8.self) }
            case .lf:
                guard multiLine else { throw fail("expected \"'\" to close the string") }
                out.append(.lf)
                i += 1
            case .cr where i + 1 < b.count && b[i + 1] == .lf:
                guard multiLine else { throw fail("expected \"'\" to close the string") }
                out.append(.lf)
                i += 2
            default:
                try plain(c, &out)
            }
        }
    }

    /// A character of a string's text: anything but a control character other than tab.
    private mutating func plain(_ c: UInt8, _ out: inout [UInt8]) throws(TOMLError) {
        if (c < 0x20 && c != .tab) || c == 0x7F {
            throw fail("expected text or an escape such as \\u0001 (no control characters in a string)")
        }
        guard let n = utf8Length(i) else { throw notUTF8(i) }
        out.append(contentsOf: b[i..<i + n])
        i += n
    }

    /// At a quote inside a multi-line string: up to two quotes may stand right before the closing
    /// three. True when the string is closed.
    private mutating func closeMultiLine(_ q: UInt8, _ out: inout [UInt8]) throws(TOMLError) -> Bool {
        var n = 0
        while i + n < b.count, b[i + n] == q { n += 1 }
        if n < 3 {
            out.append(contentsOf: repeatElement(q, count: n))
            i += n
            return false
        }
        let extra = min(n - 3, 2)
        out.append(contentsOf: repeatElement(q, count: extra))
        i += 3 + extra
        return true
    }

    private mutating func skipFirstNewline() {
        if i < b.count, b[i] == .lf {
            i += 1
        } else if i + 1 < b.count, b[i] == .cr, b[i + 1] == .lf {
            i += 2
        }
    }

    /// At a backslash in a basic string.
    private mutating func escape(multiLine: Bool, _ out: inout [UInt8]) throws(TOMLError) {
        let at = i
        i += 1
        guard i < b.count else { throw fail("expected an escape after the backslash") }
        let c = b[i]
        i += 1
        switch c {
        case 0x62: out.append(0x08)  // \b
        case 0x74: out.append(0x09)  // \t
        case 0x6E: out.append(0x0A)  // \n
        case 0x66: out.append(0x0C)  // \f
        case 0x72: out.append(0x0D)  // \r
        case .quote, .backslash: out.append(c)
        case 0x75, 0x55:  // \uXXXX, \UXXXXXXXX
            let n = c == 0x75 ? 4 : 8
            var v: UInt32 = 0
            for k in 0..<n {
                guard i + k < b.count, let d = Self.digitValue(b[i + k], radix: 16) else {
                    throw fail(at: at, "expected \(n) hexadecimal digits after \\\(c == 0x75 ? "u" : "U"), saw \(seen(i + k))")
                }
                v = v << 4 | UInt32(d)
            }
            let written = String(decoding: b[at..<i + n], as: UTF8.self)
            i += n
            guard let scalar = Unicode.Scalar(v) else {
                throw fail(at: at, "expected a Unicode scalar value (at most 10FFFF, not a surrogate D800-DFFF), saw \(written)")
            }
            out.append(contentsOf: String(Character(scalar)).utf8)
        case .space, .tab, .lf, .cr:
            // A line-ending backslash: it, the newline and all blanks up to the next text go.
            guard multiLine else { throw fail(at: at, "expected an escape (\\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX) after the backslash, saw \(seen(at + 1))") }
            var j = at + 1
            while j < b.count, b[j] == .space || b[j] == .tab { j += 1 }
            guard j < b.count, b[j] == .lf || (b[j] == .cr && j + 1 < b.count && b[j + 1] == .lf) else {
                throw fail(at: j, "expected a newline after a line-ending backslash (only spaces between)")
            }
            i = j
            while i < b.count {
                if b[i] == .space || b[i] == .tab || b[i] == .lf {
                    i += 1
                } else if b[i] == .cr, i + 1 < b.count, b[i + 1] == .lf {
                    i += 2
                } else {
                    break
                }
            }
        default:
            throw fail(at: at, "expected an escape (\\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX) after the backslash, saw \(seen(at + 1))")
        }
    }

    // MARK: Blanks, comments, newlines

    private mutating func skipSpace() {
        while i < b.count, b[i] == .space || b[i] == .tab { i += 1 }
    }

    /// Spaces, newlines and comments (inside an array).
    private mutating func skipBlank() throws(TOMLError) {
        while i < b.count {
            switch b[i] {
            case .space, .tab: i += 1
            case .lf, .cr: try newline()
            case .hash: try comment()
            default: return
            }
        }
    }

    private mutating func newline() throws(TOMLError) {
        if b[i] == .cr {
            guard i + 1 < b.count, b[i + 1] == .lf else {
                throw fail("expected a newline (LF or CR LF), saw a carriage return alone")
            }
            i += 2
        } else {
            i += 1
        }
    }

    /// From `#` to the end of the line (not included).
    private mutating func comment() throws(TOMLError) {
        i += 1
        while i < b.count, b[i] != .lf {
            let c = b[i]
            if c == .cr, i + 1 < b.count, b[i + 1] == .lf { return }
            if (c < 0x20 && c != .tab) || c == 0x7F { throw fail("expected text in a comment (no control characters)") }
            guard let n = utf8Length(i) else { throw notUTF8(i) }
            i += n
        }
    }

    // MARK: UTF-8 and positions

    /// The length of the UTF-8 sequence at `k`, nil when it is not UTF-8 (a stray or missing
    /// continuation byte, an overlong form, a surrogate, a value past U+10FFFF). Text is checked
    /// where it may hold non-ASCII characters (strings, comments); anywhere else such a character
    /// is an error already, and ``seen(_:)`` names the byte when it is not UTF-8.
    private func utf8Length(_ k: Int) -> Int? {
        let c = b[k]
        if c < 0x80 { return 1 }
        let n: Int, low: UInt32
        var v: UInt32
        if c & 0xE0 == 0xC0 {
            (n, low, v) = (2, 0x80, UInt32(c & 0x1F))
        } else if c & 0xF0 == 0xE0 {
            (n, low, v) = (3, 0x800, UInt32(c & 0x0F))
        } else if c & 0xF8 == 0xF0 {
            (n, low, v) = (4, 0x10000, UInt32(c & 0x07))
        } else {
            return nil
        }
        guard k + n <= b.count else { return nil }
        for m in 1..<n {
            guard b[k + m] & 0xC0 == 0x80 else { return nil }
            v = v << 6 | UInt32(b[k + m] & 0x3F)
        }
        guard v >= low, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v) else { return nil }
        return n
    }

    private func notUTF8(_ k: Int) -> TOMLError {
        fail(at: k, "expected UTF-8 text, saw the byte 0x\(String(b[k], radix: 16, uppercase: true)) (not UTF-8)")
    }

    /// What is at `k`, for messages: 'x', U+00E9, the end of the line, the end of the file.
    private func seen(_ k: Int? = nil) -> String {
        let k = k ?? i
        guard k < b.count else { return "the end of the file" }
        let c = b[k]
        if c == .lf || (c == .cr && k + 1 < b.count && b[k + 1] == .lf) { return "the end of the line" }
        if c >= 0x20 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        guard let n = utf8Length(k) else { return "the byte 0x\(String(c, radix: 16, uppercase: true)) (not UTF-8)" }
        let v = String(decoding: b[k..<k + n], as: UTF8.self).unicodeScalars.first?.value ?? UInt32(c)
        let hex = String(v, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    private func line(of k: Int) -> Int { location(k).line }

    /// 1-based line and column (in characters, the byte-order mark not counted) of byte `k`.
    private func location(_ k: Int) -> (line: Int, column: Int) {
        let k = min(k, b.count)
        var line = 1
        var lineStart = start
        for j in start..<max(start, k) where b[j] == .lf {
            line += 1
            lineStart = j + 1
        }
        var column = 1
        for j in lineStart..<max(lineStart, k) where b[j] & 0xC0 != 0x80 { column += 1 }
        return (line, column)
    }

    /// "expected …, saw <what is at i>" at i.
    private func fail(_ expected: String) -> TOMLError {
        fail(at: i, "\(expected), saw \(seen())")
    }

    private func fail(at k: Int, _ message: String) -> TOMLError {
        let (line, column) = location(k)
        return TOMLError(line: line, column: column, message: message)
    }

    private func unclosed(_ what: String, _ open: Int) -> TOMLError {
        let (line, column) = location(open)
        return fail("expected \(what) opened at line \(line), column \(column)")
    }

    private func tooDeep(at k: Int) -> TOMLError {
        fail(at: k, "expected at most \(Self.maxDepth) levels of nesting (arrays, inline tables, table and dotted key parts), saw more")
    }
}

extension UInt8 {
    fileprivate static let tab: UInt8 = 0x09
    fileprivate static let lf: UInt8 = 0x0A
    fileprivate static let cr: UInt8 = 0x0D
    fileprivate static let space: UInt8 = 0x20
    fileprivate static let quote: UInt8 = 0x22
    fileprivate static let hash: UInt8 = 0x23
    fileprivate static let apostrophe: UInt8 = 0x27
    fileprivate static let plus: UInt8 = 0x2B
    fileprivate static let comma: UInt8 = 0x2C
    fileprivate static let minus: UInt8 = 0x2D
    fileprivate static let dot: UInt8 = 0x2E
    fileprivate static let colon: UInt8 = 0x3A
    fileprivate static let equals: UInt8 = 0x3D
    fileprivate static let openBracket: UInt8 = 0x5B
    fileprivate static let backslash: UInt8 = 0x5C
    fileprivate static let closeBracket: UInt8 = 0x5D
    fileprivate static let underscore: UInt8 = 0x5F
    fileprivate static let openBrace: UInt8 = 0x7B
    fileprivate static let closeBrace: UInt8 = 0x7D
}
