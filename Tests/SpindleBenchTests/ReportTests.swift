import Foundation
import Testing

@testable import SpindleBench

@Suite("JSON report")
struct JSONReportTests {
    func decode(_ report: Report) throws -> [String: Any] {
        let text = report.json.serialized()
        return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("the document has exactly machine, config and results")
    func topLevelKeys() throws {
        let doc = try decode(Fixtures.report)
        #expect(Set(doc.keys) == ["machine", "config", "results"])
        #expect(doc["machine"] is [String: Any])
        #expect(doc["config"] is [String: Any])
        #expect((doc["results"] as? [Any])?.count == Fixtures.report.rows.count)
    }

    @Test("every row has exactly the specified keys, with null where a field does not apply")
    func rowShape() throws {
        let rows = try #require(try decode(Fixtures.report)["results"] as? [[String: Any]])
        for row in rows { #expect(Set(row.keys) == Set(Row.jsonKeys)) }
        let cross = try #require(
            rows.first { $0["scenario"] as? String == "cross-core" && $0["system"] as? String == "spindle" })
        #expect(cross["p50_ns"] is NSNull)
        #expect(cross["backlog"] is NSNull)
        #expect((cross["events_per_s"] as? NSNumber)?.doubleValue == 50_000_000)  // median of 50, 100, 33.3 M/s
        #expect((cross["mallocs_per_event"] as? NSNumber)?.doubleValue == 0)
        let prio = try #require(
            rows.first { $0["scenario"] as? String == "priority-isolation" && $0["system"] as? String == "mutex-queue" }
        )
        #expect((prio["backlog"] as? NSNumber)?.intValue == 4000)
        #expect((prio["p50_ns"] as? NSNumber)?.intValue ?? 0 > 0)
    }

    @Test("system names are the specified ones")
    func systemNames() {
        let allowed: Set = [
            "spindle", "spindle-batch", "raw-c-ring", "raw-mpsc", "raw-eventfd", "raw-msgring", "dispatch",
            "asyncstream", "mutex-queue", "nio-eventloop", "raw-timerfd", "raw-uring-timeout", "raw-uring", "raw-epoll",
        ]
        let ours: [System] = [
            .spindle, .spindleBatch, .rawCRing, .rawMPSC, .rawEventfd, .rawMsgring, .dispatch, .asyncStream,
            .mutexQueue, .nioEventLoop, .rawTimerfd, .rawUringTimeout, .rawUring, .rawEpoll,
        ]
        #expect(Set(ours.map(\.rawValue)) == allowed)
    }

    @Test("strings are escaped and non-finite numbers become null")
    func escaping() throws {
        let v = JSONValue.object([("s", .string("a\"b\\c\nd\u{1}")), ("x", .double(.nan))])
        let back = try #require(JSONSerialization.jsonObject(with: Data(v.serialized().utf8)) as? [String: Any])
        #expect(back["s"] as? String == "a\"b\\c\nd\u{1}")
        #expect(back["x"] is NSNull)
    }
}

@Suite("Percentiles and spreads")
struct PercentileTests {
    @Test("median, min and max of odd and even counts")
    func spread() {
        let odd = Spread([3, 1, 2])
        #expect(odd.median == 2 && odd.min == 1 && odd.max == 3)
        let even = Spread([4, 1, 3, 2])
        #expect(even.median == 2.5 && even.min == 1 && even.max == 4)
        #expect(Spread([]).median == 0)
    }

    @Test("HdrHistogram percentiles of 1…10000 are within its 3-digit precision")
    func histogram() {
        let d = LatencyDistribution((1...10_000).map { UInt64($0) })
        #expect(d.count == 10_000)
        #expect(abs(Double(d.value(atPercentile: 50)) - 5_000) <= 5)
        #expect(abs(Double(d.value(atPercentile: 99)) - 9_900) <= 10)
        #expect(abs(Double(d.value(atPercentile: 99.9)) - 9_990) <= 10)
        #expect(abs(Double(d.max) - 10_000) <= 10)
    }

    @Test("a row's percentile is the median of its rounds' percentiles")
    func rowPercentile() {
        let r = Row(
            scenario: .wakeWorker, system: .spindle,
            trials: [
                Trial(events: 3, seconds: 1, latencies: [100, 100, 100]),
                Trial(events: 3, seconds: 1, latencies: [200, 200, 200]),
                Trial(events: 3, seconds: 1, latencies: [900, 900, 900]),
            ])
        #expect(r.percentile(50)?.median == 200)
        #expect(r.percentile(50)?.max == 900)
        #expect(r.maxLatency == 900)
    }

    @Test("the percentile curve rises monotonically and ends at the max")
    func curve() {
        let d = LatencyDistribution((1...100_000).map { UInt64($0) })
        let c = d.curve()
        #expect(c.count > 10)
        #expect(zip(c, c.dropFirst()).allSatisfy { $0.nanoseconds <= $1.nanoseconds && $0.percentile < $1.percentile })
        #expect(c.last?.percentile == 100)
    }

    @Test("mallocs per event sum over rounds, and are unknown if any round is unmeasured")
    func mallocs() {
        let r = Row(
            scenario: .crossCore, system: .dispatch,
            trials: [
                Trial(events: 10, seconds: 1, mallocs: 30), Trial(events: 10, seconds: 1, mallocs: 10),
            ])
        #expect(r.mallocsPerEvent == 2)
        let unknown = Row(
            scenario: .crossCore, system: .dispatch, trials: [Trial(events: 10, seconds: 1, mallocs: nil)])
        #expect(unknown.mallocsPerEvent == nil)
    }
}
