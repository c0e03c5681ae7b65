// spindle-bench-nio: `spindle bench` with SwiftNIO's EventLoop.execute as one more system, measured
// in the same process and the same rounds as Spindle and the other peers.
//
//   spindle-bench-nio [SCENARIO...] [--quick] [--runs N] [--json FILE] [--plot FILE.svg] [--markdown FILE]
import Foundation
import NIOCore
import NIOPosix
import Spindle
import SpindleBench

/// `EventLoop.execute` on a one-thread MultiThreadedEventLoopGroup: the idiomatic way to hand work
/// to a NIO event loop from another thread. A new group per round, shut down after it.
let nio = ExecutorPeer.contender(system: .nioEventLoop, speed: .medium) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    return ({ job in loop.execute(job) }, { try? group.syncShutdownGracefully() })
}

/// The `executor` scenario on NIO's event loop as a serial executor (NIO's event loops are not
/// `TaskExecutor`s): the tasks run in actors whose `unownedExecutor` is `loop.executor`.
let nioExecutor = ExecutorPeer.serialExecutorContender(system: .nioEventLoop) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    return (group.next().executor.asUnownedSerialExecutor(), { try? group.syncShutdownGracefully() })
}

func value(after flag: String, in args: [String]) -> String? {
    guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
    return args[i + 1]
}

let args = Array(CommandLine.arguments.dropFirst())
let flagsWithValue: Set<String> = ["--runs", "--json", "--plot", "--markdown"]
var names: [String] = []
var skip = false
for a in args {
    if skip {
        skip = false
        continue
    }
    if flagsWithValue.contains(a) {
        skip = true
        continue
    }
    if a.hasPrefix("--") { continue }
    names.append(a)
}
let options = BenchOptions(
    scenarios: names, runs: value(after: "--runs", in: args).flatMap(Int.init),
    quick: args.contains("--quick"), json: value(after: "--json", in: args),
    plot: value(after: "--plot", in: args))
do {
    let scenarios = try options.resolve()
    let config = BenchConfig(
        engine: .hostDefault, engineSource: "embedded default", quick: options.quick, runs: options.runs)
    let harness = Harness(config: config, extra: [nio, nioExecutor])
    let report = try harness.run(scenarios, progress: !args.contains("--no-progress"))
    print(
        "spindle-bench-nio — \(config.engineSource), \(config.runs) runs per row (median, min–max), \(config.quick ? "quick" : "full") sizes"
    )
    print(TableReport(report).render())
    print(report.renderTargets())
    if let json = options.json {
        try report.writeJSON(to: json)
        print("wrote \(json)")
    }
    if let plot = options.plot {
        try SVGPlot(report).write(to: plot)
        print("wrote \(plot)")
    }
    if let md = value(after: "--markdown", in: args) {
        try TableReport(report).markdown().write(toFile: md, atomically: true, encoding: .utf8)
        print("wrote \(md)")
    }
} catch {
    FileHandle.standardError.write(Data("spindle-bench-nio: \(error)\n".utf8))
    exit(1)
}
