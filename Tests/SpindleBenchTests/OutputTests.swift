import Foundation
import FoundationXML
import Spindle
import Testing

@testable import SpindleBench

@Suite("Table, plot, targets")
struct OutputTests {
    @Test("the SVG parses as XML and labels every plotted system")
    func svgWellFormed() throws {
        let svg = SVGPlot(Fixtures.report).render()
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        for name in ["raw-msgring", "mutex-queue", "spindle (unflooded)", "wake-worker", "priority-isolation"] {
            #expect(svg.contains(name))
        }
        #expect(svg.contains("<polyline"))
    }

    @Test("an SVG without latency rows is still well formed")
    func svgEmpty() {
        let report = Report(machine: [], config: [], rows: [Fixtures.throughputRow(.crossCore, .spindle, seconds: [1])])
        #expect(XMLParser(data: Data(SVGPlot(report).render().utf8)).parse())
    }

    @Test("the table has a line per row and ratios to Spindle")
    func table() {
        let text = TableReport(Fixtures.report).render()
        #expect(text.contains("cross-core"))
        #expect(text.contains("×1.33"))  // raw-c-ring 66.7 M/s over spindle's median 50 M/s
        let md = TableReport(Fixtures.report).markdown()
        #expect(md.split(separator: "\n").count == Fixtures.report.rows.count + 2)
    }

    @Test("targets are evaluated from ratios of medians")
    func targets() throws {
        let t = Fixtures.report.targets
        let ring = try #require(t.first { $0.requirement == "spindle ≥ 0.6 × raw-c-ring" })
        #expect(ring.holds == true)  // 50 M/s vs 66.7 M/s = 0.75
        let dispatch = try #require(t.first { $0.requirement == "spindle ≥ 15.0 × dispatch" })
        #expect(dispatch.holds == true)  // 50 M/s vs 2 M/s
        let wake = try #require(t.first { $0.name == "5 wake-worker" })
        #expect(wake.holds == true)  // 20 vs 19 per step
        let fifo = try #require(t.first { $0.requirement == "best FIFO peer p99 ≥ 100 × spindle p99" })
        #expect(fifo.holds == true)
        let mallocs = try #require(t.first { $0.name == "6 mallocs" })
        #expect(mallocs.holds == true)
        let foreign = try #require(t.first { $0.name == "3 foreign-thread" })
        #expect(foreign.holds == nil)  // not in this run
    }

    @Test("a FIFO peer that did not hold the backlog is not the priority baseline")
    func heldBacklog() throws {
        var report = Fixtures.report
        var fast = Fixtures.latencyRow(.priorityIsolation, .rawMPSC, scale: 2, backlog: 4000)
        for i in fast.trials.indices { fast.trials[i].meanDepth = 100 }  // its queue never built up
        report.rows.append(fast)
        let fifo = try #require(report.targets.first { $0.requirement == "best FIFO peer p99 ≥ 100 × spindle p99" })
        #expect(fifo.measured?.hasPrefix("mutex-queue") == true)
    }

    @Test("duration and rate formatting")
    func formatting() {
        #expect(TableReport.duration(850) == "850 ns")
        #expect(TableReport.duration(1_234) == "1.23 µs")
        #expect(TableReport.duration(42_100_000) == "42.1 ms")
        #expect(TableReport.rate(61_500_000) == "61.5 M")
        #expect(TableReport.rate(770_000) == "770 k")
    }
}

@Suite("Options")
struct OptionTests {
    @Test("no scenario means all of them, in order")
    func all() throws {
        #expect(try BenchOptions().resolve() == Scenario.allCases)
    }

    @Test("named scenarios are kept in order without duplicates")
    func named() throws {
        #expect(
            try BenchOptions(scenarios: ["wake-worker", "cross-core", "wake-worker"]).resolve() == [
                .wakeWorker, .crossCore,
            ])
    }

    @Test("an unknown scenario is refused with the list of scenarios")
    func unknown() {
        #expect(throws: BenchError.unknownScenario("crosscore")) {
            try BenchOptions(scenarios: ["crosscore"]).resolve()
        }
        #expect(BenchError.unknownScenario("x").description.contains("cross-core"))
    }

    @Test("runs out of range and a non-SVG plot are refused")
    func invalid() {
        #expect(throws: BenchError.self) { try BenchOptions(runs: 0).resolve() }
        #expect(throws: BenchError.self) { try BenchOptions(plot: "out.png").resolve() }
        #expect(throws: Never.self) { try BenchOptions(runs: 5, json: "out.json", plot: "out.svg").resolve() }
    }

    @Test("backlog and work are range-checked and applied to the configuration")
    func priorityOptions() throws {
        #expect(throws: BenchError.self) { try BenchOptions(backlog: 4096).resolve() }
        #expect(throws: BenchError.self) { try BenchOptions(work: -1).resolve() }
        let cfg = Spindle.Engine.Configuration(cpus: [0, 1], lanes: [.init(name: "a", policy: .strict(budget: 64))])
        var config = BenchConfig(engine: cfg, engineSource: "test")
        BenchOptions(backlog: 1000, work: 7).apply(to: &config)
        #expect(config.backlog == 1000 && config.workIterations == 7)
    }

    @Test("quick sizes are smaller and default to 3 runs")
    func quick() {
        let cfg = Spindle.Engine.Configuration(cpus: [0, 1], lanes: [.init(name: "a", policy: .strict(budget: 64))])
        let full = BenchConfig(engine: cfg, engineSource: "test")
        let quick = BenchConfig(engine: cfg, engineSource: "test", quick: true)
        #expect(full.runs == 5 && quick.runs == 3)
        #expect(quick.events(.fast) < full.events(.fast))
        #expect(BenchConfig(engine: cfg, engineSource: "test", runs: 7).runs == 7)
    }
}
