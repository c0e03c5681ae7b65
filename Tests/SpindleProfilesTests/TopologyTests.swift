import CSpindle
import Foundation
import Spindle
import SpindleProfiles
import Testing

@Suite("Host facts from fixture trees, detect placement, host rules")
struct TopologyTests {
    static let two = Support.fixtures + "/two-node"
    static let four = Support.fixtures + "/four-node"

    @Test("the 2-node fixture reads as 2 nodes, 8 CPUs, distances 10/21")
    func readTwoNode() throws {
        let (facts, allowed) = try HostFacts.read(root: Self.two)
        #expect(facts.nodeCPUs == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(facts.distances == [[10, 21], [21, 10]])
        #expect(facts.cpuModel == "Fixture Xeon 2-socket")
        #expect(facts.kernel == "6.1.0-fixture")
        #expect(facts.l2Bytes == 2 << 20 && facts.l3Bytes == 32 << 20 && facts.cacheLine == 64)
        #expect(allowed == Array(0...7))
    }

    @Test("detect on the 2-node fixture: CPU 0 left to housekeeping, workers 1-7, rings on each worker's node")
    func detectTwoNode() throws {
        let d = try HostDetector.detect(root: Self.two)
        #expect(d.placement.map(\.cpu) == Array(1...7))
        #expect(d.placement.map(\.worker) == Array(0..<7))
        #expect(d.placement.map(\.ringNode) == [0, 0, 0, 1, 1, 1, 1])
        #expect(d.source.config.numa_policy == SP_NUMA_LOCAL.rawValue)
        // What detect writes compiles and reads back with the same placement.
        let bytes = try ProfileFiles.compile(toml: d.toml, name: "two.toml")
        let (back, _) = try ProfileSource.decode(bytes, name: "two.spindle")
        #expect(HostDetector.placement(of: back) == d.placement)
    }

    @Test("detect on the 4-node fixture: interleaved numbering, cpuset without 14-15")
    func detectFourNode() throws {
        let d = try HostDetector.detect(root: Self.four)
        #expect(d.source.host.nodeCPUs == [[0, 1, 8, 9], [2, 3, 10, 11], [4, 5, 12, 13], [6, 7, 14, 15]])
        #expect(d.source.host.distances[0] == [10, 12, 32, 32])
        #expect(d.placement.map(\.cpu) == Array(1...13))
        #expect(d.placement.map(\.ringNode) == [0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 1, 2, 2])
    }

    @Test("a small host keeps every CPU as a worker")
    func smallHostKeepsCPU0() throws {
        let d = try HostDetector.detect(root: "/", probeUring: false)
        let (_, allowed) = try HostFacts.read(root: "/")
        if allowed.count < HostDetector.housekeepingThreshold {
            #expect(d.placement.map(\.cpu) == allowed)
        }
    }

    static func compiled(_ d: HostDetector.Detection, cpus: String? = nil) throws -> String {
        var text = d.toml
        if let cpus { text = text.replacingOccurrences(of: "cpus = [" + d.source.cpus.map(String.init).joined(separator: ", ") + "]", with: "cpus = \(cpus)") }
        let path = "/tmp/spindle-topology-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).spindle"
        try ProfileFiles.writeAtomically(try ProfileFiles.compile(toml: text, name: "fixture.toml"), to: path)
        return path
    }

    @Test("validate: same host is clean; another host warns, and --strict refuses")
    func drift() throws {
        let path = try Self.compiled(try HostDetector.detect(root: Self.two))
        defer { unlink(path) }
        #expect(try ProfileFiles.validate(path: path, strict: true, root: Self.two).isEmpty)
        let warnings = try ProfileFiles.validate(path: path, strict: false, root: Self.four)
        #expect(warnings.count == 3)
        #expect(warnings[0] == "\(path): HOST host.cpu_model = \"Fixture Xeon 2-socket\": rule same CPU model as here (\"Fixture EPYC 4-node\"); fix: re-run detect on this host")
        #expect(warnings[1].contains("host.numa_node_cpus = 2 nodes over 8 CPUs: rule same NUMA layout as here (4 nodes over 16 CPUs"))
        #expect(warnings[2].contains("host.kernel = \"6.1.0-fixture\""))
        #expect(throws: SpindleError.self) { try ProfileFiles.validate(path: path, strict: true, root: Self.four) }
    }

    @Test("validate refuses CPUs the host lacks or the process may not use")
    func hostRules() throws {
        let four = try HostDetector.detect(root: Self.four)
        let notAllowed = try Self.compiled(four, cpus: "[1, 14]")
        defer { unlink(notAllowed) }
        do {
            _ = try ProfileFiles.validate(path: notAllowed, strict: false, root: Self.four)
            Issue.record("CPU 14 is outside the fixture's allowed CPUs")
        } catch {
            #expect(error.message == "\(notAllowed): ENGINE engine.cpus = CPU 14 (allowed here: 0-13): rule every CPU is allowed by this process's affinity and cgroup cpuset; fix: use allowed CPUs, or widen the affinity (taskset) / cpuset")
        }
        do {
            _ = try ProfileFiles.validate(path: notAllowed, strict: false, root: Self.two)
            Issue.record("CPU 14 does not exist on the 2-node fixture")
        } catch {
            #expect(error.message == "\(notAllowed): ENGINE engine.cpus = CPU 14 (this host has 0-7): rule every CPU exists on this host; fix: use CPUs from the online list or re-run detect here")
        }
    }
}
