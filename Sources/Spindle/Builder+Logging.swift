import CSpindle
import Logging

extension Engine.Builder {
    /// What `start()` logs, once per engine, on the thread that called it (never on a worker):
    /// start-up facts at `info`, one `debug` line per worker, and a `warning` for each problem the
    /// engine works around. Metadata keys are `spindle.*`; a worker's line carries `spindle.worker`.
    func _logStart(_ handle: OpaquePointer) {
        let backend = sp_engine_backend(handle) == SP_BACKEND_IO_URING.rawValue ? "io_uring" : "epoll"
        if configuration.backend == .auto && backend == "epoll" {
            logger.warning(
                "io_uring unavailable: falling back to epoll + eventfd",
                metadata: [
                    "spindle.backend": "epoll", "spindle.reason": "\(String(cString: sp_engine_backend_note(handle)))",
                ])
        }
        if backend == "io_uring" && !sources.isEmpty && sp_engine_features(handle) & SP_FEAT_MULTISHOT_POLL == 0 {
            logger.warning(
                "no multishot poll (kernel < 5.13): fd watches and signal sources re-arm a single-shot poll after every event",
                metadata: [
                    "spindle.backend": "io_uring"
                ])
        }
        if backend == "io_uring" && !sources.isEmpty && sp_engine_features(handle) & SP_FEAT_MULTISHOT_RECV == 0 {
            logger.warning(
                "no multishot accept/recv (kernel < 5.19/6.0): listeners and connections re-arm a single-shot accept or recv after every completion",
                metadata: ["spindle.backend": "io_uring"])
        }
        if backend == "io_uring" && !sources.isEmpty && sp_engine_features(handle) & SP_FEAT_BUF_RING == 0 {
            logger.warning(
                "no provided-buffer rings (kernel < 5.19): receive buffers are given to the kernel with PROVIDE_BUFFERS, each receive is single-shot",
                metadata: ["spindle.backend": "io_uring"])
        }
        var facts: Logger.Metadata = [
            "spindle.backend": "\(backend)",
            "spindle.workers": "\(configuration.cpus.count)",
            "spindle.cpus": "\(configuration.cpus.map(String.init).joined(separator: ","))",
            "spindle.lanes": "\(configuration.lanes.map(\.name).joined(separator: ","))",
            "spindle.ringMemoryKiB": "\(sp_engine_ring_bytes(handle) >> 10)",
            "spindle.profile": "\(usingDefault ? "embedded default" : "given")",
        ]
        // Boxed kinds cost one allocation per post: worth knowing at start.
        let boxed = entries.filter { $0.release != nil }.map(\.typeName)
        if !boxed.isEmpty { facts["spindle.boxedKinds"] = "\(boxed.joined(separator: ","))" }
        logger.info("engine started", metadata: facts)
        guard logger.logLevel <= .debug else { return }
        for (w, cpu) in configuration.cpus.enumerated() {
            logger.debug(
                "worker started",
                metadata: [
                    "spindle.worker": "\(w)", "spindle.cpu": "\(cpu)",
                    "spindle.tid": "\(sp_engine_worker_tid(handle, UInt32(w)))",
                ])
        }
    }
}
