import CSpindle

extension Engine {
    /// Retunes the running engine from a compiled profile: lane weights and budgets, spin time and
    /// the slow-batch threshold change live, picked up by each worker at its next round boundary.
    /// The profile is checked completely (format, ranges, rules, this host's rules) first.
    ///
    /// ```swift
    /// try engine.apply(profile: Profile(contentsOf: "/etc/spindle/host.spindle"))
    /// ```
    /// - Throws: ``SpindleError`` — ``SpindleError/Code/notLive`` naming the first change that needs
    ///   a restart (CPU set, lane count, capacities, on_full, …), or the host rule that refused.
    public func apply(profile: borrowing Profile, warn: (String) -> Void = { _ in }) throws(SpindleError) {
        try apply(configuration: Engine.Configuration(profile: profile, warn: warn))
    }

    /// Loads the compiled profile at `path` and retunes from it (see ``apply(profile:warn:)``).
    public func apply(profile path: String, warn: (String) -> Void = { _ in }) throws(SpindleError) {
        let profile = try Profile(contentsOf: path)
        try apply(profile: profile, warn: warn)
    }
}
