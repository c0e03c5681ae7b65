import Foundation
import Histogram

/// One measured round of one system in one scenario.
public struct Trial: Sendable {
    /// Events handled in the measured window.
    public var events: Int
    /// The measured window: first post to last handled.
    public var seconds: Double
    /// Latency samples in nanoseconds (latency scenarios; empty otherwise).
    public var latencies: [UInt64]
    /// Allocations in the process during the measured window (`nil`: not measured for this peer).
    public var mallocs: UInt64?
    /// Priority runs: mean events queued ahead of a probe when it was posted.
    public var meanDepth: Double?

    /// A trial.
    public init(
        events: Int, seconds: Double, latencies: [UInt64] = [], mallocs: UInt64? = nil, meanDepth: Double? = nil
    ) {
        self.events = events
        self.seconds = seconds
        self.latencies = latencies
        self.mallocs = mallocs
        self.meanDepth = meanDepth
    }

    /// Events per second.
    public var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
}

/// Median, minimum and maximum of a set of figures.
public struct Spread: Sendable, Hashable {
    /// The median (the mean of the two middle values for an even count).
    public var median: Double
    /// The smallest.
    public var min: Double
    /// The largest.
    public var max: Double

    /// The spread of `values` (all zero when empty).
    public init(_ values: [Double]) {
        let s = values.sorted()
        guard !s.isEmpty else {
            median = 0
            min = 0
            max = 0
            return
        }
        min = s[0]
        max = s[s.count - 1]
        median = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// A latency distribution: an HdrHistogram (3 significant digits) of nanoseconds.
public struct LatencyDistribution: Sendable {
    /// The histogram.
    public private(set) var histogram: Histogram<UInt64>

    /// An empty distribution tracking 1 ns to 60 s.
    public init() {
        histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
            numberOfSignificantValueDigits: .three)
    }

    /// A distribution of `samples`.
    public init<S: Sequence>(_ samples: S) where S.Element == UInt64 {
        self.init()
        record(samples)
    }

    /// Adds samples (values above the range are clamped to it).
    public mutating func record<S: Sequence>(_ samples: S) where S.Element == UInt64 {
        for v in samples { _ = histogram.record(Swift.min(Swift.max(v, 1), histogram.highestTrackableValue)) }
    }

    /// Samples recorded.
    public var count: UInt64 { histogram.totalCount }
    /// The value at `percentile` (0...100), in ns.
    public func value(atPercentile percentile: Double) -> UInt64 { histogram.valueAtPercentile(percentile) }
    /// The largest sample, in ns.
    public var max: UInt64 { histogram.max }

    /// (percentile, ns) points for a percentile curve, from 0 to 99.999 (or the max).
    public func curve() -> [(percentile: Double, nanoseconds: UInt64)] {
        guard count > 0 else { return [] }
        var pts: [(Double, UInt64)] = []
        var p = 0.0
        // Points at 1 - 10^-k with 5 steps per decade, up to what the sample count resolves.
        let limit = Swift.min(99.999, 100 * (1 - 1 / Double(count)))
        var k = 0.0
        while p <= limit {
            pts.append((p, value(atPercentile: p)))
            k += 0.2
            p = 100 * (1 - pow(10, -k))
        }
        pts.append((100, max))
        return pts
    }
}
