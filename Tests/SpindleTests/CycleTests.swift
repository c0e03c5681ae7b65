import CSpindle
import CMallocCounter
import Foundation
import Logging
import Synchronization
import Testing

@testable import Spindle

/// What the process holds, counted from /proc/self.
struct ProcessFootprint: Equatable, CustomStringConvertible {
    var threads = 0, fds = 0, urings = 0, mappings = 0, workers = 0
    var rssKiB = 0

    static func now() -> ProcessFootprint {
        var f = ProcessFootprint()
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        f.threads = tasks.count
        f.workers = tasks.filter { t in
            ((try? String(contentsOfFile: "/proc/self/task/\(t)/comm", encoding: .utf8)) ?? "").hasPrefix("spindle-w")
        }.count
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        f.fds = fds.count
        f.urings = fds.filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == "anon_inode:[io_uring]"
        }.count
        let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
        f.mappings = maps.split(separator: "\n").count
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
            f.rssKiB = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return f
    }

    var description: String {
        "threads \(threads) (workers \(workers)), fds \(fds) (io_uring \(urings)), mappings \(mappings), RSS \(rssKiB) KiB"
    }
}

extension EngineSuites {
    /// Many create/start/post/shutdown cycles leave nothing behind: no thread, fd, io_uring instance
    /// or mapping, and RSS stays flat.
    @Suite(.serialized)
    struct CycleTests {
        /// 1,000 cycles per backend by default (~1–3 ms each here); SPINDLE_CYCLES overrides, and
        /// sanitizer runs use 100 (LeakSanitizer then checks the shorter run at exit).
        static let cycles: Int = {
            if let s = ProcessInfo.processInfo.environment["SPINDLE_CYCLES"], let n = Int(s) { return n }
            return spmc_available() == 1 ? 1000 : 100
        }()

        /// One cycle: a fresh engine, 64 inline and 16 boxed events from this thread spread over the
        /// workers and lanes, shutdown; every event handled (the handlers' own count).
        static func cycle(_ backend: Engine.Configuration.Backend, _ i: Int) throws {
            var config = testConfig(backend: backend)
            config.lanes[2].capacity = 64
            var builder = Engine.Builder(configuration: config, logger: quietLogger)
            let handled = Atomic<Int>(0)
            let ticks = try builder.register(Tick.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let boxed = try builder.register(Boxed.self) { _, _ in handled.add(1, ordering: .relaxed) }
            let engine = try builder.start()
            for n in 0..<64 {
                try postRetrying(engine, Tick(seq: UInt64(n), producer: 0), ticks, Lane(index: n % 4), .spread)
            }
            for n in 0..<16 {
                try engine.post(Boxed(tracker: Tracker(), seq: UInt64(n)), as: boxed, lane: Lane(index: 3), to: .spread)
            }
            let report = try engine.shutdownBlocking(deadline: .now + .seconds(10))
            #expect(report.drained, "cycle \(i): \(report)")
            #expect(handled.load(ordering: .relaxed) == 80, "cycle \(i): handled \(handled.load(ordering: .relaxed)) of 80")
        }

        @Test(arguments: backends)
        func startStopCyclesLeaveNothingBehind(backend: Engine.Configuration.Backend) throws {
            let liveBefore = Tracker.live.load(ordering: .relaxed)
            // Warm-up: the first engines initialise what a process keeps once (type metadata, the
            // membarrier registration, libnuma, malloc arenas, the io_uring probe's thread).
            for i in 0..<20 { try Self.cycle(backend, i) }
            let before = ProcessFootprint.now()
            let t0 = sp_now_ns()
            for i in 0..<Self.cycles { try Self.cycle(backend, i) }
            let seconds = Double(sp_now_ns() - t0) / 1e9
            // Worker threads are joined by shutdown; give the kernel a moment to reap other tasks.
            var after = ProcessFootprint.now()
            _ = eventually(within: 5) {
                after = ProcessFootprint.now()
                return after.workers == 0 && after.threads <= before.threads && after.fds <= before.fds
            }
            print("cycles: \(Self.cycles) on \(backend) in \(String(format: "%.1f", seconds)) s; before: \(before); after: \(after)")
            #expect(after.workers == 0, "\(after)")
            #expect(after.threads <= before.threads, "before: \(before); after: \(after)")
            #expect(after.fds <= before.fds, "before: \(before); after: \(after)")
            #expect(after.urings <= before.urings, "before: \(before); after: \(after)")
            // A leaked ring, worker or buffer mapping would add ≥ 1 per cycle; malloc may split or
            // add an arena mapping or two.
            #expect(after.mappings <= before.mappings + 8, "before: \(before); after: \(after)")
            // RSS flat: one leaked 64-slot ring page per cycle alone would be 4 MiB over 1,000 cycles.
            // (Not under AddressSanitizer: its quarantine keeps freed memory resident; LeakSanitizer
            // checks that run at exit instead.)
            if spmc_available() == 1 {
                #expect(after.rssKiB - before.rssKiB < 4096, "before: \(before); after: \(after)")
            }
            #expect(Tracker.live.load(ordering: .relaxed) == liveBefore)
        }
    }
}

/// Only errors: a thousand engines would otherwise log three lines each.
let quietLogger: Logger = {
    var l = Logger(label: "spindle-test")
    l.logLevel = .error
    return l
}()
