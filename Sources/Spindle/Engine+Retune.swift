import CSpindle

extension Engine {
    /// Retunes the running engine: lane budgets and weights, spin time and the slow-batch threshold
    /// change live, picked up by each worker at its next round boundary. Wraps `sp_engine_retune`.
    ///
    /// ```swift
    /// var tuned = engine.configuration
    /// tuned.lanes[3].policy = .weighted(weight: 2)
    /// try engine.apply(configuration: tuned)
    /// ```
    /// - Throws: ``SpindleError/Code/notLive`` naming the first field that needs a restart (CPUs,
    ///   lane count, names, policies, capacities, batch sizes, full-lane policies, backend), or
    ///   ``SpindleError/Code/invalidConfiguration`` for a value that breaks a rule.
    public func apply(configuration new: Configuration) throws(SpindleError) {
        try new.validate(host: false)
        var raw = try new.cValue()
        var msg = [CChar](repeating: 0, count: 512)
        guard sp_engine_retune(handle, &raw, &msg, msg.count) == SP_OK.rawValue else {
            throw SpindleError(.notLive, String(cMessage: msg))
        }
        tuning.withLock { $0 = new }
    }

    /// The configuration in force: the one it started with, as last retuned by ``apply(configuration:)``.
    public var currentConfiguration: Configuration { tuning.withLock { $0 ?? configuration } }
}
