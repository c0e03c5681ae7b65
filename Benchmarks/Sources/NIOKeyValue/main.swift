// nio-kv: the key-value service of `spindle-kv` written the way a Swift user would on SwiftNIO
// today — NIOPosix, one event loop, a ByteToMessageDecoder for RESP2, a Dictionary store. The
// services benchmark (scripts/bench-services.sh) runs it next to spindle-kv and redis-server.
//
//   nio-kv [--port P] [--host 127.0.0.1]
//
// Prints one line when it listens; stops on SIGTERM or SIGINT.
import Dispatch
import Foundation
import NIOCore
import NIOPosix

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("nio-kv: \(message)\n".utf8))
    exit(2)
}

var port = 6390
var host = "127.0.0.1"
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--port":
        guard let value = arguments.popFirst(), let p = Int(value), (0...65535).contains(p) else { fail("--port needs a port number") }
        port = p
    case "--host":
        guard let value = arguments.popFirst() else { fail("--host needs an address") }
        host = value
    case "-h", "--help":
        print("usage: nio-kv [--port P] [--host ADDR]")
        exit(0)
    default:
        fail("unknown argument '\(flag)' (usage: nio-kv [--port P] [--host ADDR])")
    }
}

/// Listens until SIGTERM or SIGINT, then closes the listener and shuts the loop down. (Not in
/// top-level code: that is main-actor isolated, and the signal handler runs on a Dispatch queue.)
func serve(host: String, port: Int) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let store = Store()
    let stats = ServerStats()

    let bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(ChannelOptions.backlog, value: 1024)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                try channel.pipeline.syncOperations.addHandler(KeyValueHandler(store: store, stats: stats))
            }
        }

    let server: Channel
    do {
        server = try bootstrap.bind(host: host, port: port).wait()
    } catch {
        fail("cannot listen on \(host):\(port): \(error)")
    }
    // Expired keys are also dropped when touched; the sweep bounds the memory of keys never read again.
    let sweep = loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
        store.sweep(now: .now())
    }

    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let signalQueue = DispatchQueue(label: "nio-kv.signals")
    var sources: [DispatchSourceSignal] = []
    for number in [SIGTERM, SIGINT] {
        let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
        source.setEventHandler { @Sendable in server.close(promise: nil) }
        source.resume()
        sources.append(source)
    }

    FileHandle.standardOutput.write(
        Data("nio-kv listening on \(host):\(server.localAddress?.port ?? port) (SwiftNIO, 1 event loop)\n".utf8))
    try? server.closeFuture.wait()
    sweep.cancel()
    try? group.syncShutdownGracefully()
}

serve(host: host, port: port)
