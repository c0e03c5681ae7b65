import Foundation
import Spindle
import Testing

@testable import SpindleProfiles

/// The profile compiler's own TOML 1.0 parser (`TOMLParser.swift`): the spec's valid forms give
/// the expected trees; malformed input of every kind is refused with a line and column, never a
/// crash (the same inputs run under AddressSanitizer in `Fuzz/run-toml.sh`).
@Suite("TOML parser")
struct TOMLParserTests {
    static func parse(_ text: String) throws(TOMLError) -> TOMLTable { try TOMLParser.parse(text) }

    // MARK: Valid documents

    struct Valid: CustomTestStringConvertible, Sendable {
        let name: String
        let text: String
        let expected: @Sendable () -> TOMLTable
        var testDescription: String { name }
    }

    static let valid: [Valid] = [
        Valid(
            name: "bare, quoted, dotted and empty keys",
            text: """
                a = 1
                "b c" = 2
                'd' = 3
                e.f = 4
                "g".'h'.i = 5
                j . k = 6
                "" = 7
                1234 = 8
                -_- = 9
                "é\\u0041" = 10
                """,
            expected: {
                TOMLTable([
                    "a": .integer(1), "b c": .integer(2), "d": .integer(3), "e": .table(TOMLTable(["f": .integer(4)])),
                    "g": .table(TOMLTable(["h": .table(TOMLTable(["i": .integer(5)]))])),
                    "j": .table(TOMLTable(["k": .integer(6)])), "": .integer(7), "1234": .integer(8), "-_-": .integer(9),
                    "éA": .integer(10),
                ])
            }),
        Valid(
            name: "basic strings with every escape",
            text: #"s = "\b\t\n\f\r\"\\\u00E9\U0001F600 tab:\#tend""#,
            expected: { TOMLTable(["s": .string("\u{8}\t\n\u{C}\r\"\\é😀 tab:\tend")]) }),
        Valid(
            name: "multi-line basic strings: first newline, line-ending backslash, quotes before the end",
            text: "s = \"\"\"\nRoses \"are\" red\nViolets \\   \n\n    are blue\"\"\"\nq = \"\"\"a\"\"\"\"\"\nr = \"\"\"\"\"\"\n",
            expected: { TOMLTable(["s": .string("Roses \"are\" red\nViolets are blue"), "q": .string("a\"\""), "r": .string("")]) }),
        Valid(
            name: "literal strings, one-line and multi-line",
            text: "p = 'C:\\Users\\x'\nq = '''\nline1\n  line2 \\n'''\nr = '''a'''''\ne = ''\n",
            expected: {
                TOMLTable(["p": .string("C:\\Users\\x"), "q": .string("line1\n  line2 \\n"), "r": .string("a''"), "e": .string("")])
            }),
        Valid(
            name: "integers: signs, underscores, hex, octal, binary, the 64-bit limits",
            text: """
                a = +99
                b = 42
                c = 0
                d = -17
                e = 1_000
                f = 0xDEAD_beef
                g = 0o755
                h = 0b1101_0101
                i = 9223372036854775807
                j = -9223372036854775808
                k = +0
                l = -0
                m = 0x7fffffffffffffff
                n = 0x00ff
                """,
            expected: {
                TOMLTable([
                    "a": .integer(99), "b": .integer(42), "c": .integer(0), "d": .integer(-17), "e": .integer(1000),
                    "f": .integer(0xDEAD_BEEF), "g": .integer(0o755), "h": .integer(0b1101_0101), "i": .integer(Int.max),
                    "j": .integer(Int.min), "k": .integer(0), "l": .integer(0), "m": .integer(Int.max), "n": .integer(255),
                ])
            }),
        Valid(
            name: "floats: fractions, exponents, underscores, inf",
            text: """
                a = +1.0
                b = 3.1415
                c = -0.01
                d = 5e+22
                e = 1e06
                f = -2E-2
                g = 6.626e-34
                h = 224_617.445_991
                i = inf
                j = -inf
                k = +inf
                l = 0.0
                m = 1e-400
                n = 0e0
                """,
            expected: {
                TOMLTable([
                    "a": .float(1), "b": .float(3.1415), "c": .float(-0.01), "d": .float(5e22), "e": .float(1e6),
                    "f": .float(-0.02), "g": .float(6.626e-34), "h": .float(224_617.445_991), "i": .float(.infinity),
                    "j": .float(-.infinity), "k": .float(.infinity), "l": .float(0), "m": .float(0), "n": .float(0),
                ])
            }),
        Valid(
            name: "booleans",
            text: "t = true\nf = false\n",
            expected: { TOMLTable(["t": .boolean(true), "f": .boolean(false)]) }),
        Valid(
            name: "arrays: mixed types, nesting, newlines, comments, trailing comma",
            text: "a = [1, \"two\", [3, [4]], { x = 5 }, 6.5, true]\nb = [\n  1, # one\n  # alone\n  2,\n]\nc = []\nd = [ [ ] , [ ] ]\n",
            expected: {
                TOMLTable([
                    "a": .array([
                        .integer(1), .string("two"), .array([.integer(3), .array([.integer(4)])]),
                        .table(TOMLTable(["x": .integer(5)])), .float(6.5), .boolean(true),
                    ]),
                    "b": .array([.integer(1), .integer(2)]), "c": .array([]), "d": .array([.array([]), .array([])]),
                ])
            }),
        Valid(
            name: "inline tables: empty, dotted keys, nested",
            text: "p = { x = 1, y.z = 2, y.w = { v = [] } }\ne = {}\nf = {a=1}\n",
            expected: {
                TOMLTable([
                    "p": .table(TOMLTable([
                        "x": .integer(1),
                        "y": .table(TOMLTable(["z": .integer(2), "w": .table(TOMLTable(["v": .array([])]))])),
                    ])),
                    "e": .table(TOMLTable()), "f": .table(TOMLTable(["a": .integer(1)])),
                ])
            }),
        Valid(
            name: "tables, implicit tables defined later, arrays of tables with sub-tables",
            text: """
                [a.b]
                x = 1
                [a]
                y = 2
                [[c]]
                n = 1
                [[c]]
                n = 2
                [c.d]
                m = 3
                [ "q" . 'r' ]
                [[ s ]]
                """,
            expected: {
                TOMLTable([
                    "a": .table(TOMLTable(["b": .table(TOMLTable(["x": .integer(1)])), "y": .integer(2)])),
                    "c": .array([
                        .table(TOMLTable(["n": .integer(1)])),
                        .table(TOMLTable(["n": .integer(2), "d": .table(TOMLTable(["m": .integer(3)]))])),
                    ]),
                    "q": .table(TOMLTable(["r": .table(TOMLTable())])),
                    "s": .array([.table(TOMLTable())]),
                ])
            }),
        Valid(
            name: "a sub-table under a table made by dotted keys",
            text: "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true\n",
            expected: {
                TOMLTable([
                    "fruit": .table(TOMLTable([
                        "apple": .table(TOMLTable([
                            "color": .string("red"), "taste": .table(TOMLTable(["sweet": .boolean(true)])),
                            "texture": .table(TOMLTable(["smooth": .boolean(true)])),
                        ]))
                    ]))
                ])
            }),
        Valid(
            name: "byte-order mark, CRLF, comments, tabs, blank lines",
            text: "\u{FEFF}# c é\r\n\ta\t=\t1 # after\r\n\r\n[t] # header\r\nb = \"\"\"x\r\ny\"\"\"\r\nc = '''\r\nz'''",
            expected: { TOMLTable(["a": .integer(1), "t": .table(TOMLTable(["b": .string("x\ny"), "c": .string("z")]))]) }),
        Valid(name: "an empty document", text: "", expected: { TOMLTable() }),
        Valid(name: "only comments and blank lines", text: "# a\n\n   # b\n", expected: { TOMLTable() }),
    ]

    @Test("valid TOML gives the expected tree", arguments: valid)
    func validDocument(_ c: Valid) throws {
        let got = try Self.parse(c.text)
        #expect(got == c.expected(), "\(c.name): \(got)")
    }

    @Test("nan, with or without a sign, is a float")
    func nan() throws {
        let t = try Self.parse("a = nan\nb = +nan\nc = -nan\n")
        for k in ["a", "b", "c"] {
            guard case .float(let d)? = t[k] else {
                Issue.record("\(k) is \(String(describing: t[k]))")
                continue
            }
            #expect(d.isNaN, "\(k)")
        }
    }

    @Test("keys keep the order they were first written in")
    func keyOrder() throws {
        let t = try Self.parse("z = 1\n[m]\n[a]\n[[b]]\n")
        #expect(t.keys == ["z", "m", "a", "b"])
    }

    @Test("nesting up to the limit is accepted, one more level is refused")
    func depthLimit() throws {
        let n = TOMLParser.maxDepth - 1  // the key `a` is one level
        var t = try Self.parse("a = " + String(repeating: "[", count: n) + String(repeating: "]", count: n))
        var depth = 0
        var v = t["a"]
        while case .array(let a)? = v {
            depth += 1
            v = a.first
        }
        #expect(depth == n)
        #expect(throws: TOMLError.self) {
            t = try Self.parse("a = " + String(repeating: "[", count: n + 1) + String(repeating: "]", count: n + 1))
        }
    }

    // MARK: Malformed documents

    struct Invalid: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        let line: Int
        /// nil: not checked (deep-nesting cases, where the column is the limit's position).
        let column: Int?
        /// A part of the message.
        let says: String
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ line: Int, _ column: Int?, _ says: String) {
            self.init(name, Array(text.utf8), line, column, says)
        }

        init(_ name: String, _ bytes: [UInt8], _ line: Int, _ column: Int?, _ says: String) {
            self.name = name
            self.bytes = bytes
            self.line = line
            self.column = column
            self.says = says
        }
    }

    static let invalid: [Invalid] = [
        // The toml++ assertion the fuzzer found (Fuzz/corpus-toml/regression-toml++-parse-value-assert).
        Invalid("an array starting with '}'", "[engine]\ncpus = [}0, 1]\n", 2, 9, "expected a value (a string, number, true, false, array or inline table), saw '}'"),
        Invalid("10,000 '[' as a value", "a = " + String(repeating: "[", count: 10_000), 1, 68, "at most 64 levels of nesting"),
        Invalid("10,000 '[' as a header", String(repeating: "[", count: 10_000), 1, 3, "a table header must start with a key"),
        Invalid("10,000 nested inline tables", "x = " + String(repeating: "{a=", count: 10_000), 1, nil, "at most 64 levels of nesting"),
        Invalid("a dotted key of 100 parts", "a" + String(repeating: ".a", count: 100) + " = 1", 1, nil, "at most 64 levels of nesting"),
        Invalid("a table header of 100 parts", "[a" + String(repeating: ".a", count: 100) + "]", 1, nil, "at most 64 levels of nesting"),
        Invalid("an integer one past Int.max", "a = 9223372036854775808", 1, 5, "an integer that fits in 64 bits"),
        Invalid("an integer one below Int.min", "a = -9223372036854775809", 1, 5, "an integer that fits in 64 bits"),
        Invalid("a hex integer past Int.max", "a = 0x8000000000000000", 1, 5, "fits in 64 bits"),
        Invalid("a 30-digit integer", "a = 999999999999999999999999999999", 1, 5, "fits in 64 bits"),
        Invalid("a float past Double.max", "a = 1e400", 1, 5, "a floating-point number that fits in 64 bits"),
        Invalid("an unknown escape", #"a = "\x""#, 1, 6, #"expected an escape (\b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX) after the backslash, saw 'x'"#),
        Invalid("\\e (TOML 1.1, not 1.0)", #"a = "\e""#, 1, 6, "expected an escape"),
        Invalid("a surrogate escape", #"a = "\uD800""#, 1, 6, #"not a surrogate D800-DFFF), saw \uD800"#),
        Invalid("an escape past U+10FFFF", #"a = "\U00110000""#, 1, 6, "a Unicode scalar value"),
        Invalid("a short \\u escape", #"a = "\u12""#, 1, 6, #"expected 4 hexadecimal digits after \u, saw '"'"#),
        Invalid("a backslash then a space in a one-line string", "a = \"\\ \"", 1, 6, "expected an escape"),
        Invalid("text after a line-ending backslash", "a = \"\"\"x\\ y\"\"\"", 1, 11, "expected a newline after a line-ending backslash"),
        Invalid("a duplicate key", "a = 1\na = 2\n", 2, 1, "expected each key once, saw `a` again (first at line 1)"),
        Invalid("a duplicate key through a dotted key", "a.b = 1\na = 2\n", 2, 1, "saw `a` again (first at line 1)"),
        Invalid("a duplicate quoted key", "\"a\" = 1\n'a' = 2\n", 2, 1, "saw `a` again"),
        Invalid("a table defined twice", "[a]\n[a]\n", 2, 1, "expected each table defined once, saw [a] again (first at line 1)"),
        Invalid("a table over a value", "[a]\nb = 1\n[a.b]\n", 3, 1, "expected a table for `b`, saw an integer set at line 2"),
        Invalid("a header extending an inline table", "a = {x = 1}\n[a]\n", 2, 1, "(a value is never extended)"),
        Invalid("a dotted key extending an inline table", "a = {x = 1}\na.y = 2\n", 2, 1, "saw a table (first at line 1)"),
        Invalid("a table after an array of tables", "[[a]]\n[a]\n", 2, 1, "expected [[a]] for another table of the array"),
        Invalid("an array of tables after a table", "[a]\n[[a]]\n", 2, 1, "expected [[a]] to name an array of tables"),
        Invalid("an array of tables after a static array", "a = []\n[[a]]\n", 2, 1, "(a value is never extended)"),
        Invalid("a header redefining a dotted table", "[fruit]\napple.color = 1\n[fruit.apple]\n", 3, 1, "defined by dotted keys at line 2"),
        Invalid("a dotted key into a header's table", "[a.b.c]\nz = 1\n[a]\nb.c.t = 2\n", 4, 1, "a table defined elsewhere"),
        Invalid("an unterminated string", "a = \"abc", 1, 9, "expected '\"' to close the string opened at line 1, column 5, saw the end of the file"),
        Invalid("a string cut by a newline", "a = \"abc\nb = 1", 1, 9, "expected '\"' to close the string, saw the end of the line"),
        Invalid("a string cut by CR LF", "a = \"abc\r\nb = 1", 1, 9, "saw the end of the line"),
        Invalid("an unterminated multi-line string", "a = \"\"\"abc\n", 2, 1, "opened at line 1, column 5, saw the end of the file"),
        Invalid("an unterminated literal string", "a = 'abc\n", 1, 9, "saw the end of the line"),
        Invalid("an unterminated multi-line literal string", "a = '''x", 1, 9, "\"'''\" to close the string"),
        Invalid("NUL in a string", "a = \"a\u{0}b\"", 1, 7, "no control characters in a string), saw U+0000"),
        Invalid("NUL after a value", "a = 1\u{0}", 1, 6, "expected a newline or a comment after the value, saw U+0000"),
        Invalid("DEL in a literal string", "a = 'a\u{7F}'", 1, 7, "saw U+007F"),
        Invalid("a control character in a comment", "# a\u{1}b", 1, 4, "expected text in a comment (no control characters), saw U+0001"),
        Invalid("a carriage return alone", "a = 1\rb = 2", 1, 6, "saw a carriage return alone"),
        Invalid("a byte that is not UTF-8", [0x61, 0x20, 0x3D, 0x20, 0x22, 0xFF, 0x22], 1, 6, "expected UTF-8 text, saw the byte 0xFF (not UTF-8)"),
        Invalid("an overlong UTF-8 form", [0x61, 0x3D, 0x22, 0xC0, 0xAF, 0x22], 1, 4, "saw the byte 0xC0"),
        Invalid("a UTF-8-encoded surrogate", [0x23, 0x20, 0xED, 0xA0, 0x80], 1, 3, "saw the byte 0xED"),
        Invalid("UTF-8 cut at the end", [0x61, 0x3D, 0x31, 0x23, 0xE2, 0x82], 1, 5, "saw the byte 0xE2"),
        Invalid("a byte that is not UTF-8 where a key starts", [0x5B, 0xFF, 0x5D], 1, 2, "a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw the byte 0xFF (not UTF-8)"),
        Invalid("a stray continuation byte as a value", [0x61, 0x3D, 0x80], 1, 3, "saw the byte 0x80 (not UTF-8)"),
        Invalid("not UTF-8 on line 3", [0x61, 0x3D, 0x31, 0x0A, 0x0A, 0x62, 0x3D, 0x27, 0xC3, 0x28, 0x27], 3, 4, "saw the byte 0xC3"),
        Invalid("a leading zero", "a = 012", 1, 5, "expected a number without leading zeros, saw `012`"),
        Invalid("two underscores", "a = 1__2", 1, 5, "an underscore only between two digits"),
        Invalid("a trailing underscore", "a = 1_", 1, 5, "an underscore only between two digits"),
        Invalid("a signed hex integer", "a = +0xFF", 1, 5, "a hexadecimal integer without a sign"),
        Invalid("an uppercase prefix", "a = 0XFF", 1, 5, "saw `0XFF`"),
        Invalid("a float without fraction digits", "a = 1.", 1, 5, "digits after the decimal point"),
        Invalid("a float without an integer part", "a = .5", 1, 5, "saw `.5`"),
        Invalid("an exponent without digits", "a = 1e", 1, 5, "digits in the exponent"),
        Invalid("a float with a leading zero", "a = 01.5", 1, 5, "without leading zeros"),
        Invalid("infinity spelled out", "a = infinity", 1, 5, "saw `infinity`"),
        Invalid("True with a capital", "a = True", 1, 5, "saw `True`"),
        Invalid("a trailing comma in an inline table", "a = {x = 1,}", 1, 12, "an inline table has no trailing comma"),
        Invalid("a newline in an inline table", "a = {x = 1,\ny = 2}", 1, 12, "expected a key (A-Z a-z 0-9 _ - or a quoted name), saw the end of the line"),
        Invalid("a newline before '}'", "a = {x = 1\n}", 1, 11, "expected ',' or '}' in the inline table (it is on one line), saw the end of the line"),
        Invalid("an inline table left open", "a = {x = 1", 1, 11, "opened at line 1, column 5"),
        Invalid("an array without a comma", "a = [1 2]", 1, 8, "expected ',' or ']' in the array, saw '2'"),
        Invalid("an array left open", "a = [1, 2", 1, 10, "expected ']' to close the array opened at line 1, column 5, saw the end of the file"),
        Invalid("an array with only a comma", "a = [,]", 1, 6, "expected a value"),
        Invalid("a key without a value", "a =", 1, 4, "expected a value, saw the end of the file"),
        Invalid("a key without '='", "a 1", 1, 3, "expected '=' after the key `a`, saw '1'"),
        Invalid("a value without a key", "= 1", 1, 1, "expected a key"),
        Invalid("a header left open", "[engine\ncpus = [0]", 1, 8, "expected ']' to close the table header, saw the end of the line"),
        Invalid("an array-of-tables header closed by one bracket", "[[a]\n", 1, 5, "expected ']]' to close the array-of-tables header"),
        Invalid("an array-of-tables header with a space between its brackets", "[[a] ]\n", 1, 5, "expected ']]'"),
        Invalid("text after a header", "[a]b = 1", 1, 4, "expected a newline or a comment after the table header, saw 'b'"),
        Invalid("two key/values on a line", "a = 1 b = 2", 1, 7, "after the value, saw 'b'"),
        Invalid("a multi-line string as a key", "\"\"\"a\"\"\" = 1", 1, 1, "saw a multi-line string"),
        Invalid("an empty header", "[]", 1, 2, "a table header must start with a key"),
        Invalid("a header with an empty part", "[a.]", 1, 4, "expected a key"),
        Invalid("a non-ASCII header", "[engine]\ncpus = [0]\n[\u{E9}]\n", 3, 2, "a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw U+00E9"),
        Invalid("a non-ASCII bare key", "\u{E9} = 1", 1, 1, "saw U+00E9"),
        Invalid("a byte-order mark that is not at the start", "a = 1\n\u{FEFF}b = 2", 2, 1, "saw U+FEFF"),
        Invalid("a header after a byte-order mark", "\u{FEFF}[\u{C8}]\n", 1, 2, "saw U+00C8"),
        Invalid("a date-time", "a = 1979-05-27T07:32:00Z", 1, 5, "profiles use no dates or times"),
        Invalid("a local date", "a = 1979-05-27", 1, 5, "profiles use no dates or times"),
        Invalid("a local time", "a = 07:32:00", 1, 5, "profiles use no dates or times"),
        Invalid("more than 1 MiB", String(repeating: " ", count: (1 << 20) + 1), 1, 1, "expected at most 1048576 bytes (1 MiB), saw 1048577 bytes"),
    ]

    @Test("malformed TOML is refused with its line, column and what was expected", arguments: invalid)
    func invalidDocument(_ c: Invalid) throws {
        do {
            let t = try TOMLParser.parse(c.bytes)
            Issue.record("\(c.name): accepted as \(t)")
        } catch {
            #expect(error.line == c.line, "\(c.name): \(error)")
            if let column = c.column { #expect(error.column == column, "\(c.name): \(error)") }
            #expect(error.message.contains(c.says), "\(c.name): \(error)")
        }
    }

    @Test("the table of malformed inputs has at least 40 cases")
    func invalidTableSize() {
        #expect(Self.invalid.count >= 40)
        #expect(Set(Self.invalid.map(\.name)).count == Self.invalid.count)
    }

    /// Every prefix of a document that uses most of the grammar, and every prefix with one byte
    /// changed to each of a few troublemakers: parsed or refused with a position inside the text.
    @Test("every prefix of a valid document, and every one-byte change of it, is parsed or refused without a crash")
    func prefixesAndChanges() throws {
        let doc = Array(
            "\u{FEFF}# c\r\n[a.\"b\"]\nx = [1, 0x1F, -2.5e3, 'l', \"\"\"m\\\n  \"\"\", {y = true, z.w = nan}]\n[[c]]\nd = \"\\u00E9\\U0001F600\"\n"
                .utf8)
        _ = try TOMLParser.parse(doc)
        func check(_ bytes: [UInt8]) {
            let lines = bytes.filter { $0 == 0x0A }.count + 1
            do { _ = try TOMLParser.parse(bytes) } catch {
                #expect(error.line >= 1 && error.line <= lines && error.column >= 1, "\(error)")
            }
        }
        for n in 0...doc.count { check(Array(doc.prefix(n))) }
        for i in doc.indices {
            for byte: UInt8 in [0x00, 0x0D, 0x22, 0x27, 0x5B, 0x5D, 0x7B, 0x7D, 0x2C, 0x3D, 0x2E, 0x5C, 0xFF, 0x0A] {
                var b = doc
                b[i] = byte
                check(b)
            }
        }
    }

    // MARK: Fuzz corpus

    /// Every case of this suite up to the fuzzer's `-max_len` (4,096 bytes) is a seed of the TOML
    /// fuzzer's corpus (`Fuzz/corpus-toml/spec-…`): the grammar the fuzzer starts from.
    @Test("the TOML fuzz corpus holds every case of this suite")
    func fuzzCorpusIsCurrent() throws {
        var files: [(String, [UInt8])] = []
        func slug(_ name: String) -> String {
            String(name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        }
        for c in Self.valid { files.append(("spec-valid-" + slug(c.name), Array(c.text.utf8))) }
        for c in Self.invalid where c.bytes.count <= 4096 { files.append(("spec-invalid-" + slug(c.name), c.bytes)) }
        let dir = Support.repo + "/Fuzz/corpus-toml"
        let write = ProcessInfo.processInfo.environment["SPINDLE_WRITE_CORPUS"] != nil
        for (name, bytes) in files {
            let path = dir + "/" + name
            if write { try ProfileFiles.writeAtomically(bytes, to: path) }
            let stored = try? ProfileFiles.read(path)
            #expect(stored == bytes, "\(path) is stale: run SPINDLE_WRITE_CORPUS=1 swift test --filter fuzzCorpusIsCurrent")
        }
    }

    // MARK: Through the profile compiler

    @Test("the fuzzer's toml++ crash is one line from the profile compiler")
    func knownCrashThroughTheCompiler() throws {
        let bytes = try ProfileFiles.read(Support.repo + "/Fuzz/corpus-toml/regression-toml++-parse-value-assert")
        do {
            _ = try ProfileFiles.compile(tomlBytes: bytes, name: "crash.toml")
            Issue.record("accepted")
        } catch {
            #expect(
                error.message
                    == "crash.toml: line 2, column 9: expected a value (a string, number, true, false, array or inline table), saw '}'; fix: correct the TOML syntax"
            )
        }
    }

    /// Found by the TOML fuzzer's long run (Fuzz/corpus-toml/regression-host-without-model-round-trip).
    @Test("a [host] with only wake_ns and cache sizes survives inspect → compile byte for byte")
    func hostWithoutModelRoundTrips() throws {
        let bytes = try ProfileFiles.read(Support.repo + "/Fuzz/corpus-toml/regression-host-without-model-round-trip")
        let compiled = try ProfileFiles.compile(tomlBytes: bytes, name: "h.toml")
        let shown = try ProfileFiles.inspect(bytes: compiled, name: "h.spindle")
        #expect(shown.contains("wake_ns = 21001"))
        #expect(try ProfileFiles.compile(toml: shown, name: "inspected.toml") == compiled)
    }

    @Test("a source that never ends (/dev/zero) is refused after 1 MiB, not read forever")
    func endlessSource() throws {
        let out = FileManager.default.temporaryDirectory.path + "/endless-\(getpid()).spindle"
        do {
            try ProfileFiles.compile(input: "/dev/zero", output: out)
            Issue.record("accepted")
        } catch {
            #expect(error.message == "/dev/zero: line 1, column 1: expected at most 1048576 bytes (1 MiB), saw 1048577 bytes; fix: check the path (a profile source is a few kilobytes)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a file that is not UTF-8 is refused with the byte's position, not repaired")
    func notUTF8ThroughTheCompiler() throws {
        var bytes = Array(Support.baseTOML.utf8)
        let at = bytes.firstIndex(of: UInt8(ascii: "c"))!  // the `c` of `cpus`, line 2
        bytes[at] = 0xFF
        do {
            _ = try ProfileFiles.compile(tomlBytes: bytes, name: "t.toml")
            Issue.record("accepted")
        } catch {
            #expect(
                error.message
                    == "t.toml: line 2, column 1: expected a key (A-Z a-z 0-9 _ - or a quoted name), saw the byte 0xFF (not UTF-8); fix: correct the TOML syntax"
            )
        }
        // The text form sees U+FFFD (the String already repaired it) and still refuses.
        #expect(throws: SpindleError.self) { try ProfileFiles.compile(toml: String(decoding: bytes, as: UTF8.self), name: "t.toml") }
    }
}
