@testable import SpindleBench

/// Synthetic rows: the harness's pure parts are tested on these, never on timing.
enum Fixtures {
    static func trial(events: Int = 1_000_000, seconds: Double, latencies: [UInt64] = [], mallocs: UInt64? = 0) -> Trial
    {
        Trial(events: events, seconds: seconds, latencies: latencies, mallocs: mallocs)
    }

    static func throughputRow(_ s: Scenario, _ sys: System, seconds: [Double], mallocs: UInt64? = 0) -> Row {
        Row(scenario: s, system: sys, trials: seconds.map { trial(seconds: $0, mallocs: mallocs) })
    }

    static func latencyRow(_ s: Scenario, _ sys: System, scale: UInt64, backlog: Int? = nil) -> Row {
        let samples = (1...1000).map { UInt64($0) * scale }
        return Row(
            scenario: s, system: sys,
            trials: [
                trial(events: 1000, seconds: 0.1, latencies: samples),
                trial(events: 1000, seconds: 0.1, latencies: samples),
            ],
            backlog: backlog)
    }

    static var report: Report {
        Report(
            machine: [("cpu_model", .string("test")), ("cpus_online", .int(2))],
            config: [("runs", .int(3))],
            rows: [
                throughputRow(.crossCore, .spindle, seconds: [0.02, 0.01, 0.03]),
                throughputRow(.crossCore, .rawCRing, seconds: [0.015, 0.015, 0.015], mallocs: 0),
                throughputRow(.crossCore, .dispatch, seconds: [0.5, 0.6, 0.4], mallocs: 3_000_000),
                latencyRow(.wakeWorker, .spindle, scale: 20),
                latencyRow(.wakeWorker, .rawMsgring, scale: 19),
                latencyRow(.priorityIsolation, .spindle, scale: 1, backlog: 4000),
                latencyRow(.priorityIsolation, .mutexQueue, scale: 200, backlog: 4000),
                latencyRow(.priorityBaseline, .spindle, scale: 1),
            ])
    }
}
