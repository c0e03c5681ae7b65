// spindle-kv: the key-value example as a program. One line on stdout when it listens; SIGTERM or
// SIGINT stops it cleanly (the signal arrives as a lane-0 event; this thread shuts the engine down).
import ArgumentParser
import Dispatch
import Glibc
import Logging
import Spindle
import SpindleKeyValue
import SpindleRESP

@main
struct SpindleKV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spindle-kv",
        abstract: "An in-memory key-value server speaking RESP2 (redis-cli, redis-benchmark) on Spindle.")

    @Option(help: "Data port (served on a weighted lane by every worker).") var port = 6380
    @Option(name: .customLong("control-port"), help: "Control port (lane 0, strict; worker 0).") var controlPort = 6381
    @Option(help: "Numeric address to listen on.") var host = "127.0.0.1"
    @Option(help: "A compiled profile (.spindle); default: the embedded default for this host.") var profile: String?
    @Option(help: "Use only the first N workers of the configuration.") var workers: Int?
    @Option(name: .customLong("data-lane"), help: "The data port's lane by name (default: the first weighted lane).") var dataLane: String?
    @Option(name: .customLong("max-bulk"), help: "Longest bulk string (e.g. 512MB).") var maxBulk = "512MB"
    @Option(name: .customLong("max-args"), help: "Most arguments per command.") var maxArgs = 1 << 20
    @Option(name: .customLong("max-inline"), help: "Longest inline command or header line.") var maxInline = "64KB"
    @Option(name: .customLong("max-input"), help: "Unprocessed input one connection may hold (bounds a value's size too).") var maxInput = "16MB"
    @Option(name: .customLong("max-output"), help: "Unsent reply bytes one connection may have before it is closed.") var maxOutput = "16MB"
    @Option(name: .customLong("max-pipeline"), help: "Replies one connection may owe before its input waits.") var maxPipeline = 1024
    @Option(help: "Backend: auto, io_uring or epoll.") var backend = "auto"

    func run() throws {
        var options = KeyValueOptions()
        options.port = port
        options.controlPort = controlPort
        options.host = host
        var config = try profile.map { try Engine.Configuration(profile: Profile(contentsOf: $0)) } ?? .hostDefault
        if let workers {
            guard workers >= 1 && workers <= config.cpus.count else {
                throw ValidationError("--workers \(workers): the configuration has \(config.cpus.count) CPUs")
            }
            config.cpus = Array(config.cpus.prefix(workers))
        }
        switch backend {
        case "auto": config.backend = .auto
        case "io_uring", "io-uring": config.backend = .ioUring
        case "epoll": config.backend = .epoll
        default: throw ValidationError("--backend \(backend): one of auto, io_uring, epoll")
        }
        options.configuration = config
        options.dataLane = dataLane
        options.limits = RESPLimits(maxBulkLength: try size(maxBulk, "--max-bulk"), maxArguments: maxArgs,
                                    maxInlineLength: try size(maxInline, "--max-inline"))
        options.maxInput = try size(maxInput, "--max-input")
        options.maxOutput = try size(maxOutput, "--max-output")
        options.maxPipeline = max(1, maxPipeline)
        var logger = Logger(label: "spindle-kv", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        let stop = DispatchSemaphore(value: 0)
        let server = try KeyValueServer(options: options, logger: logger) { _ in stop.signal() }
        writeLine(1, "spindle-kv: listening on \(host):\(server.port) (data, lane \(server.dataLane)) and \(host):\(server.controlPort) (control, lane \(server.controlLane)), \(server.engine.workerCount) workers, \(server.engine.backend == .ioUring ? "io_uring" : "epoll")")
        stop.wait()
        let report = server.stop(deadline: .seconds(5))
        writeLine(2, "spindle-kv: stopped\(report.map { $0.drained ? "" : " (\($0))" } ?? "")")
    }
}

/// "512MB", "64k", "1GiB", "4096" → bytes.
func size(_ text: String, _ flag: String) throws -> Int {
    let t = text.lowercased()
    let digits = t.prefix { $0.isNumber }
    guard let n = Int(digits) else { throw ValidationError("\(flag) \(text): a size such as 4096, 64KB, 16MB, 1GB") }
    let unit = t.dropFirst(digits.count)
    let scale: Int
    switch unit {
    case "", "b": scale = 1
    case "k", "kb", "kib": scale = 1 << 10
    case "m", "mb", "mib": scale = 1 << 20
    case "g", "gb", "gib": scale = 1 << 30
    default: throw ValidationError("\(flag) \(text): unknown unit \"\(unit)\" (use KB, MB, GB)")
    }
    return n * scale
}



/// Writes one line to `fd` at once (stdout may be a pipe: the line must not wait in a buffer).
func writeLine(_ fd: Int32, _ line: String) {
    var s = line + "\n"
    s.withUTF8 { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
}
