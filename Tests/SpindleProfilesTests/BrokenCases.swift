import CSpindle
import Spindle
import SpindleProfiles

/// One broken input: either profile bytes (the loader) or a TOML source (the compiler).
struct BrokenCase: Sendable, CustomStringConvertible {
    enum Input: Sendable {
        case bytes([UInt8])
        case toml(String)
    }
    var name: String
    var input: Input
    var description: String { name }
}

/// The table of broken inputs: each starts from ``Support/baseBytes()`` (or its TOML) and breaks
/// exactly one thing. Offsets follow docs/profile-format.md.
enum BrokenCases {
    static func all() throws -> [BrokenCase] {
        let base = try Support.baseBytes()
        let E = Support.section(base, 0), L = Support.section(base, 1), H = Support.section(base, 2)
        let lane = { (i: Int) in L + 8 + 64 * i }
        var cases: [BrokenCase] = []

        func bytes(_ name: String, crc: Bool = true, _ edit: (inout [UInt8]) -> Void) {
            var b = base
            edit(&b)
            if crc { Support.fixCRC(&b) }
            cases.append(BrokenCase(name: name, input: .bytes(b)))
        }
        func toml(_ name: String, _ text: String) { cases.append(BrokenCase(name: name, input: .toml(text))) }
        func tomlEdit(_ name: String, _ from: String, _ to: String) {
            precondition(Support.baseTOML.contains(from), name)
            toml(name, Support.baseTOML.replacingOccurrences(of: from, with: to))
        }

        // Truncated at every header field.
        for (field, size) in [("empty", 0), ("magic", 5), ("version_major", 9), ("version_minor", 11),
                              ("header_length", 14), ("total_length", 20), ("incompat", 30), ("ro_compat", 36),
                              ("compat", 44), ("section_count", 50), ("reserved", 60)] {
            cases.append(BrokenCase(name: "truncated in \(field)", input: .bytes(Array(base.prefix(size)))))
        }
        cases.append(BrokenCase(name: "truncated in a section", input: .bytes(Array(base.prefix(base.count - 64)))))
        bytes("bad magic", crc: false) { $0[0] = UInt8(ascii: "X") }
        bytes("major version 2") { Support.put16(&$0, 8, 2) }
        bytes("header length 32") { Support.put32(&$0, 12, 32) }
        bytes("header length 72 in v1.0") { Support.put32(&$0, 12, 72) }
        bytes("trailing bytes", crc: false) { $0 += [UInt8](repeating: 0, count: 8) }
        bytes("unknown incompat bit") { Support.put64(&$0, 24, 1 << 5) }
        bytes("section count 2") { Support.put32(&$0, 48, 2) }
        bytes("section count 17") { Support.put32(&$0, 48, 17) }
        bytes("reserved header bytes") { $0[56] = 1 }
        bytes("bad CRC", crc: false) { $0[E + 8] ^= 0x01 }
        bytes("trailer reserved") { $0[$0.count - 1] = 7 }
        // Section table.
        bytes("sections out of order") {
            Support.put32(&$0, 64, Support.u32(base, 80))
            Support.put32(&$0, 80, Support.u32(base, 64))
        }
        bytes("section flags") { Support.put32(&$0, 64 + 16 + 4, 1) }
        bytes("section offset unaligned") { Support.put32(&$0, 64 + 16 + 8, UInt32(L + 4)) }
        bytes("section out of bounds") { Support.put32(&$0, 64 + 32 + 12, 1 << 20) }
        bytes("sections overlap") { Support.put32(&$0, 64 + 16 + 8, UInt32(L - 8)) }
        bytes("section table runs into the sections") { Support.put32(&$0, 48, 16) }
        // ENGINE fields.
        bytes("worker count 0") { Support.put32(&$0, E + 0, 0) }
        bytes("worker count disagrees with the CPU bitmap") { Support.put32(&$0, E + 0, 3) }
        bytes("numa policy 3") { Support.put32(&$0, E + 4, 3) }
        bytes("spin over 1 s") { Support.put64(&$0, E + 8, 2_000_000_000) }
        bytes("spin not whole microseconds") { Support.put64(&$0, E + 8, 50_500) }
        bytes("uring entries not a power of two") { Support.put32(&$0, E + 16, 100) }
        bytes("uring entries too many") { Support.put32(&$0, E + 16, 65536) }
        bytes("uring flags unknown bit") { Support.put32(&$0, E + 20, 0x4) }
        bytes("backend 3") { Support.put32(&$0, E + 24, 3) }
        bytes("eager ring bytes over 1 TiB") { Support.put64(&$0, E + 32, 1 << 41) }
        bytes("slow batch over 60 s") { Support.put64(&$0, E + 40, 61_000_000_000) }
        bytes("CPU not on the recorded host") { Support.put64(&$0, E + 48, 0b101); }
        // LANES fields.
        bytes("lane count 0") { Support.put32(&$0, L, 0) }
        bytes("lane count 9") { Support.put32(&$0, L, 9) }
        bytes("lane record size 72 in v1.0") { Support.put32(&$0, L + 4, 72) }
        bytes("lane name empty") { $0.replaceSubrange(lane(0)..<lane(0) + 32, with: [UInt8](repeating: 0, count: 32)) }
        bytes("lane name with a space") { $0[lane(0) + 2] = UInt8(ascii: " ") }
        bytes("lane name not terminated") { $0.replaceSubrange(lane(0)..<lane(0) + 32, with: [UInt8](repeating: 0x61, count: 32)) }
        bytes("lane name bytes after the NUL") { $0[lane(0) + 30] = 0x61 }
        bytes("duplicate lane names") { $0.replaceSubrange(lane(2)..<lane(2) + 32, with: base[lane(1)..<lane(1) + 32]) }
        bytes("lane policy 2") { Support.put32(&$0, lane(1) + 32, 2) }
        bytes("strict budget 0") { Support.put32(&$0, lane(0) + 36, 0) }
        bytes("strict budget over 65536") { Support.put32(&$0, lane(0) + 36, 70000) }
        bytes("strict lane with a weight") { Support.put32(&$0, lane(0) + 40, 3) }
        bytes("weight 0") { Support.put32(&$0, lane(1) + 40, 0) }
        bytes("weight over 1024") { Support.put32(&$0, lane(1) + 40, 2000) }
        bytes("weighted lane with a budget") { Support.put32(&$0, lane(1) + 36, 9) }
        bytes("strict lane after a weighted lane") {
            Support.put32(&$0, lane(2) + 32, 0)
            Support.put32(&$0, lane(2) + 36, 8)
            Support.put32(&$0, lane(2) + 40, 0)
        }
        bytes("capacity not a power of two") { Support.put32(&$0, lane(0) + 44, 100) }
        bytes("capacity below 64") { Support.put32(&$0, lane(0) + 44, 32) }
        bytes("on_full 3") { Support.put32(&$0, lane(0) + 48, 3) }
        bytes("max batch 0") { Support.put32(&$0, lane(0) + 52, 0) }
        bytes("max batch over 1024") { Support.put32(&$0, lane(0) + 52, 2000) }
        bytes("max batch over capacity") {
            Support.put32(&$0, lane(0) + 44, 64)
            Support.put32(&$0, lane(0) + 52, 128)
        }
        bytes("block timeout on a reject lane") { Support.put64(&$0, lane(0) + 56, 5000) }
        bytes("block timeout over an hour") { Support.put64(&$0, lane(2) + 56, 4_000_000_000_000) }
        // HOST fields.
        bytes("cpu span over 4096") { Support.put32(&$0, H + 8, 5000) }
        bytes("numa nodes 17") { Support.put32(&$0, H + 12, 17) }
        bytes("distance diagonal 11") { $0[H + 168] = 11 }
        bytes("cpu model not printable") { $0[H + 40] = 0x07 }
        bytes("fingerprint mismatch") { $0[H] ^= 0xff }
        bytes("CPU on a node that does not exist") { $0[H + 424] = 3 }
        // TOML: schema, types, ranges.
        tomlEdit("unknown engine key", "spin_us = 50", "spn_us = 50")
        tomlEdit("unknown top-level table", "[host]", "[hosts]")
        tomlEdit("unknown lane key", "weight = 4", "wieght = 4")
        tomlEdit(
            "unknown key in a lane with an invalid name", "name = \"normal\"\npolicy = \"weighted\"\nweight = 4",
            "name = \"nor mal\"\npolicy = \"weighted\"\nwieght = 4")
        tomlEdit(
            "unknown key in a lane without a name", "name = \"normal\"\npolicy = \"weighted\"\nweight = 4",
            "policy = \"weighted\"\nwieght = 4")
        tomlEdit("spin as a string", "spin_us = 50", "spin_us = \"fast\"")
        tomlEdit("cpus as a string", "cpus = [0, 1]", "cpus = \"0-1\"")
        tomlEdit("weight as a float", "weight = 4", "weight = 4.5")
        tomlEdit("on_full misspelled", "on_full = \"block\"", "on_full = \"blok\"")
        tomlEdit("cpus not ascending", "cpus = [0, 1]", "cpus = [1, 0]")
        tomlEdit("negative spin", "spin_us = 50", "spin_us = -5")
        tomlEdit("strict lane without a budget", "budget = 64", "")
        tomlEdit("weight out of range (from the loader)", "weight = 4", "weight = 0")
        tomlEdit("capacity out of range (from the loader)", "name = \"normal\"", "name = \"normal\"\ncapacity = 1000")
        tomlEdit("lane name too long", "\"critical\"", "\"critical-lane-with-a-very-long-name\"")
        tomlEdit("unknown io_uring feature", "[\"msg_ring\"]", "[\"msgring\"]")
        toml("TOML syntax error", "[engine\ncpus = [0]")
        // Found by the TOML fuzzer: table headers TOMLKit's toml++ asserted on (now our parser's errors).
        toml("table header starting with a non-ASCII character", "[engine]\ncpus = [0]\n[\u{E9}]\n")
        toml("table header starting with bytes that are not UTF-8", String(decoding: [0x5B, 0xFF] as [UInt8], as: UTF8.self))
        toml("array-of-tables header starting with a control character", "[[ \u{1}]]\n")
        toml("table header after a byte-order mark", "\u{FEFF}[\u{C8}]\n")
        toml("unknown key holding an array of tables (quoted on one line)", "[engine]\ncpus = [0]\n[[alnes]]\nname = \"a\"\n[[alnes]]\nname = \"b\"\n")
        toml("a bracket inside a multi-line string is not a header", "[engine]\ncpus = [0]\n[host]\ncpu_model = \"\"\"\n[\u{E9}\"\"\"\n")
        toml("no lanes", "[engine]\ncpus = [0]\n")
        toml("no engine", "[[lanes]]\nname = \"a\"\npolicy = \"weighted\"\nweight = 1\n")
        return cases
    }
}
