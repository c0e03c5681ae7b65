@_spi(Testing) import Spindle

extension TestEngine {
    /// The test clock: time since the test engine started. It moves only through
    /// ``advance(by:maxSteps:)`` and ``moveClock(by:)``. Timer deadlines are on this clock
    /// (`TimerEvent.deadlineNanoseconds` counts from the test engine's start).
    public var now: Duration { .nanoseconds(Int64(clamping: engine._manualNow)) }

    /// When the next armed timer (of any worker) is due, on the test clock; nil when none is armed.
    public var nextTimerDeadline: Duration? {
        engine._manualNextDeadline.map { .nanoseconds(Int64(clamping: $0)) }
    }

    /// Moves the clock forward by `duration`, firing every timer that falls due on the way in
    /// deadline order, each at its own deadline: the engine first runs until idle at the current
    /// time; then, deadline after deadline, the clock stops at the next one, its timers' events
    /// enter their lanes and the engine runs until idle (so timers that handlers start or cancel
    /// on the way count too); finally the clock is set to `now + duration`.
    ///
    /// Firings arrive on time: `TimerEvent.lateness` is zero and
    /// `TimerEvent.coalesced` is zero. To see what a worker that fell behind gets (one
    /// firing with the missed periods folded in), use ``moveClock(by:)`` and then ``step()``.
    ///
    /// ```swift
    /// try builder.timer(every: .milliseconds(10), lane: critical) { tick, ctx in ticks += 1 }
    /// let test = try TestEngine(builder)
    /// try test.advance(by: .milliseconds(35))                      // fires at 10, 20 and 30 ms
    /// ```
    /// - Parameters:
    ///   - duration: how far to move the clock (not negative).
    ///   - maxSteps: the most steps to run in all.
    /// - Throws: ``TestEngineError`` when the steps run out (a timer firing too often for the
    ///   time advanced, or handlers that keep posting).
    public func advance(by duration: Duration, maxSteps: Int = 1_000_000) throws(TestEngineError) {
        precondition(duration >= .zero, "advance(by: \(duration)): the test clock never moves back")
        let target = engine._manualNow &+ duration._clampedNanoseconds
        var budget = max(1, maxSteps)
        func settle() throws(TestEngineError) {
            while true {
                guard budget > 0 else {
                    throw TestEngineError(
                        steps: maxSteps, what: "advance(by: \(duration))", lanes: engine.stallReport())
                }
                budget -= 1
                if !stepReportingProgress().progress { return }
            }
        }
        try settle()
        while let next = engine._manualNextDeadline, next <= target {
            engine._setManualNow(next)
            try settle()
        }
        engine._setManualNow(target)
    }

    /// Moves the clock forward by `duration` without running anything, as if every worker had been
    /// busy elsewhere: the next ``step()`` reaps every timer now due, after its round — a one-shot
    /// timer late by however far the clock passed its deadline, a periodic timer once, with the
    /// deadlines it missed folded into `TimerEvent.coalesced` (never a burst).
    public func moveClock(by duration: Duration) {
        precondition(duration >= .zero, "moveClock(by: \(duration)): the test clock never moves back")
        engine._setManualNow(engine._manualNow &+ duration._clampedNanoseconds)
    }
}
