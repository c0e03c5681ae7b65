import CTestSupport
import Foundation
import Spindle
import SpindleRESP
import Testing

/// A blocking loopback client with 10 s send and receive timeouts: every wait is bounded.
final class Client {
    let fd: Int32
    var buffer: [UInt8] = []

    init(port: Int, receiveBuffer: Int32? = nil) throws {
        let r = cts_connect_loopback(Int32(port), receiveBuffer ?? 0, 10)
        guard r >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: -r) ?? .EIO) }
        fd = r
    }

    deinit { close(fd) }

    /// Writes all of `bytes`; false when the peer closed or the send timed out.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Sends a command as a multibulk frame.
    @discardableResult
    func command(_ args: String...) -> Bool { write(multibulk(args.map { Array($0.utf8) })) }

    /// One more read into the buffer; false on EOF, error or timeout.
    func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            buffer += chunk[..<n]
            return true
        }
    }

    /// The next whole reply, as raw RESP text; nil on EOF or timeout (10 s per read).
    func reply() -> String? {
        while true {
            if let n = buffer.withUnsafeBytes({ RESPReply.length($0) }) {
                let r = String(decoding: buffer[..<n], as: UTF8.self)
                buffer.removeFirst(n)
                return r
            }
            guard fill() else { return nil }
        }
    }

    /// Reads until the peer closes (true) or a read times out / fails (false); counts the bytes.
    func readToEOF() -> (eof: Bool, bytes: Int) {
        var total = buffer.count
        buffer.removeAll()
        var chunk = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { return (true, total) }
            if n < 0 { return (errno == ECONNRESET, total) }
            total += n
        }
    }

    /// Everything until EOF as text (for small replies).
    func textToEOF() -> (eof: Bool, text: String) {
        while fill() {}
        let eof = errno != EAGAIN && errno != EWOULDBLOCK
        return (eof, String(decoding: buffer, as: UTF8.self))
    }
}

/// A test configuration: the host default's lanes, `workers` workers, `backend`, short spin.
func exampleConfig(workers: Int, backend: Engine.Configuration.Backend) -> Engine.Configuration {
    var c = Engine.Configuration.hostDefault
    c.cpus = Array(c.cpus.prefix(workers))
    c.backend = backend
    c.spin = .microseconds(20)
    return c
}

/// Polls `condition` until it holds or `seconds` pass (never a hang).
func eventually(within seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

/// The workers this machine can give a test (2 when it has them).
let twoOrOne = min(2, Engine.Configuration.hostDefault.cpus.count)

/// (backend, workers) pairs every server behaviour is checked on.
let serverCases: [(Engine.Configuration.Backend, Int)] = [(.ioUring, 1), (.ioUring, twoOrOne), (.epoll, 1), (.epoll, twoOrOne)]
let backendsOnly: [Engine.Configuration.Backend] = [.ioUring, .epoll]

/// A TCP port free on 127.0.0.1 now (the kernel's pick for a socket bound to port 0, then closed).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
            _ = bind(fd, p, len)
            return getsockname(fd, p, &len)
        }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}
