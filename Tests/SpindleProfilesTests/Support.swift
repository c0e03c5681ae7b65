import CSpindle
import Foundation
import Spindle
import SpindleProfiles

/// Paths and byte-level helpers shared by the profile tests.
enum Support {
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var examples: String { repo + "/Examples/profiles" }
    static var fixtures: String { repo + "/Tests/Fixtures/topology" }
    static var corpus: String { repo + "/CSupport/fuzz/corpus" }

    static func exampleFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: examples).filter { $0.hasSuffix(".toml") }.sorted()
            .map { examples + "/" + $0 }
    }

    /// The profile every broken case starts from: two CPUs on a known host, three lanes
    /// (strict, weighted, block).
    static let baseTOML = """
        [engine]
        cpus = [0, 1]
        spin_us = 50

        [[lanes]]
        name = "critical"
        policy = "strict"
        budget = 64

        [[lanes]]
        name = "normal"
        policy = "weighted"
        weight = 4

        [[lanes]]
        name = "bulk"
        policy = "weighted"
        weight = 1
        on_full = "block"
        block_timeout_us = 1000

        [host]
        cpu_model = "Test CPU"
        kernel = "6.18.0-test"
        numa_node_cpus = ["0-1"]
        numa_distances = [[10]]
        uring_features = ["msg_ring"]
        wake_ns = 21000
        cache_line = 64
        l2_bytes = 1048576
        l3_bytes = 33554432
        """

    static func baseBytes() throws -> [UInt8] { try ProfileFiles.compile(toml: baseTOML, name: "base.toml") }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
        UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32
    }
    static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
    static func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
        put32(&b, at, UInt32(truncatingIfNeeded: v))
        put32(&b, at + 4, UInt32(truncatingIfNeeded: v >> 32))
    }
    static func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) {
        b[at] = UInt8(v & 0xff)
        b[at + 1] = UInt8(v >> 8)
    }

    /// Offset of section `i` (0 ENGINE, 1 LANES, 2 HOST) from the section table.
    static func section(_ b: [UInt8], _ i: Int) -> Int { Int(u32(b, 64 + 16 * i + 8)) }

    /// Recomputes the trailer's CRC32C, so a test reaches the check after the CRC.
    static func fixCRC(_ b: inout [UInt8]) {
        let n = b.count - 8
        let crc = b.withUnsafeBytes { sp_crc32c(0, $0.baseAddress, n) }
        put32(&b, n, crc)
    }

    /// Assembles a profile from sections, as a newer (or older) writer would: header, table,
    /// sections 8-byte aligned, CRC trailer. Independent of the C encoder.
    static func assemble(
        sections: [(tag: String, bytes: [UInt8])], minor: UInt16 = 0, incompat: UInt64 = 0, roCompat: UInt64 = 0,
        compat: UInt64 = 0
    ) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64 + 16 * sections.count)
        for (i, s) in sections.enumerated() {
            let off = out.count
            out += s.bytes
            while out.count % 8 != 0 { out.append(0) }
            let tag = Array(s.tag.utf8)
            put32(&out, 64 + 16 * i, UInt32(tag[0]) | UInt32(tag[1]) << 8 | UInt32(tag[2]) << 16 | UInt32(tag[3]) << 24)
            put32(&out, 64 + 16 * i + 8, UInt32(off))
            put32(&out, 64 + 16 * i + 12, UInt32(s.bytes.count))
        }
        out += [UInt8](repeating: 0, count: 8)
        out.replaceSubrange(0..<8, with: Array("SPNDLPRF".utf8))
        put16(&out, 8, 1)
        put16(&out, 10, minor)
        put32(&out, 12, 64)
        put64(&out, 16, UInt64(out.count))
        put64(&out, 24, incompat)
        put64(&out, 32, roCompat)
        put64(&out, 40, compat)
        put32(&out, 48, UInt32(sections.count))
        fixCRC(&out)
        return out
    }

    /// The three v1.0 sections of a profile, as (tag, bytes).
    static func sections(of b: [UInt8]) -> [(tag: String, bytes: [UInt8])] {
        ["ENGN", "LANE", "HOST"].enumerated().map { i, tag in
            let off = section(b, i), len = Int(u32(b, 64 + 16 * i + 12))
            return (tag, Array(b[off..<off + len]))
        }
    }

    /// Runs the loader on bytes; the message on refusal, nil on success.
    static func refusal(_ bytes: [UInt8], name: String = "t.spindle") -> String? {
        do {
            _ = try Profile(bytes: bytes, name: name)
            return nil
        } catch { return error.message }
    }
}
