import CSpindle
import Foundation
import Spindle
import SpindleProfiles
import Testing

@Suite("engine.apply(profile:) retunes live what can change live")
struct ApplyProfileTests {
    /// The base profile moved onto one CPU this process may use.
    static func toml(weight: Int = 4, capacity: Int = 4096, spin: Int = 50) throws -> String {
        let (_, allowed) = try HostFacts.read(root: "/")
        return Support.baseTOML.replacingOccurrences(of: "cpus = [0, 1]", with: "cpus = [\(allowed[0])]")
            .replacingOccurrences(of: "numa_node_cpus = [\"0-1\"]", with: "numa_node_cpus = [\"\(CPUList.format(0...max(1, allowed.last!)))\"]")
            .replacingOccurrences(of: "weight = 4", with: "weight = \(weight)\ncapacity = \(capacity)")
            .replacingOccurrences(of: "spin_us = 50", with: "spin_us = \(spin)")
    }

    static func write(_ toml: String) throws -> String {
        let path = "\(NSTemporaryDirectory())/spindle-apply-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).spindle"
        try ProfileFiles.writeAtomically(try ProfileFiles.compile(toml: toml, name: "apply.toml"), to: path)
        return path
    }

    @Test("weights and spin change live; a capacity change is refused with a message")
    func applyProfile() throws {
        let start = try Self.write(try Self.toml())
        let tuned = try Self.write(try Self.toml(weight: 6, spin: 80))
        let resized = try Self.write(try Self.toml(capacity: 8192))
        defer { for p in [start, tuned, resized] { unlink(p) } }
        let engine = try Engine.Builder(configuration: try Engine.Configuration(profile: start)).start()
        defer { _ = try? engine.shutdownBlocking(deadline: .now + .seconds(5)) }

        try engine.apply(profile: tuned)
        let now = engine.currentConfiguration
        #expect(now.lanes[1].policy == .weighted(weight: 6))
        #expect(now.spin == .microseconds(80))

        do {
            try engine.apply(profile: resized)
            Issue.record("a capacity change was applied live")
        } catch {
            #expect(error.code == .notLive)
            #expect(error.message.contains("capacity"))
        }
        let after = engine.currentConfiguration
        #expect(after.lanes[1].capacity == 4096)
    }
}
