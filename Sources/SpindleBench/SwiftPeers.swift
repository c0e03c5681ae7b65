import CBenchPeers
import Dispatch
import Synchronization

/// The Swift peers a user would otherwise pick: `DispatchQueue.async` on a serial queue and an
/// `AsyncStream` with a `for await` consumer, each written the idiomatic way.
enum SwiftPeers {
    static var contenders: [Contender] {
        [
            Contender(
                system: .dispatch, scenarios: [.crossCore, .foreignThread, .wakeForeign, .priorityIsolation],
                trial: dispatch),
            Contender(system: .asyncStream, scenarios: [.crossCore, .priorityIsolation], trial: asyncStream),
        ]
    }

    /// The event both peers carry: the same 16 bytes as Spindle's.
    struct Item: Sendable {
        var value: UInt64
        var stamp: UInt64
    }

    /// Consumer-side state, touched only by the consumer (the queue, or the stream's task).
    final class Sink: @unchecked Sendable {
        let target: Int
        let work: UInt32
        var count = 0
        var sum: UInt64 = 0
        var end: UInt64 = 0
        let handled = Atomic<Int>(0)
        let samples: SampleBuffer
        let done = Completion()

        init(target: Int, work: Int, samples: Int) {
            self.target = target
            self.work = UInt32(work)
            self.samples = SampleBuffer(capacity: samples)
        }

        /// Handles one item: reads the payload (doing the priority runs' work on flood items),
        /// records probes, counts, signals at the end.
        @inline(__always)
        func consume(_ item: Item) {
            if item.stamp != 0 {
                samples.append(nowNS() &- item.stamp)
            } else {
                sum &+= work == 0 ? item.value : cbp_work(item.value, work)
            }
            count += 1
            handled.store(count, ordering: .releasing)
            cbp_beat(1)
            if count == target {
                end = nowNS()
                done.signal()
            }
        }
    }

    /// The producing side of a round: plain throughput, or a flood held at a backlog with probes.
    /// `post` hands one item to the peer.
    static func produce(
        _ s: Scenario, _ c: BenchConfig, speed: BenchConfig.Speed, sink: Sink,
        post: @escaping (Item) -> Void
    ) throws -> Trial {
        let isPriority = s == .priorityIsolation
        let n = isPriority ? c.floodEvents(speed) : c.events(speed)
        let startBox = ResultBox<(UInt64, UInt64, Double)>()
        let before = mallocsSoFar()
        let producer = try PinnedThread(cpu: c.producerCPU) {
            let start = nowNS()
            var depthSum = 0
            if isPriority {
                var posted = 0
                let d = c.backlog
                let k = c.probeEvery
                for i in 0..<n {
                    while posted - sink.handled.load(ordering: .acquiring) >= d { relax() }
                    post(Item(value: UInt64(i), stamp: 0))
                    posted += 1
                    if (i + 1) % k == 0 {
                        depthSum += posted - sink.handled.load(ordering: .acquiring)
                        post(Item(value: UInt64(i), stamp: nowNS()))
                        posted += 1
                    }
                }
            } else {
                for i in 0..<n { post(Item(value: UInt64(i), stamp: 0)) }
            }
            let probes = isPriority ? n / c.probeEvery : 0
            startBox.value = (start, 0, probes > 0 ? Double(depthSum) / Double(probes) : 0)
        }
        producer.join()
        guard sink.done.wait(seconds: 120) else {
            throw BenchError.runFailed("\(s.rawValue): the consumer did not finish in 120 s")
        }
        let mallocs = mallocsSoFar() - before
        let (start, _, depth) = startBox.value!
        return Trial(
            events: sink.target, seconds: Double(sink.end &- start) / 1e9, latencies: sink.samples.values,
            mallocs: mallocs, meanDepth: isPriority ? depth : nil)
    }

    static func target(_ s: Scenario, _ c: BenchConfig, _ speed: BenchConfig.Speed) -> (events: Int, probes: Int) {
        if s == .priorityIsolation {
            let flood = c.floodEvents(speed)
            return (flood + flood / c.probeEvery, flood / c.probeEvery)
        }
        return (c.events(speed), 0)
    }

    static func dispatch(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        let queue = DispatchQueue(label: "spindle.bench.dispatch", qos: .userInteractive)
        return try executorTrial(s, c, speed: .medium) { job in queue.async(execute: job) }
    }

    /// A round for a peer that runs closures on one consumer thread (`DispatchQueue.async`,
    /// `EventLoop.execute`): each event is a closure capturing it.
    static func executorTrial(
        _ s: Scenario, _ c: BenchConfig, speed: BenchConfig.Speed,
        execute: @escaping (@escaping @Sendable () -> Void) -> Void
    ) throws -> Trial {
        if s == .wakeForeign || s == .wakeWorker { return try wake(s, c, execute: execute) }
        let (events, probes) = target(s, c, speed)
        let sink = Sink(target: events, work: s == .priorityIsolation ? c.workIterations : 0, samples: probes)
        return try produce(s, c, speed: speed, sink: sink) { item in
            execute { sink.consume(item) }
        }
    }

    /// One closure at a time to an idle consumer thread: the waker waits until the previous one
    /// ran, then `settle` (the consumer has gone to sleep in the kernel by then), stamps and posts.
    static func wake(_ s: Scenario, _ c: BenchConfig, execute: @escaping (@escaping @Sendable () -> Void) -> Void)
        throws -> Trial
    {
        let n = c.wakeEvents
        let sink = Sink(target: n, work: 0, samples: n)
        let before = mallocsSoFar()
        let box = ResultBox<UInt64>()
        let t = try PinnedThread(cpu: c.producerCPU) {
            let start = nowNS()
            for i in 0..<n {
                let deadline = nowNS() + 2_000_000_000
                while sink.handled.load(ordering: .acquiring) < i && nowNS() < deadline { relax() }
                let until = nowNS() + c.settleNanoseconds
                while nowNS() < until { relax() }
                let item = Item(value: UInt64(i), stamp: nowNS())
                execute { sink.consume(item) }
            }
            box.value = start
        }
        t.join()
        guard sink.done.wait(seconds: 30) else {
            throw BenchError.runFailed("\(s.rawValue): the consumer did not finish")
        }
        return Trial(
            events: n, seconds: Double(sink.end &- box.value!) / 1e9, latencies: sink.samples.values,
            mallocs: mallocsSoFar() - before)
    }

    static func asyncStream(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        let speed: BenchConfig.Speed = .slow
        let (events, probes) = target(s, c, speed)
        let sink = Sink(target: events, work: s == .priorityIsolation ? c.workIterations : 0, samples: probes)
        let (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .unbounded)
        let consumer = Task.detached {
            for await item in stream {
                sink.consume(item)
                if sink.count == sink.target { break }
            }
        }
        defer {
            continuation.finish()
            consumer.cancel()
        }
        return try produce(s, c, speed: speed, sink: sink) { item in
            continuation.yield(item)
        }
    }
}
