/// The `profile-load` scenario's row: the profile loader lives in SpindleProfiles (which this
/// library does not link), so the caller passes it in — `spindle bench` does.
public enum ProfileLoad {
    /// A contender for `profile-load` that calls `load(iterations)` once per round; `load` returns
    /// one duration in nanoseconds per load (open + mmap + validate + host check).
    public static func contender(
        iterations: @escaping @Sendable (BenchConfig) -> Int = { $0.quick ? 200 : 1000 },
        load: @escaping @Sendable (Int) throws -> [UInt64]
    ) -> Contender {
        Contender(system: .spindle, scenarios: [.profileLoad]) { _, c in
            let n = iterations(c)
            let before = mallocsSoFar()
            let samples = try load(n)
            let mallocs = mallocsSoFar() - before
            let total = samples.reduce(0, &+)
            return Trial(events: samples.count, seconds: Double(total) / 1e9, latencies: samples, mallocs: mallocs)
        }
    }
}
