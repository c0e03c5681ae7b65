import Foundation
import Testing

@testable import Spindle

// README-BEGIN
struct Quote: InlineEvent { var symbol: UInt32; var bid: Double; var ask: Double }  // 24 bytes: inline
struct Halt: InlineEvent { var symbol: UInt32 }

func readmeExample() async throws -> ShutdownReport {
    var builder = Engine.Builder()  // the embedded default: every CPU, 4 lanes
    let critical = try builder.lane(named: "critical"), bulk = try builder.lane(named: "bulk")
    let books = builder.coreLocal { _ in [UInt32: Double]() }  // one per worker, built on it
    let halt = try builder.register(Halt.self, using: books) { h, book, _ in book[h.symbol] = nil }
    let quote = try builder.register(Quote.self, using: books) { q, book, ctx in
        book[q.symbol] = q.bid
        if q.ask < q.bid { try ctx.post(Halt(symbol: q.symbol), as: halt, lane: critical) }  // this worker
    }
    let engine = try builder.start()
    for i in 0..<1_000 {
        let q = Quote(symbol: UInt32(i % 16), bid: 2, ask: i % 100 == 0 ? 1 : 3)
        try engine.post(q, as: quote, lane: bulk, to: .key(UInt64(q.symbol)))  // one symbol, one worker
    }
    let report = await engine.shutdown(deadline: .now + .seconds(2))  // drains every lane
    print(report)  // drained: every lane empty
    return report
}
// README-END

extension EngineSuites {
    /// The README's example compiles (it is this file), runs, and is what README.md shows.
    @Suite(.serialized)
    struct ReadmeExampleTests {
        @Test func exampleRunsAndDrains() async throws {
            let report = try await readmeExample()
            #expect(report.drained)
            #expect(report.totals[3].handled == 1000)  // quotes on bulk
            #expect(report.totals[0].handled == 10)  // halts on critical
        }

        @Test func readmeShowsThisExample() throws {
            let here = URL(fileURLWithPath: #filePath)
            let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
            let source = try String(contentsOf: here, encoding: .utf8)
            func lines(_ s: Substring) -> [String] {
                s.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            let begin = source.range(of: "// README-BEGIN\n")!, end = source.range(of: "// README-END")!
            let example = lines(source[begin.upperBound..<end.lowerBound])
            guard let block = readme.range(of: "```swift\n"), let close = readme[block.upperBound...].range(of: "```") else {
                Issue.record("README.md has no swift block")
                return
            }
            let shown = lines(readme[block.upperBound..<close.lowerBound])
            #expect(shown == example)
        }
    }
}
