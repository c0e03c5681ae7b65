import CSpindle
import Foundation
import Spindle
import SpindleProfiles
import Testing

@Suite("Broken inputs are refused with their exact message")
struct BrokenInputTests {
    static func message(_ c: BrokenCase) -> String? {
        switch c.input {
        case .bytes(let b): return Support.refusal(b)
        case .toml(let t):
            do {
                _ = try ProfileFiles.compile(toml: t, name: "t.toml")
                return nil
            } catch { return error.message }
        }
    }

    @Test("the table has at least 40 cases, each with an expected message")
    func tableSize() throws {
        let cases = try BrokenCases.all()
        #expect(cases.count >= 40)
        #expect(Set(cases.map(\.name)) == Set(BrokenExpectations.messages.keys))
    }

    @Test("each broken input is refused with its exact message", arguments: try! BrokenCases.all())
    func refused(_ c: BrokenCase) throws {
        let got = Self.message(c)
        if ProcessInfo.processInfo.environment["SPINDLE_DUMP_CASES"] != nil {
            print("CASE\t\(c.name)\t\(got ?? "(accepted)")")
        }
        #expect(got == BrokenExpectations.messages[c.name], "\(c.name)")
    }

    @Test("every prefix of a valid profile is refused without crashing")
    func everyPrefix() throws {
        let base = try Support.baseBytes()
        for n in 0..<base.count { #expect(Support.refusal(Array(base.prefix(n))) != nil) }
        #expect(Support.refusal(base) == nil)
    }

    @Test("every single-byte corruption is refused (CRC) and every CRC-fixed bit flip is refused or harmless")
    func everyByteFlip() throws {
        let base = try Support.baseBytes()
        for i in 0..<base.count - 4 {  // the last 4 bytes are the trailer's zero field
            var b = base
            b[i] ^= 0x80
            #expect(Support.refusal(b) != nil, "byte \(i)")
            if i < base.count - 8 {
                Support.fixCRC(&b)
                _ = Support.refusal(b)  // either outcome is fine; it must not crash
            }
        }
    }

    @Test("the committed fuzz corpus holds every example and every broken case")
    func corpusIsCurrent() throws {
        var files: [(String, [UInt8])] = []
        for path in try Support.exampleFiles() {
            let text = String(decoding: try ProfileFiles.read(path), as: UTF8.self)
            files.append(("example-" + path.split(separator: "/").last!.replacingOccurrences(of: ".toml", with: ""), try ProfileFiles.compile(toml: text, name: path)))
        }
        for c in try BrokenCases.all() {
            let slug = c.name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
            switch c.input {
            case .bytes(let b): files.append(("broken-" + String(slug), b))
            case .toml(let t): files.append(("toml-" + String(slug), Array(t.utf8)))
            }
        }
        let write = ProcessInfo.processInfo.environment["SPINDLE_WRITE_CORPUS"] != nil
        for (name, bytes) in files {
            let path = Support.corpus + "/" + name
            if write {
                try FileManager.default.createDirectory(atPath: Support.corpus, withIntermediateDirectories: true)
                try ProfileFiles.writeAtomically(bytes, to: path)
            }
            let stored = try? ProfileFiles.read(path)
            #expect(stored.map { $0 == bytes } == true, "\(path) is stale: run SPINDLE_WRITE_CORPUS=1 swift test --filter corpusIsCurrent")
        }
    }
}
