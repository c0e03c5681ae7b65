import CSpindle
import Spindle
import SpindleProfiles
import Testing

@Suite("Format evolution: feature bits and newer minors")
struct CompatibilityTests {
    @Test("a hand-built v1.1 file with a compat section loads and means the same configuration")
    func v11WithCompatSection() throws {
        let base = try Support.baseBytes()
        var sections = Support.sections(of: base)
        // v1.1 appends a HINT section (announced by compat bit 0) and a field to ENGINE.
        sections[0].bytes += [UInt8](repeating: 0xAB, count: 8)
        sections.append((tag: "HINT", bytes: Array("prefetch=on\0\0\0\0\0".utf8)))
        let v11 = Support.assemble(sections: sections, minor: 1, compat: 0x1)
        let profile = try Profile(bytes: v11, name: "v11.spindle")
        let reference = try Profile(bytes: base, name: "base.spindle")
        let (cfg, refCfg, info, readOnly) = (profile.configuration, reference.configuration, profile.info, profile.isReadOnly)
        #expect(cfg == refCfg)
        #expect(info.version_minor == 1)
        #expect(info.compat == 1)
        #expect(!readOnly)
        // inspect shows the v1.0 keys, and compiling them gives the v1.0 file back.
        let shown = try ProfileFiles.inspect(bytes: v11, name: "v11.spindle")
        #expect(try ProfileFiles.compile(toml: shown, name: "v11.toml") == base)
    }

    @Test("a v1.0 file may not carry v1.1 lengths")
    func v10IsExact() throws {
        var sections = Support.sections(of: try Support.baseBytes())
        sections[0].bytes += [UInt8](repeating: 0, count: 8)
        let bad = Support.assemble(sections: sections, minor: 0)
        #expect(Support.refusal(bad) == "t.spindle: ENGINE length = 568 (v1.0: 560): rule exactly the v1.0 length; fix: recompile it with `spindle profile compile`")
    }

    @Test("an unknown incompat bit is refused")
    func unknownIncompat() throws {
        let file = Support.assemble(sections: Support.sections(of: try Support.baseBytes()), minor: 1, incompat: 1 << 9)
        #expect(Support.refusal(file) == "t.spindle: header incompat = 0x0000000000000200 (unknown bits 0x200): rule every incompatible feature bit is known to this loader; fix: use a spindle that knows these features, or recompile the profile with this one")
    }

    @Test("an unknown ro_compat bit loads but is marked never to be rewritten")
    func unknownROCompat() throws {
        let file = Support.assemble(sections: Support.sections(of: try Support.baseBytes()), minor: 1, roCompat: 1 << 3)
        let profile = try Profile(bytes: file, name: "ro.spindle")
        let readOnly = profile.isReadOnly
        #expect(readOnly)
        #expect(try ProfileFiles.inspect(bytes: file, name: "ro.spindle").contains("WARNING: the file has read-only-compatible features"))
    }

    @Test("an unknown section tag among the first three is refused, after them it is skipped")
    func unknownSections() throws {
        var sections = Support.sections(of: try Support.baseBytes())
        sections.insert((tag: "XTRA", bytes: [UInt8](repeating: 0, count: 8)), at: 1)
        #expect(Support.refusal(Support.assemble(sections: sections, minor: 1))?.contains("rule ENGINE, LANES, HOST come first") == true)
        sections.remove(at: 1)
        sections.append((tag: "XTRA", bytes: [UInt8](repeating: 0, count: 8)))
        #expect(Support.refusal(Support.assemble(sections: sections, minor: 1)) == nil)
        sections.append((tag: "LANE", bytes: sections[1].bytes))
        #expect(Support.refusal(Support.assemble(sections: sections, minor: 1))?.contains("rule each section appears once") == true)
    }
}
