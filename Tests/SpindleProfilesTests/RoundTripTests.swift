import CSpindle
import Spindle
import SpindleProfiles
import Testing

@Suite("TOML <-> binary round trip")
struct RoundTripTests {
    @Test("compile(inspect(p)) == p for every example profile", arguments: try! Support.exampleFiles())
    func examplesRoundTrip(path: String) throws {
        let text = String(decoding: try ProfileFiles.read(path), as: UTF8.self)
        let p = try ProfileFiles.compile(toml: text, name: path)
        let shown = try ProfileFiles.inspect(bytes: p, name: "p.spindle")
        let again = try ProfileFiles.compile(toml: shown, name: "inspected.toml")
        #expect(again == p)
        // And inspect is a fixed point on text too: the canonical form does not drift.
        #expect(try ProfileFiles.inspect(bytes: again, name: "p.spindle") == shown)
    }

    @Test("examples cover the default-like, NUMA and latency-tuned cases")
    func examplesPresent() throws {
        let names = try Support.exampleFiles().map { String($0.split(separator: "/").last!) }
        #expect(names.count >= 3)
        #expect(names.contains("numa-2node.toml") && names.contains("latency.toml") && names.contains("reference-host.toml"))
    }

    @Test("editing one TOML value changes only that field and the CRC")
    func oneEditOneField() throws {
        let a = try Support.baseBytes()
        let edited = Support.baseTOML.replacingOccurrences(of: "weight = 4", with: "weight = 5")
        let b = try ProfileFiles.compile(toml: edited, name: "edited.toml")
        #expect(a.count == b.count)
        let differing = Set((0..<a.count).filter { a[$0] != b[$0] })
        let lanes = Support.section(a, 1)
        let weightField = lanes + 8 + 1 * 64 + 40  // LANES record 1 (normal), offset 40: weight
        let crc = a.count - 8
        #expect(differing.isSubset(of: Set(weightField..<weightField + 4).union(crc..<crc + 4)))
        #expect(differing.contains(weightField))
        #expect(!differing.isDisjoint(with: crc..<crc + 4))
        #expect(Support.u32(b, weightField) == 5)
    }

    @Test("the same source gives the same bytes, and the host facts come from the TOML, not this machine")
    func deterministicAndHostFromTOML() throws {
        let a = try Support.baseBytes(), b = try Support.baseBytes()
        #expect(a == b)
        let (src, _) = try ProfileSource.decode(a, name: "a")
        #expect(src.host.cpuModel == "Test CPU")
        #expect(src.host.kernel == "6.18.0-test")
        #expect(src.host.wakeNanoseconds == 21000)
    }

    @Test("a hand-built file equals the C encoder's output byte for byte")
    func independentAssembler() throws {
        let a = try Support.baseBytes()
        #expect(Support.assemble(sections: Support.sections(of: a)) == a)
    }

    @Test("the loader turns a profile into Engine.Configuration")
    func configuration() throws {
        let profile = try Profile(bytes: try Support.baseBytes(), name: "base")
        let cfg = profile.configuration
        #expect(cfg.cpus == [0, 1])
        #expect(cfg.spin == .microseconds(50))
        #expect(cfg.lanes.map(\.name) == ["critical", "normal", "bulk"])
        #expect(cfg.lanes[0].policy == .strict(budget: 64))
        #expect(cfg.lanes[1].policy == .weighted(weight: 4))
        #expect(cfg.lanes[2].onFull == .block(timeout: .microseconds(1000)))
    }

    @Test("diff reports differences by key")
    func diffByKey() throws {
        let a = try ProfileSource.parse(toml: Support.baseTOML, name: "a")
        let b = try ProfileSource.parse(
            toml: Support.baseTOML.replacingOccurrences(of: "spin_us = 50", with: "spin_us = 80")
                .replacingOccurrences(of: "weight = 1\n", with: "weight = 2\n"), name: "b")
        #expect(ProfileDiff.changes(a, b).map(\.description) == ["engine.spin_us: 50 -> 80", "lanes.bulk.weight: 1 -> 2"])
        #expect(ProfileDiff.changes(a, a).isEmpty)
    }
}
