import Foundation
import FoundationXML
import Spindle
import Testing

@testable import SpindleBench

/// The I/O scenarios' pure parts: names, groups and companions, targets, table and plot. The
/// scenarios themselves are measured by `spindle bench timer echo io-priority`.
@Suite("I/O scenarios")
struct IOScenarioTests {
    @Test("the I/O scenario names parse, and every scenario still runs when none is named")
    func names() throws {
        #expect(try Scenario.parse(["timer"]) == [.timer])
        #expect(try Scenario.parse(["echo-1"]) == [.echo1])
        #expect(try Scenario.parse(["echo-64"]) == [.echo64])
        #expect(try Scenario.parse(["io-priority-unloaded"]) == [.ioPriorityUnloaded])
        let all = try Scenario.parse([])
        for s in [Scenario.timer, .echo1, .echo64, .ioPriority, .ioPriorityUnloaded] { #expect(all.contains(s)) }
    }

    @Test("`echo` stands for echo-1 and echo-64; `io-priority` brings its unloaded baseline")
    func groupsAndCompanions() throws {
        #expect(try Scenario.parse(["echo"]) == [.echo1, .echo64])
        #expect(try Scenario.parse(["io-priority"]) == [.ioPriority, .ioPriorityUnloaded])
        #expect(
            try BenchOptions(scenarios: ["timer", "echo", "io-priority"]).resolve() == [
                .timer, .echo1, .echo64, .ioPriority, .ioPriorityUnloaded,
            ])
        // no duplicates, first mention wins the order
        #expect(try Scenario.parse(["echo-64", "echo", "io-priority-unloaded", "io-priority"]) == [
            .echo64, .echo1, .ioPriorityUnloaded, .ioPriority,
        ])
    }

    @Test("an unknown name lists the scenarios and the groups")
    func unknown() {
        #expect(throws: BenchError.unknownScenario("echo-2")) { try Scenario.parse(["echo-2"]) }
        let text = BenchError.unknownScenario("x").description
        #expect(text.contains("timer") && text.contains("io-priority") && text.contains("echo (= echo-1 + echo-64)"))
    }

    @Test("timer and io-priority are latency scenarios; echo is a throughput scenario with RTTs; all are plotted")
    func kinds() {
        #expect(Scenario.timer.isLatency && Scenario.ioPriority.isLatency && Scenario.ioPriorityUnloaded.isLatency)
        #expect(!Scenario.echo1.isLatency && !Scenario.echo64.isLatency)
        for s in [Scenario.timer, .echo1, .echo64, .ioPriority, .ioPriorityUnloaded] { #expect(s.isPlotted) }
        #expect(SpindleIO.connections(.echo1) == 1 && SpindleIO.connections(.echo64) == 64)
    }

    @Test("round sizes: the issue's 2,000 timer firings (500 quick) and smaller quick echo rounds")
    func sizes() {
        let cfg = Engine.Configuration(cpus: [0, 1], lanes: [.init(name: "a", policy: .strict(budget: 64))])
        let full = BenchConfig(engine: cfg, engineSource: "test")
        let quick = BenchConfig(engine: cfg, engineSource: "test", quick: true)
        #expect(full.timerFirings == 2000 && quick.timerFirings == 500)
        #expect(full.timerPeriodNanoseconds == 1_000_000 && full.echoMessageBytes == 64)
        #expect(quick.echoMessages(connections: 64) < full.echoMessages(connections: 64))
        #expect(quick.echoMessages(connections: 1) < full.echoMessages(connections: 1))
        #expect(full.ioPriorityBulkConnections == 64 && quick.ioPriorityPings < full.ioPriorityPings)
        let keys = full.json.map(\.0)
        for k in ["timer_firings", "echo_messages_64", "io_priority_pings", "echo_message_bytes"] {
            #expect(keys.contains(k))
        }
    }

    /// echo rows whose rounds took `seconds` for 1,000,000 messages; io-priority rows scaled as given.
    static func report(
        echo64Spindle: Double, echo64Uring: Double, echo64Epoll: Double, echo1Spindle: Double, echo1Epoll: Double,
        floodedScale: UInt64, unloadedScale: UInt64
    ) -> Report {
        Report(
            machine: [], config: [],
            rows: [
                Fixtures.throughputRow(.echo1, .spindle, seconds: [echo1Spindle]),
                Fixtures.throughputRow(.echo1, .rawEpoll, seconds: [echo1Epoll]),
                Fixtures.throughputRow(.echo64, .spindle, seconds: [echo64Spindle]),
                Fixtures.throughputRow(.echo64, .rawUring, seconds: [echo64Uring]),
                Fixtures.throughputRow(.echo64, .rawEpoll, seconds: [echo64Epoll]),
                Fixtures.latencyRow(.ioPriority, .spindle, scale: floodedScale),
                Fixtures.latencyRow(.ioPriority, .rawEpoll, scale: floodedScale * 10),
                Fixtures.latencyRow(.ioPriorityUnloaded, .spindle, scale: unloadedScale),
                Fixtures.latencyRow(.timer, .spindle, scale: 30),
                Fixtures.latencyRow(.timer, .rawTimerfd, scale: 30),
            ])
    }

    @Test("echo targets are ratios of messages/s; io-priority compares p99 with the unloaded p99")
    func targetsHold() throws {
        // spindle 1.0 s, raw-uring 0.9 s (spindle 0.9 ×), raw-epoll 1.5 s (spindle 1.5 ×)
        let r = Self.report(
            echo64Spindle: 1.0, echo64Uring: 0.9, echo64Epoll: 1.5, echo1Spindle: 1.0, echo1Epoll: 0.95,
            floodedScale: 3, unloadedScale: 2)
        let t = r.targets
        let uring = try #require(t.first { $0.name == "7 echo-64" && $0.requirement == "spindle ≥ 0.8 × raw-uring" })
        #expect(uring.holds == true && uring.measured == "0.90 ×")
        let epoll = try #require(t.first { $0.name == "7 echo-64" && $0.requirement == "spindle ≥ 1.3 × raw-epoll" })
        #expect(epoll.holds == true)
        let one = try #require(t.first { $0.name == "7 echo-1" })
        #expect(one.requirement == "spindle ≥ 0.9 × raw-epoll" && one.holds == true)  // 0.95
        let prio = try #require(t.first { $0.name == "8 io-priority" })
        #expect(prio.holds == true)  // 1.5 ×
        #expect(prio.measured?.hasSuffix("= 1.50 ×") == true)
        #expect(r.renderTargets().contains("holds   8 io-priority: spindle control p99 under flood ≤ 2 × its unloaded p99"))
    }

    @Test("echo and io-priority targets miss below their lines")
    func targetsMiss() throws {
        let r = Self.report(
            echo64Spindle: 1.0, echo64Uring: 0.7, echo64Epoll: 1.2, echo1Spindle: 1.2, echo1Epoll: 1.0,
            floodedScale: 5, unloadedScale: 2)
        let t = r.targets
        #expect(t.first { $0.requirement == "spindle ≥ 0.8 × raw-uring" }?.holds == false)  // 0.70
        #expect(t.first { $0.requirement == "spindle ≥ 1.3 × raw-epoll" }?.holds == false)  // 1.2
        #expect(t.first { $0.name == "7 echo-1" }?.holds == false)  // 0.83
        #expect(t.first { $0.name == "8 io-priority" }?.holds == false)  // 2.5 ×
        #expect(r.renderTargets().contains("MISSED  8 io-priority"))
    }

    @Test("without the I/O rows their targets are not evaluated")
    func targetsAbsent() {
        let t = Fixtures.report.targets
        for name in ["7 echo-64", "7 echo-1", "8 io-priority"] {
            #expect(t.filter { $0.name == name }.allSatisfy { $0.holds == nil })
        }
        #expect(!Fixtures.report.renderTargets().contains("echo"))
    }

    @Test("the Spindle I/O rows count in the mallocs target")
    func mallocs() throws {
        var r = Self.report(
            echo64Spindle: 1, echo64Uring: 1, echo64Epoll: 1, echo1Spindle: 1, echo1Epoll: 1, floodedScale: 1,
            unloadedScale: 1)
        r.rows.append(Fixtures.throughputRow(.echo64, .spindle, seconds: [1], mallocs: 64))
        let m = try #require(r.targets.first { $0.name == "6 mallocs" })
        #expect(m.holds == false && m.measured?.contains("echo-64/spindle") == true)
    }

    @Test("the table: echo rows compare messages/s, io-priority rows compare p99")
    func table() {
        let r = Self.report(
            echo64Spindle: 1.0, echo64Uring: 0.8, echo64Epoll: 2.0, echo1Spindle: 1.0, echo1Epoll: 1.0,
            floodedScale: 3, unloadedScale: 2)
        let text = TableReport(r).render()
        #expect(text.contains("×1.25"))  // raw-uring: 1.25 M/s over spindle's 1 M/s
        #expect(text.contains("×0.50"))  // raw-epoll
        #expect(text.contains("p99 ×10.0"))  // io-priority raw-epoll p99 over spindle's
    }

    @Test("the plot has timer, echo and io-priority panels with the unloaded curve dashed")
    func plot() throws {
        let r = Self.report(
            echo64Spindle: 1, echo64Uring: 1, echo64Epoll: 1, echo1Spindle: 1, echo1Epoll: 1, floodedScale: 3,
            unloadedScale: 2)
        // echo rows with RTT samples
        var rows = r.rows
        rows.append(Fixtures.latencyRow(.echo64, .rawUring, scale: 40))
        let svg = SVGPlot(Report(machine: [], config: [], rows: rows)).render()
        #expect(XMLParser(data: Data(svg.utf8)).parse())
        for text in ["timer:", "raw-timerfd", "io-priority:", "spindle (unloaded)", "echo-64:", "raw-uring"] {
            #expect(svg.contains(text), "\(text)")
        }
        #expect(svg.contains("stroke-dasharray"))
        #expect(SVGPlot.color(.rawTimerfd) != SVGPlot.color(.spindle))
        #expect(SVGPlot.color(.rawEpoll) != SVGPlot.color(.spindle) && SVGPlot.color(.rawUring) != SVGPlot.color(.rawEpoll))
    }
}
