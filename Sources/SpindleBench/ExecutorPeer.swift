/// Peers added from outside the package (the Benchmarks runner's SwiftNIO `EventLoop.execute`)
/// that run closures on one consumer thread, measured exactly as the built-in `DispatchQueue` peer.
public enum ExecutorPeer {
    /// A contender that hands every event to `execute` as a closure capturing it.
    ///
    /// `makeExecutor` is called once per round and returns the executor and how to tear it down.
    /// Supported scenarios: `cross-core` and `foreign-thread` (throughput from a pinned producer),
    /// `wake-foreign` (one closure at a time to an idle thread) and `priority-isolation` (a flood held
    /// at backlog D with probes, one FIFO queue).
    ///
    /// ```swift
    /// let nio = ExecutorPeer.contender(system: .nioEventLoop, speed: .medium) {
    ///     let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    ///     let loop = group.next()
    ///     return ({ loop.execute($0) }, { try? group.syncShutdownGracefully() })
    /// }
    /// ```
    public static func contender(
        system: System,
        scenarios: Set<Scenario> = [.crossCore, .foreignThread, .wakeForeign, .priorityIsolation],
        speed: BenchConfig.Speed,
        makeExecutor:
            @escaping @Sendable () throws -> (execute: (@escaping @Sendable () -> Void) -> Void, shutdown: () -> Void)
    ) -> Contender {
        Contender(system: system, scenarios: scenarios) { s, c in
            let (execute, shutdown) = try makeExecutor()
            defer { shutdown() }
            return try SwiftPeers.executorTrial(s, c, speed: speed, execute: execute)
        }
    }
}
