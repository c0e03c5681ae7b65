import CSpindle
import Testing

@testable import Spindle

/// Every configuration rule refuses with one line: key, value, rule, fix.
@Suite struct ConfigurationTests {
    @Test func hostDefaultIsTheDocumentedEmbeddedDefault() throws {
        let c = Engine.Configuration.hostDefault
        #expect(!c.cpus.isEmpty)
        #expect(c.lanes.map(\.name) == ["critical", "high", "normal", "bulk"])
        #expect(c.lanes.map(\.policy) == [.strict(budget: 64), .weighted(weight: 8), .weighted(weight: 4), .weighted(weight: 1)])
        #expect(c.lanes.allSatisfy { $0.capacity == 4096 && $0.onFull == .reject && $0.maxBatch == 32 })
        #expect(c.spin == .microseconds(50))
        try c.validate()
    }

    @Test func roundTripsThroughTheCStruct() throws {
        var c = Engine.Configuration.hostDefault
        c.lanes[1].onFull = .block(timeout: .milliseconds(3))
        c.lanes[2].onFull = .drop
        c.numaPolicy = .interleave
        c.backend = .epoll
        c.slowBatchThreshold = nil
        #expect(Engine.Configuration(try c.cValue()) == c)
    }

    static let broken: [(String, @Sendable (inout Engine.Configuration) -> Void, String)] = [
        ("duplicate CPU", { $0.cpus = [0, 0] }, "engine.cpus[1] = 0: rule each CPU at most once (also engine.cpus[0]); fix: remove the duplicate"),
        ("no CPU", { $0.cpus = [] }, "engine.cpus = 0 CPUs: rule 1...256 workers; fix: list between 1 and 256 CPUs"),
        ("no lanes", { $0.lanes = [] }, "lanes = 0 lanes: rule 1...8 lanes; fix: define between 1 and 8 lanes"),
        ("capacity not a power of two", { $0.lanes[2].capacity = 1000 }, "lanes.normal.capacity = 1000: rule a power of two in 64...4194304; fix: use 1024"),
        ("capacity too small", { $0.lanes[2].capacity = 32 }, "lanes.normal.capacity = 32: rule a power of two in 64...4194304; fix: use 64"),
        ("weight zero", { $0.lanes[1].policy = .weighted(weight: 0) }, "lanes.high.weight = 0: rule 1...1024; fix: use 1 for the lowest share"),
        ("budget zero", { $0.lanes[0].policy = .strict(budget: 0) }, "lanes.critical.budget = 0: rule 1...65536 events per round; fix: use 64"),
        ("max batch over capacity", { $0.lanes[3].capacity = 64; $0.lanes[3].maxBatch = 128 }, "lanes.bulk.max_batch = 128: rule at most the lane's capacity (64); fix: use 64 or raise capacity"),
        ("max batch zero", { $0.lanes[3].maxBatch = 0 }, "lanes.bulk.max_batch = 0: rule 1...1024; fix: use 32"),
        ("strict after weighted", { $0.lanes[2].policy = .strict(budget: 8) }, "lanes.normal.policy = strict: rule strict lanes come before every weighted lane (lane 0 is the highest); fix: move lane \"normal\" above the weighted lanes"),
        ("duplicate name", { $0.lanes[3].name = "high" }, "lanes.high.name = \"high\": rule lane names are unique (also lanes[1]); fix: rename one"),
        ("empty name", { $0.lanes[3].name = "" }, "lanes[3].name = \"\": rule 1...31 bytes of UTF-8; fix: use a shorter name"),
        ("long name", { $0.lanes[3].name = String(repeating: "x", count: 32) }, "lanes[3].name = \"\(String(repeating: "x", count: 32))\": rule 1...31 bytes of UTF-8; fix: use a shorter name"),
        ("uring entries", { $0.uringEntries = 100 }, "engine.uring_entries = 100: rule a power of two in 8...32768; fix: use 128"),
        ("spin too long", { $0.spin = .seconds(2) }, "engine.spin_us = 2000000: rule at most 1000000 (1 s); fix: use 50 (a wake-up costs ~20 us here)"),
        ("nine lanes", { c in c.lanes = (0..<9).map { .init(name: "l\($0)", policy: .weighted(weight: 1)) } }, "lanes = 9 lanes: rule 1...8 lanes; fix: define between 1 and 8 lanes"),
        ("CPU missing on this host", { $0.cpus = [4000] }, "engine.cpus[0] = 4000: rule the CPU exists on this host"),
    ]

    @Test(arguments: 0..<broken.count)
    func brokenConfigurationIsRefusedWithItsRule(index: Int) {
        let (name, edit, message) = Self.broken[index]
        var c = Engine.Configuration.hostDefault
        edit(&c)
        do {
            try c.validate()
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.hasPrefix(message), "\(name): \(error.message)")
        }
    }

    /// Host rules are separate: a CPU this machine lacks is fine until validated for this host.
    @Test func hostRulesAreCheckedOnlyForThisHost() throws {
        var c = Engine.Configuration.hostDefault
        c.cpus = [4000]
        try c.validate(host: false)
        #expect(throws: SpindleError.self) { try c.validate(host: true) }
    }
}
