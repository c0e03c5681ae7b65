import NIOCore

/// One client command: its arguments as slices of the read buffer (no copy).
struct RESPCommand {
    var arguments: [ByteBuffer]
}

/// Errors that end a connection after an `-ERR Protocol error: …` reply, as redis-server does.
struct RESPProtocolError: Error, CustomStringConvertible {
    var description: String
}

/// RESP2 requests: multibulk arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
/// commands (`PING\r\n`). Nothing is consumed until a whole command is in the buffer. Lengths are
/// bounded so bytes from a client cannot grow the buffer without limit.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPCommand

    /// Largest bulk string accepted (redis-server's default is 512 MB; a cache of small values
    /// needs far less).
    static let maxBulkLength = 8 << 20
    /// Most arguments in one command.
    static let maxArguments = 1 << 20
    /// Longest inline command or `*`/`$` header line.
    static let maxLineLength = 64 << 10

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var peek = buffer
        guard let command = try Self.parse(&peek) else {
            if buffer.readableBytes > Self.maxLineLength, buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) == nil {
                throw RESPProtocolError(description: "too big inline request")
            }
            return .needMoreData
        }
        buffer = peek
        context.fireChannelRead(Self.wrapInboundOut(command))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// A whole command read from `buffer`, or nil (buffer's reader index then meaningless) if more
    /// bytes are needed. An empty inline line yields a command with no arguments.
    static func parse(_ buffer: inout ByteBuffer) throws -> RESPCommand? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        if first != UInt8(ascii: "*") { return try parseInline(&buffer) }
        guard let count = try readLength(&buffer, prefix: UInt8(ascii: "*"), limit: maxArguments) else { return nil }
        var arguments: [ByteBuffer] = []
        arguments.reserveCapacity(min(count, 16))
        for _ in 0..<count {
            guard let length = try readLength(&buffer, prefix: UInt8(ascii: "$"), limit: maxBulkLength) else { return nil }
            guard buffer.readableBytes >= length + 2 else { return nil }
            let argument = buffer.readSlice(length: length)!
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw RESPProtocolError(description: "expected '\\r\\n' after a bulk string")
            }
            arguments.append(argument)
        }
        return RESPCommand(arguments: arguments)
    }

    /// `<prefix><digits>\r\n` → the number; nil if the line is not complete yet.
    private static func readLength(_ buffer: inout ByteBuffer, prefix: UInt8, limit: Int) throws -> Int? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > 32 { throw RESPProtocolError(description: "unterminated length line") }
            return nil
        }
        guard cr + 1 < view.endIndex else { return nil }
        guard view[view.startIndex] == prefix else {
            throw RESPProtocolError(description: "expected '\(Character(Unicode.Scalar(prefix)))', got '\(Character(Unicode.Scalar(view[view.startIndex])))'")
        }
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw RESPProtocolError(description: "expected '\\n'") }
        var value = 0
        for byte in view[(view.startIndex + 1)..<cr] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), value <= limit else {
                throw RESPProtocolError(description: "invalid \(prefix == UInt8(ascii: "*") ? "multibulk" : "bulk") length")
            }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard cr > view.startIndex + 1, value <= limit else {
            throw RESPProtocolError(description: "invalid \(prefix == UInt8(ascii: "*") ? "multibulk" : "bulk") length")
        }
        buffer.moveReaderIndex(forwardBy: cr + 2 - view.startIndex)
        return value
    }

    private static func parseInline(_ buffer: inout ByteBuffer) throws -> RESPCommand? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var end = newline
        if end > view.startIndex, view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        var arguments: [ByteBuffer] = []
        var start: Int? = nil
        for i in view.startIndex...end {
            let isSpace = i == end || view[i] == UInt8(ascii: " ") || view[i] == UInt8(ascii: "\t")
            if isSpace, let s = start {
                arguments.append(buffer.getSlice(at: buffer.readerIndex + (s - view.startIndex), length: i - s)!)
                start = nil
            } else if !isSpace, start == nil {
                start = i
            }
        }
        buffer.moveReaderIndex(forwardBy: newline + 1 - view.startIndex)
        return RESPCommand(arguments: arguments)
    }
}
