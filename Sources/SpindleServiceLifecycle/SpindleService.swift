import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Spindle

/// A running `Engine` as a swift-service-lifecycle `Service`: add it to a
/// `ServiceGroup` and the group's graceful shutdown (SIGTERM, say) drains the engine.
///
/// `run()` waits without holding a thread. On **graceful shutdown** it stops intake (foreign posts
/// get `stopped`; handlers may still post) and drains every lane — for at most
/// ``drainTimeout`` — then returns. On **cancellation** (the group cancels, or the task running
/// the group is cancelled) the lanes get at most ``cancellationTimeout`` more, then every worker
/// stops after the batch in progress and `run()` returns. Either way ``shutdownReport`` then says
/// what, if anything, was left unhandled.
///
/// ```swift
/// let engine = try builder.start()
/// let service = SpindleService(engine: engine, logger: logger)
/// let group = ServiceGroup(services: [service, httpServer], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// The service owns the engine's shutdown: `run()` returns only after graceful shutdown or
/// cancellation, so stop the engine through the group rather than with `engine.shutdown` directly.
///
/// The group owns the signals: do not also register `builder.signals` for a signal the group traps
/// (the engine refuses a signal that already has an owner when it starts first; a group that starts
/// trapping one the engine already owns takes it away from the engine).
public final class SpindleService: Service, Sendable, CustomStringConvertible {
    /// The engine this service stops.
    public let engine: Engine
    /// How long a graceful shutdown may drain the lanes before the rest is left unhandled.
    public let drainTimeout: Duration
    /// How long the lanes may still drain once the task is cancelled; then workers stop after the
    /// batch in progress.
    public let cancellationTimeout: Duration
    private let logger: Logger
    private let report = ReportBox()

    /// A service for an engine that has started (`Engine.Builder.start()`).
    /// - Parameters:
    ///   - engine: the engine to stop (its shutdown belongs to this service from now on).
    ///   - drainTimeout: graceful shutdown's bound on draining (default 30 s).
    ///   - cancellationTimeout: cancellation's bound (default 1 s).
    ///   - logger: where the service logs how the engine stopped (a drain that left events behind
    ///     is a warning, with `spindle.lane`); by default nothing is logged.
    public init(
        engine: Engine, drainTimeout: Duration = .seconds(30), cancellationTimeout: Duration = .seconds(1),
        logger: Logger = Logger(label: "spindle", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.engine = engine
        self.drainTimeout = drainTimeout
        self.cancellationTimeout = cancellationTimeout
        self.logger = logger
    }

    /// What the engine's shutdown left, once `run()` has returned (`nil` before).
    public var shutdownReport: ShutdownReport? { report.value }

    /// "SpindleService(4 workers)": the name a `ServiceGroup` logs.
    public var description: String { "SpindleService(\(engine.workerCount) workers)" }

    /// Waits for graceful shutdown or cancellation, then stops the engine as the type's summary
    /// says and returns. Never throws: a cancelled run still returns once the engine has stopped.
    public func run() async throws {
        let graceful: Bool
        do {
            try await gracefulShutdown()
            graceful = true
        } catch {
            graceful = false  // CancellationError: the task was cancelled before graceful shutdown
        }
        let engine = self.engine
        let grace = cancellationTimeout
        let result: ShutdownReport
        if graceful {
            logger.debug(
                "graceful shutdown: draining every lane", metadata: ["spindle.drainTimeout": "\(drainTimeout)"])
            // `shutdown` waits on a thread of its own, not on the cooperative pool. A cancellation
            // during the drain bounds what is left of it by `cancellationTimeout`.
            result = await withTaskCancellationHandler {
                await engine.shutdown(deadline: .now + drainTimeout)
            } onCancel: {
                DispatchQueue.global().asyncAfter(deadline: .now() + grace.timeInterval) { engine.stopNow() }
            }
        } else {
            logger.debug("cancelled: stopping the engine", metadata: ["spindle.cancellationTimeout": "\(grace)"])
            result = await engine.shutdown(deadline: .now + grace)
        }
        report.value = result
        if result.drained {
            logger.debug("engine stopped: every lane drained")
        } else {
            for (lane, count) in zip(result.laneNames, result.unhandled) where count > 0 {
                logger.warning(
                    "engine stopped with events unhandled",
                    metadata: [
                        "spindle.lane": "\(lane)", "spindle.unhandled": "\(count)",
                        "spindle.reason": "\(graceful ? "drain timeout or cancellation" : "cancellation")",
                    ])
            }
        }
    }
}

extension Duration {
    /// Seconds as a `Double` (for Dispatch deadlines).
    var timeInterval: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}

/// The report behind a pthread mutex (NSLock, which ThreadSanitizer sees).
final class ReportBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: ShutdownReport?
    var value: ShutdownReport? {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}
