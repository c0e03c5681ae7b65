import Foundation
import Spindle
import SpindleTesting
import Synchronization
import Testing

struct Quote: InlineEvent { var symbol: UInt32; var bid: Double; var ask: Double }  // 24 bytes: inline
struct Halt: InlineEvent { var symbol: UInt32 }
struct Probe: InlineEvent { var n: UInt8 }

/// The README example's handlers, registered by the README's own lines (checked below), on a
/// test engine: no worker thread; every handler runs on the test's thread.
@Suite struct ReadmeHandlerTests {
    /// The threads handlers ran on, as seen from inside them.
    final class Threads: Sendable {
        let seen = Mutex<Set<UInt>>([])
        func note() { seen.withLock { _ = $0.insert(UInt(pthread_self())) } }
    }

    struct Readme {
        let test: TestEngine
        let critical: Lane, bulk: Lane
        let books: CoreLocal<[UInt32: Double]>
        let quote: EventKind<Quote>, halt: EventKind<Halt>, probe: EventKind<Probe>
    }

    /// The README's builder lines, verbatim between the markers; then a test engine instead of
    /// `builder.start()`.
    func readme(_ threads: Threads) throws -> Readme {
        var builder = Engine.Builder()
        // README-HANDLERS-BEGIN
        let critical = try builder.lane(named: "critical"), bulk = try builder.lane(named: "bulk")
        let books = builder.coreLocal { _ in [UInt32: Double]() }  // one per worker, built on it
        let halt = try builder.register(Halt.self, using: books) { h, book, _ in book[h.symbol] = nil }
        let quote = try builder.register(Quote.self, using: books) { q, book, ctx in
            book[q.symbol] = q.bid
            if q.ask < q.bid { try ctx.post(Halt(symbol: q.symbol), as: halt, lane: critical) }  // this worker
        }
        // README-HANDLERS-END
        let probe = try builder.register(Probe.self) { _, _ in threads.note() }  // which thread runs handlers
        return Readme(test: try TestEngine(builder), critical: critical, bulk: bulk, books: books, quote: quote,
                      halt: halt, probe: probe)
    }

    /// The README example's load — 1,000 quotes by key, one in 100 crossed — through the README's
    /// handlers: every quote handled on the worker its key names, every crossed quote's halt on
    /// the critical lane there, each book as the handlers' own logic leaves it; all on this thread.
    @Test func readmeLoadOnTheTestThread() throws {
        let threads = Threads()
        let r = try readme(threads)
        let test = r.test
        var books = Array(repeating: [UInt32: Double](), count: test.workerCount)
        var quotes = Array(repeating: 0, count: test.workerCount), halts = quotes
        for i in 0..<1_000 {
            let q = Quote(symbol: UInt32(i % 16), bid: 2, ask: i % 100 == 0 ? 1 : 3)
            try test.post(q, as: r.quote, lane: r.bulk, to: .key(UInt64(q.symbol)))  // the README's post
            let w = try #require(test.worker(for: .key(UInt64(q.symbol)))).rawValue
            quotes[w] += 1
            if q.ask < q.bid { halts[w] += 1; books[w][q.symbol] = nil } else { books[w][q.symbol] = q.bid }
        }
        #expect((0..<test.workerCount).map { test.depth(worker: WorkerID($0), lane: r.bulk) } == quotes)

        try test.runUntilIdle(maxSteps: 10_000)

        for w in 0..<test.workerCount {
            let bulk = test.stats(worker: WorkerID(w), lane: r.bulk), critical = test.stats(worker: WorkerID(w), lane: r.critical)
            #expect(bulk.handled == UInt64(quotes[w]) && bulk.pending == 0 && bulk.failed == 0)
            #expect(critical.handled == UInt64(halts[w]) && critical.pending == 0)
            #expect(test.withState(r.books, on: WorkerID(w)) { $0 } == books[w])
        }
        #expect(halts.reduce(0, +) == 10)

        // No thread: handlers ran on this one, and the engine has no worker thread.
        try test.post(Probe(n: 0), as: r.probe, lane: r.bulk, to: .worker(WorkerID(0)))
        #expect(test.step() == 1)
        #expect(threads.seen.withLock { $0 } == [UInt(pthread_self())])
        #expect((0..<test.workerCount).allSatisfy { test.engine.threadID(of: WorkerID($0)) == 0 })
        #expect(test.shutdown().drained)
    }

    /// A crossed quote's halt is handled before the next quote of the same worker: the quote's
    /// handler posts it to the strict lane, which cuts the bulk batch short after that handler.
    /// Two quotes in one bulk batch — crossed, then not — leave the symbol in the book; had the
    /// halt waited for the batch, it would have removed it.
    @Test func haltOvertakesTheRestOfTheBatch() throws {
        let r = try readme(Threads())
        let test = r.test
        let w = try #require(test.worker(for: .key(7)))
        try test.post(Quote(symbol: 7, bid: 2, ask: 1), as: r.quote, lane: r.bulk, to: .key(7))
        try test.post(Quote(symbol: 7, bid: 5, ask: 6), as: r.quote, lane: r.bulk, to: .key(7))
        #expect(test.pending(r.quote, worker: w, lane: r.bulk).map(\.bid) == [2, 5])
        #expect(test.step(worker: w) == 3)  // one round: quote, halt, quote
        #expect(test.withState(r.books, on: w) { $0 } == [7: 5])
        #expect(test.stats(worker: w, lane: r.critical).handled == 1)

        // Alone, a crossed quote leaves the symbol out of the book after one round.
        try test.post(Quote(symbol: 7, bid: 3, ask: 1), as: r.quote, lane: r.bulk, to: .key(7))
        #expect(test.pendingKinds(worker: w, lane: r.bulk) == ["Quote"])
        #expect(test.step(worker: w) == 2)
        #expect(test.withState(r.books, on: w) { $0 }.isEmpty)
    }

    /// The handler lines above are the README's, character for character (ignoring indentation).
    @Test func handlersAreTheReadmes() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: here, encoding: .utf8)
        func lines(_ s: Substring) -> [String] {
            s.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let begin = try #require(source.range(of: "// README-HANDLERS-BEGIN\n"))
        let end = try #require(source.range(of: "// README-HANDLERS-END"))
        let handlers = lines(source[begin.upperBound..<end.lowerBound])
        let block = try #require(readme.range(of: "```swift\n"))
        let close = try #require(readme[block.upperBound...].range(of: "```"))
        let shown = lines(readme[block.upperBound..<close.lowerBound])
        let start = try #require(shown.firstIndex(of: handlers[0]), "README's example has no line \(handlers[0])")
        #expect(Array(shown[start..<min(shown.count, start + handlers.count)]) == handlers)
    }
}
