// spindle-echo: TCP echo on Spindle. One line on stdout when it listens; SIGTERM/SIGINT stop it.
import ArgumentParser
import Dispatch
import Glibc
import Logging
import Spindle
import SpindleEcho

@main
struct SpindleEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spindle-echo", abstract: "TCP echo on Spindle: a bulk port on a weighted lane, a control port on lane 0.")

    @Option(help: "Bulk port (a weighted lane, every worker).") var port = 7000
    @Option(name: .customLong("control-port"), help: "Control port (lane 0, strict; worker 0).") var controlPort = 7001
    @Option(help: "Numeric address to listen on.") var host = "127.0.0.1"
    @Option(help: "A compiled profile (.spindle); default: the embedded default for this host.") var profile: String?
    @Option(help: "Use only the first N workers of the configuration.") var workers: Int?

    func run() throws {
        var options = EchoOptions()
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
        options.configuration = config
        var logger = Logger(label: "spindle-echo", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        let stop = DispatchSemaphore(value: 0)
        let server = try EchoServer(options: options, logger: logger) { _ in stop.signal() }
        writeLine(1, "spindle-echo: listening on \(host):\(server.port) (bulk, lane \(server.bulkLane)) and \(host):\(server.controlPort) (control, lane 0), \(server.engine.workerCount) workers")
        stop.wait()
        server.stop()
    }
}

/// Writes one line to `fd` at once (stdout may be a pipe: the line must not wait in a buffer).
func writeLine(_ fd: Int32, _ line: String) {
    var s = line + "\n"
    s.withUTF8 { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
}
