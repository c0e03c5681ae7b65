import Foundation
import Testing

/// `spindle metrics-demo`: the Prometheus exposition text (swift-prometheus) it prints after a
/// short run reconciles with what the demo itself posted and was refused.
struct MetricsDemoTests {
    /// `<build dir>/spindle`, next to this test bundle.
    static let spindle: String = {
        let me = Bundle.main.executableURL ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("spindle").path
    }()

    @Test func prometheusTextReconcilesWithThePosts() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.spindle)
        p.arguments = ["metrics-demo", "--events", "5000", "--interval-ms", "5"]
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let note = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if exited.wait(timeout: .now() + 60) == .timedOut {
            p.terminate()
            Issue.record("spindle metrics-demo did not exit within 60 s; stderr: \(note)")
            return
        }
        #expect(p.terminationStatus == 0, "\(note)")
        // "metrics-demo: 5000 posted, R rejected (full lane), drained: every lane empty"
        let words = note.split(separator: " ")
        let rejected = try #require(words.firstIndex(of: "rejected").flatMap { Int(words[$0 - 1]) }, "\(note)")
        func total(_ name: String) -> Int {
            text.split(separator: "\n").filter { $0.hasPrefix("spindle_\(name){") }
                .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
        }
        #expect(total("events_enqueued_total") == 5000 - rejected, "\(text)")
        #expect(total("events_handled_total") == 5000 - rejected)
        #expect(total("events_rejected_total") == rejected)
        #expect(total("events_failed_total") > 0)  // the demo's handler throws for one event in 100
        #expect(text.contains("# TYPE spindle_lane_depth gauge"))
        #expect(text.contains("spindle_events_handled_total{worker=\"0\",lane=\"critical\"}"))
        // The demo turns the timers on: every batch timed is recorded or counted lost, and no more
        // batches are timed than the workers ran (a round already under way when timing came on
        // is not timed).
        let lostBatches = text.split(separator: "\n")
            .filter { $0.hasPrefix("spindle_timer_durations_lost_total{") && $0.contains("timer=\"batch\"") }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
        let timed = total("batch_duration_seconds_count") + lostBatches
        #expect(timed > 0 && timed <= total("worker_batches_total"), "\(timed) timed batches")
        #expect(total("queue_latency_seconds_count") > 0)
    }
}
