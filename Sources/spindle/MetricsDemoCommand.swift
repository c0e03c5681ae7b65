import ArgumentParser
import Foundation
import Logging
import Prometheus
import Spindle
import SpindleMetrics

/// `spindle metrics-demo [--events N] [--interval-ms MS]`
///
/// Runs an engine on the embedded default for a short load, samples it with ``EngineMetrics``
/// into a swift-prometheus registry, and prints the registry's `/metrics` text (Prometheus
/// exposition format) after shutdown. What a service does to serve `/metrics`, minus the server.
struct MetricsDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-demo",
        abstract: "Run a short load and print the engine's metrics as Prometheus /metrics text.",
        discussion: """
            Posts --events events over every lane and worker of the embedded default (a handler that
            throws for one event in 100, so `failed` shows), samples the engine every --interval-ms
            with SpindleMetrics into a swift-prometheus registry, shuts down, takes a last sample and
            prints the exposition text on stdout. Example: spindle metrics-demo --events 100000
            """
    )

    @Option(help: "Events to post (default 100000).")
    var events: Int = 100_000

    @Option(help: "Milliseconds between two samples while the load runs (default 100).")
    var intervalMs: Int = 100

    struct Work: InlineEvent { var n: UInt64 }
    struct Unlucky: Error {}

    func validate() throws {
        guard events > 0 else { throw ValidationError("--events must be at least 1") }
        guard intervalMs > 0 else { throw ValidationError("--interval-ms must be at least 1") }
    }

    func run() async throws {
        var logger = Logger(label: "spindle")
        logger.logLevel = .warning
        var builder = Engine.Builder(logger: logger)
        let work = try builder.register(Work.self) { w, _ in if w.n % 100 == 99 { throw Unlucky() } }
        let lanes = builder.configuration.lanes.indices.map { Lane(index: $0) }
        let engine = try builder.start()

        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Batches and queueing here take microseconds: buckets from 1 µs to 100 ms.
        let buckets: [Duration] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000].map {
            .microseconds($0)
        }
        factory.durationHistogramBuckets = [
            "spindle_batch_duration_seconds": buckets, "spindle_queue_latency_seconds": buckets,
        ]
        let metrics = EngineMetrics(
            engine: engine, interval: .milliseconds(intervalMs), timers: .standard, factory: factory)
        let sampler = Task { await metrics.run() }
        var rejected = 0
        for i in 0..<events {
            do {
                try engine.post(Work(n: UInt64(i)), as: work, lane: lanes[i % lanes.count], to: .key(UInt64(i)))
            } catch {
                rejected += 1  // a full lane: counted by the engine as rejected, shown in the text
                sched_yield()
            }
        }
        let report = await engine.shutdown(deadline: .now + .seconds(10))
        sampler.cancel()
        await sampler.value  // a last sample after shutdown: the final counts
        print(registry.emitToString(), terminator: "")
        FileHandle.standardError.write(
            Data("metrics-demo: \(events) posted, \(rejected) rejected (full lane), \(report)\n".utf8))
    }
}
