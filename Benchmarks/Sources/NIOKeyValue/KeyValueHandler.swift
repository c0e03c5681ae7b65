import NIOCore

/// Answers RESP commands against the shared `Store`. Replies are written into one buffer per read
/// batch and flushed on `channelReadComplete`, so a pipelined batch costs one write.
final class KeyValueHandler: ChannelInboundHandler {
    typealias InboundIn = RESPCommand
    typealias OutboundOut = ByteBuffer

    private let store: Store
    private let stats: ServerStats
    private var out: ByteBuffer
    private var closing = false

    init(store: Store, stats: ServerStats) {
        self.store = store
        self.stats = stats
        self.out = ByteBuffer()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        out = context.channel.allocator.buffer(capacity: 4096)
        stats.connections += 1
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stats.connections -= 1
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let command = unwrapInboundIn(data)
        stats.commands += 1
        execute(command.arguments, context: context)
        // Bound what one read batch can queue before it is written.
        if out.readableBytes >= 64 << 10 { flush(context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context: context)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? RESPProtocolError {
            out.writeError("ERR Protocol error: \(error.description)")
            closeAfterFlush(context: context)
        } else {
            context.close(promise: nil)
        }
    }

    /// A client that does not read its replies stops being read (TCP backpressure), instead of
    /// having its replies queue without bound.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.channel.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenComplete { _ in }
        context.fireChannelWritabilityChanged()
    }

    private func flush(context: ChannelHandlerContext) {
        guard out.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        out = context.channel.allocator.buffer(capacity: 4096)
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        closing = true
        let reply = out
        out = context.channel.allocator.buffer(capacity: 0)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func execute(_ args: [ByteBuffer], context: ChannelHandlerContext) {
        guard let name = args.first else { return }  // an empty inline line: no reply, like redis-server
        let command = name.uppercasedName()
        let now = NIODeadline.now()
        switch command {
        case "PING":
            if args.count == 1 { out.writeStaticString("+PONG\r\n") } else if args.count == 2 { out.writeBulk(args[1]) } else { wrongArity(name) }
        case "ECHO":
            guard args.count == 2 else { return wrongArity(name) }
            out.writeBulk(args[1])
        case "GET":
            guard args.count == 2 else { return wrongArity(name) }
            if let value = store.get(args[1], now: now) { out.writeBulk(value) } else { out.writeStaticString("$-1\r\n") }
        case "SET":
            set(args, now: now)
        case "DEL":
            guard args.count >= 2 else { return wrongArity(name) }
            var removed = 0
            for key in args.dropFirst() where store.remove(key) { removed += 1 }
            out.writeInteger(removed)
        case "EXISTS":
            guard args.count >= 2 else { return wrongArity(name) }
            var found = 0
            for key in args.dropFirst() where store.get(key, now: now) != nil { found += 1 }
            out.writeInteger(found)
        case "INCR":
            guard args.count == 2 else { return wrongArity(name) }
            incr(args[1], now: now)
        case "MGET":
            guard args.count >= 2 else { return wrongArity(name) }
            out.writeArrayHeader(args.count - 1)
            for key in args.dropFirst() {
                if let value = store.get(key, now: now) { out.writeBulk(value) } else { out.writeStaticString("$-1\r\n") }
            }
        case "MSET":
            guard args.count >= 3, args.count % 2 == 1 else { return wrongArity(name) }
            var i = 1
            while i < args.count {
                store.set(args[i], args[i + 1], expiry: nil)
                i += 2
            }
            out.writeStaticString("+OK\r\n")
        case "DBSIZE":
            out.writeInteger(store.count)
        case "FLUSHALL", "FLUSHDB":
            store.removeAll()
            out.writeStaticString("+OK\r\n")
        case "INFO":
            var info = "# Server\r\nredis_version:7.0.0\r\nserver:nio-kv\r\nevent_loops:1\r\n"
            info += "# Clients\r\nconnected_clients:\(stats.connections)\r\n"
            info += "# Stats\r\ntotal_commands_processed:\(stats.commands)\r\nexpired_keys:\(store.expiredCount)\r\n"
            info += "# Keyspace\r\ndb0:keys=\(store.count),expires=0\r\n"
            out.writeBulk(string: info)
        case "QUIT":
            out.writeStaticString("+OK\r\n")
            closeAfterFlush(context: context)
        case "COMMAND":
            out.writeStaticString("*0\r\n")
        default:
            let shown = String(decoding: name.readableBytesView.prefix(128), as: UTF8.self)
            out.writeError("ERR unknown command '\(shown)', with args beginning with: ")
        }
    }

    private func set(_ args: [ByteBuffer], now: NIODeadline) {
        guard args.count >= 3 else { return wrongArity(args[0]) }
        var expiry: NIODeadline? = nil
        var i = 3
        while i < args.count {
            let option = args[i].uppercasedName()
            guard option == "EX" || option == "PX", i + 1 < args.count else {
                return out.writeError("ERR syntax error")
            }
            guard let amount = args[i + 1].integerValue(), amount > 0 else {
                return out.writeError("ERR invalid expire time in 'set' command")
            }
            let ttl: TimeAmount = option == "EX" ? .seconds(Int64(amount)) : .milliseconds(Int64(amount))
            expiry = now + ttl
            i += 2
        }
        store.set(args[1], args[2], expiry: expiry)
        out.writeStaticString("+OK\r\n")
    }

    private func incr(_ key: ByteBuffer, now: NIODeadline) {
        let current: Int
        if let value = store.get(key, now: now) {
            guard let n = value.integerValue() else { return out.writeError("ERR value is not an integer or out of range") }
            current = n
        } else {
            current = 0
        }
        let (next, overflow) = current.addingReportingOverflow(1)
        guard !overflow else { return out.writeError("ERR increment or decrement would overflow") }
        var value = ByteBuffer()
        value.writeString(String(next))
        store.set(key, value, expiry: nil)
        out.writeInteger(next)
    }

    private func wrongArity(_ name: ByteBuffer) {
        out.writeError("ERR wrong number of arguments for '\(String(buffer: name).lowercased())' command")
    }
}

/// Counters for INFO; touched only on the event loop.
final class ServerStats: @unchecked Sendable {
    var connections = 0
    var commands = 0
}

extension ByteBuffer {
    /// The bytes as an upper-case ASCII string (command names and options are case-insensitive).
    func uppercasedName() -> String {
        String(unsafeUninitializedCapacity: readableBytes) { out in
            var n = 0
            for byte in readableBytesView {
                out[n] = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 32 : byte
                n += 1
            }
            return n
        }
    }

    /// The bytes as a signed decimal integer, or nil.
    func integerValue() -> Int? {
        guard readableBytes > 0, readableBytes <= 20 else { return nil }
        return Int(String(buffer: self))
    }

    mutating func writeBulk(_ value: ByteBuffer) {
        writeStaticString("$")
        writeString(String(value.readableBytes))
        writeStaticString("\r\n")
        writeImmutableBuffer(value)
        writeStaticString("\r\n")
    }

    mutating func writeBulk(string: String) {
        writeStaticString("$")
        writeString(String(string.utf8.count))
        writeStaticString("\r\n")
        writeString(string)
        writeStaticString("\r\n")
    }

    mutating func writeInteger(_ value: Int) {
        writeStaticString(":")
        writeString(String(value))
        writeStaticString("\r\n")
    }

    mutating func writeArrayHeader(_ count: Int) {
        writeStaticString("*")
        writeString(String(count))
        writeStaticString("\r\n")
    }

    mutating func writeError(_ message: String) {
        writeStaticString("-")
        writeString(String(message.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 }))
        writeStaticString("\r\n")
    }
}
