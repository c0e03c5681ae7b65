import CMallocCounter
import CSpindle
import Foundation
import Spindle
import SpindleProfiles
import Testing

/// What a load costs: the `profile-load` budget (≤ 20 µs median) leaves no room for strings or
/// heap traffic on the success path.
@Suite("Loading a profile allocates only the C handle")
struct LoadCostTests {
    /// A profile detect wrote for this very host: no drift, so no warning.
    static func hereProfile() throws -> String {
        let path = FileTests.tempPath("spindle")
        let d = try HostDetector.detect(root: "/", probeUring: false)
        try ProfileFiles.writeAtomically(try ProfileFiles.compile(toml: d.toml, name: "here.toml"), to: path)
        return path
    }

    @Test("open + validate + host check of a profile of this host: one malloc (the handle), no warnings")
    func oneAllocation() throws {
        try #require(spmc_active() != 0, "the malloc interposer is linked into the test bundle")
        let path = try Self.hereProfile()
        defer { unlink(path) }
        _ = try Profile(contentsOf: path).checkHost()  // host facts: read once per process, before counting
        for _ in 0..<3 {
            let before = spmc_thread()
            let warnings: [String]
            do {
                let profile = try Profile(contentsOf: path)
                warnings = try profile.checkHost(strict: true)
            }
            let mallocs = spmc_thread() - before
            #expect(warnings.isEmpty)
            #expect(mallocs == 1)
        }
    }

    @Test("the host's facts are read once per process: the same storage every time")
    func hostFactsOnce() {
        var a: UnsafePointer<UInt64>? = nil
        var b: UnsafePointer<UInt64>? = nil
        let first = sp_host_current(&a)
        let second = sp_host_current(&b)
        #expect(first == second)
        #expect(a == b)
        let before = spmc_thread()
        _ = sp_host_current(nil)
        #expect(spmc_thread() == before)
    }

    @Test("drift lines come back whole, and --strict refuses with the first one")
    func driftLines() throws {
        let path = try TopologyTests.compiled(try HostDetector.detect(root: TopologyTests.two))
        defer { unlink(path) }
        let profile = try Profile(contentsOf: path)
        let (here, allowed) = try HostFacts.read(root: TopologyTests.four)
        var raw = here.cValue()
        var bits = [UInt64](repeating: 0, count: Int(SP_CPU_WORDS))
        for cpu in allowed { bits[cpu / 64] |= 1 << UInt64(cpu % 64) }
        var cfg = profile.rawConfiguration
        var recorded = profile.rawHost
        let lines = try Profile.checkHost(&cfg, &recorded, here: &raw, allowed: bits, strict: false, name: path)
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.hasPrefix("\(path): HOST host.") && !$0.contains("\n") })
        do {
            _ = try Profile.checkHost(&cfg, &recorded, here: &raw, allowed: bits, strict: true, name: path)
            Issue.record("strict must refuse on drift")
        } catch {
            #expect(error.message == lines[0] + " (--strict)")
        }
    }
}
