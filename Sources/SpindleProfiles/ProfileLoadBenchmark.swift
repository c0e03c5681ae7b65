import CSpindle
import Spindle

/// The `profile-load` scenario of the harness: open + map + validate a compiled profile and
/// check the host rules (host facts are read once per process, before the first sample).
public enum ProfileLoadBenchmark {
    /// Times `iterations` loads of the profile at `path`, each followed by the host check.
    /// - Returns: one duration per load; the harness reports their median.
    public static func run(path: String, iterations: Int) throws(SpindleError) -> [Duration] {
        _ = sp_host_current(nil)  // host facts once per process: not part of a load
        let clock = ContinuousClock()
        var samples: [Duration] = []
        samples.reserveCapacity(iterations)
        for _ in 0..<iterations {
            let start = clock.now
            let profile = try Profile(contentsOf: path, allowWritableByOthers: true)
            _ = try profile.checkHost(strict: false)
            samples.append(clock.now - start)
        }
        return samples
    }
}
