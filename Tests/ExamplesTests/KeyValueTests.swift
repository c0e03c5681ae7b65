import Foundation
import Spindle
import SpindleKeyValue
import SpindleRESP
import Testing

/// The key-value example over real loopback sockets, on both backends, with one worker and with
/// two (keys owned by the other worker travel over the engine's rings and back).
@Suite(.serialized)
struct KeyValueTests {
    static func start(_ backend: Engine.Configuration.Backend, workers: Int, _ tune: (inout KeyValueOptions) -> Void = { _ in })
        throws -> KeyValueServer
    {
        var o = KeyValueOptions()
        o.controlPort = 0
        o.configuration = exampleConfig(workers: workers, backend: backend)
        tune(&o)
        // One port for every worker's data listener (SO_REUSEPORT spreads connections over the
        // workers; with port 0 each listener would get a port of its own). A port taken between
        // the probe and the bind fails the start: try another.
        var attempt = 0
        while true {
            o.port = freePort()
            do { return try KeyValueServer(options: o) } catch where attempt < 5 { attempt += 1 }
        }
    }

    /// SIGTERM or SIGINT → a lane-0 event → the owner's thread stops the server, lanes drained.
    static func stopOnSignal(_ backend: Engine.Configuration.Backend, _ signo: Int32) -> Never {
        signal(signo, SIG_DFL)  // whatever the test runner set, the default: the server may own it
        let asked = DispatchSemaphore(value: 0)
        var o = KeyValueOptions()
        o.port = 0
        o.controlPort = 0
        o.configuration = exampleConfig(workers: twoOrOne, backend: backend)
        guard let server = try? KeyValueServer(options: o, onSignal: { _ in asked.signal() }) else { exit(2) }
        guard let c = try? Client(port: server.port), c.command("SET", "k", "v"), c.reply() == "+OK\r\n" else { exit(5) }
        kill(getpid(), signo)
        guard asked.wait(timeout: .now() + 10) == .success else { exit(3) }
        exit(server.stop()?.drained == true ? 0 : 4)
    }

    @Test func sigtermStopsTheServerCleanly() async {
        await #expect(processExitsWith: .exitCode(0)) { KeyValueTests.stopOnSignal(.ioUring, SIGTERM) }
        await #expect(processExitsWith: .exitCode(0)) { KeyValueTests.stopOnSignal(.epoll, SIGTERM) }
    }

    @Test func sigintStopsTheServerCleanly() async {
        await #expect(processExitsWith: .exitCode(0)) { KeyValueTests.stopOnSignal(.ioUring, SIGINT) }
        await #expect(processExitsWith: .exitCode(0)) { KeyValueTests.stopOnSignal(.epoll, SIGINT) }
    }

    /// A field of INFO as an integer.
    static func info(_ server: KeyValueServer, _ field: String) -> Int? {
        for line in server.info().split(separator: "\r\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1))
        }
        return nil
    }

    /// Every command answers as Redis does, pipelined on one connection, in order.
    @Test(arguments: serverCases)
    func commandsAnswerInOrder(backend: Engine.Configuration.Backend, workers: Int) throws {
        let server = try Self.start(backend, workers: workers)
        defer { server.stop() }
        let c = try Client(port: server.port)
        let script: [([String], String)] = [
            (["PING"], "+PONG\r\n"),
            (["ping", "hi"], "$2\r\nhi\r\n"),
            (["ECHO", "a\r\nb"], "$4\r\na\r\nb\r\n"),
            (["GET", "k"], "$-1\r\n"),
            (["SET", "k", "v"], "+OK\r\n"),
            (["GET", "k"], "$1\r\nv\r\n"),
            (["SET", "k", "w", "NX"], "$-1\r\n"),
            (["SET", "k", "w", "XX"], "+OK\r\n"),
            (["INCR", "n"], ":1\r\n"),
            (["INCR", "n"], ":2\r\n"),
            (["INCR", "k"], "-ERR value is not an integer or out of range\r\n"),
            (["SET", "big", "9223372036854775807"], "+OK\r\n"),
            (["INCR", "big"], "-ERR increment or decrement would overflow\r\n"),
            (["MSET", "a", "1", "b", "2", "c", "3", "d", "4"], "+OK\r\n"),
            (["MGET", "a", "b", "nope", "c", "d", "k"], "*6\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\nw\r\n"),
            (["EXISTS", "a", "b", "nope", "a"], ":3\r\n"),
            (["DEL", "a", "b", "nope"], ":2\r\n"),
            (["DBSIZE"], ":5\r\n"),  // k n big c d
            (["SET", "k"], "-ERR wrong number of arguments for 'set' command\r\n"),
            (["SET", "k", "v", "EX", "0"], "-ERR invalid expire time in 'set' command\r\n"),
            (["SET", "k", "v", "BOGUS"], "-ERR syntax error\r\n"),
            (["FOO", "x", "y"], "-ERR unknown command 'FOO', with args beginning with: 'x' 'y' \r\n"),
            (["COMMAND", "DOCS"], "*0\r\n"),
            (["CONFIG", "GET", "save"], "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
            (["FLUSHALL"], "+OK\r\n"),
            (["DBSIZE"], ":0\r\n"),
        ]
        var out: [UInt8] = []
        for (args, _) in script { out += multibulk(args.map { Array($0.utf8) }) }
        out += Array("PING\r\n".utf8)  // inline, as redis-benchmark's PING_INLINE
        #expect(c.write(out))
        for (args, want) in script {
            let got = c.reply()
            #expect(got == want, "\(args)")
        }
        #expect(c.reply() == "+PONG\r\n")
        let info = String(decoding: Array(server.info().utf8), as: UTF8.self)
        #expect(info.contains("lane0_critical:policy=strict"), "INFO has the engine's lanes")
        #expect(info.contains("worker0:cpu="), "INFO has the engine's workers")
        c.command("QUIT")
        #expect(c.reply() == "+OK\r\n")
        #expect(c.readToEOF().eof, "QUIT closes the connection")
    }

    /// 8 connections (spread over the workers by SO_REUSEPORT), each pipelining 500 SETs, 500
    /// GETs, a 50-key MGET and DBSIZE at once, keys spread over the workers: every reply in command
    /// order (the ones that crossed to the other worker wait for their turn), and the hop path was
    /// really taken (or, on one worker, never).
    @Test(arguments: serverCases)
    func pipelinedRepliesKeepCommandOrderAcrossWorkers(backend: Engine.Configuration.Backend, workers: Int) throws {
        let server = try Self.start(backend, workers: workers)
        defer { server.stop() }
        let n = 500, connections = 8
        let clients = try (0..<connections).map { _ in try Client(port: server.port) }
        for (c, client) in clients.enumerated() {
            var out: [UInt8] = []
            for i in 0..<n { out += multibulk([Array("SET".utf8), Array("c\(c):\(i)".utf8), Array("value-\(c)-\(i)".utf8)]) }
            for i in 0..<n { out += multibulk([Array("GET".utf8), Array("c\(c):\(i)".utf8)]) }
            out += multibulk([Array("MGET".utf8)] + (0..<50).map { Array("c\(c):\($0 * 7)".utf8) })
            #expect(client.write(out))
        }
        for (c, client) in clients.enumerated() {
            var bad = 0
            for _ in 0..<n where client.reply() != "+OK\r\n" { bad += 1 }
            for i in 0..<n {
                let v = "value-\(c)-\(i)"
                if client.reply() != "$\(v.utf8.count)\r\n\(v)\r\n" { bad += 1 }
            }
            #expect(bad == 0, "connection \(c): \(bad) replies out of order or wrong")
            var mget = "*50\r\n"
            for k in 0..<50 { mget += "$\("value-\(c)-\(k * 7)".utf8.count)\r\nvalue-\(c)-\(k * 7)\r\n" }
            #expect(client.reply() == mget, "connection \(c): MGET across workers, in key order")
        }
        clients[0].command("DBSIZE")
        #expect(clients[0].reply() == ":\(n * connections)\r\n")
        let hops = Self.info(server, "hops_sent") ?? -1
        if workers > 1 {
            #expect(hops > 0, "keys of the other worker crossed over the rings")
        } else {
            #expect(hops == 0, "one worker: no hop")
        }
        #expect(Self.info(server, "busy_replies") == 0)
    }

    /// A pipeline deeper than `maxPipeline`: the connection's input waits (kept) while it owes that
    /// many replies and resumes as they come back from the other worker; every reply in order.
    @Test(arguments: backendsOnly)
    func deepPipelinesWaitForRepliesAndResume(backend: Engine.Configuration.Backend) throws {
        try #require(twoOrOne == 2, "needs two workers (replies owed come from the other one)")
        let server = try Self.start(backend, workers: 2) { $0.maxPipeline = 8 }
        defer { server.stop() }
        let c = try Client(port: server.port)
        let n = 3000
        var out: [UInt8] = []
        for i in 0..<n { out += multibulk([Array("SET".utf8), Array("d:\(i)".utf8), Array("\(i)".utf8)]) }
        for i in 0..<n { out += multibulk([Array("INCR".utf8), Array("d:\(i)".utf8)]) }
        #expect(c.write(out))
        var good = 0
        for i in 0..<(2 * n) {  // stops at the first wrong or missing reply (a missing one waits 10 s)
            guard c.reply() == (i < n ? "+OK\r\n" : ":\(i - n + 1)\r\n") else { break }
            good += 1
        }
        #expect(good == 2 * n, "\(good) of \(2 * n) replies in order before the first wrong or missing one")
        #expect((Self.info(server, "input_waits") ?? 0) > 0, "the input waited for replies at least once")
    }

    /// SET … PX expires on access (lazy) and, untouched, by the sweep (the engine's periodic timer).
    @Test(arguments: backendsOnly)
    func keysExpireOnAccessAndBySweep(backend: Engine.Configuration.Backend) throws {
        let server = try Self.start(backend, workers: twoOrOne) { $0.sweepInterval = .milliseconds(10) }
        defer { server.stop() }
        let c = try Client(port: server.port)
        c.command("SET", "t", "v", "PX", "50")
        #expect(c.reply() == "+OK\r\n")
        c.command("GET", "t")
        #expect(c.reply() == "$1\r\nv\r\n", "alive before its time")
        #expect(eventually {
            c.command("GET", "t")
            return c.reply() == "$-1\r\n"
        }, "gone after 50 ms")
        for i in 0..<100 {
            c.command("SET", "s\(i)", "v", "PX", "20")
            _ = c.reply()
        }
        c.command("SET", "keep", "v")
        _ = c.reply()
        #expect(Self.info(server, "expired_keys").map { $0 >= 1 } == true)
        #expect(eventually { server.info().contains("db0:keys=1,expires=0") }, "the sweep removed 100 untouched keys: \(server.info().split(separator: "\r\n").filter { $0.hasPrefix("db0") })")
    }

    /// Malformed RESP: each case gets `-ERR Protocol error: …` and its connection closed, while a
    /// bystander connection opened before it goes on; the server's counters say so.
    @Test(arguments: backendsOnly)
    func badInputClosesOnlyItsConnection(backend: Engine.Configuration.Backend) throws {
        let server = try Self.start(backend, workers: twoOrOne) {
            $0.limits = RESPLimits(maxBulkLength: 256 << 10, maxArguments: 1024, maxInlineLength: 4096)
            $0.maxInput = 64 << 10
        }
        defer { server.stop() }
        let bystander = try Client(port: server.port)
        bystander.command("SET", "b", "still here")
        #expect(bystander.reply() == "+OK\r\n")
        var garbage = [UInt8](repeating: 0, count: 100_000)
        var rng = SystemRandomNumberGenerator()
        for i in garbage.indices { garbage[i] = UInt8.random(in: 0...255, using: &rng) }
        garbage[0] = 0x00  // binary: not a command
        let cases: [(String, [UInt8], String)] = [
            ("bad type byte", Array("$3\r\nfoo\r\n".utf8), "unexpected byte '$'"),
            ("reply type inside a frame", Array("*1\r\n+PING\r\n".utf8), "expected '$', got '+'"),
            ("negative bulk length", Array("*1\r\n$-5\r\n".utf8), "invalid bulk length"),
            ("huge multibulk length", Array("*99999999999\r\n".utf8), "arguments, over the limit"),
            ("non-numeric length", Array("*2\r\n$x\r\n".utf8), "invalid bulk length"),
            ("bulk over the limit", Array("*2\r\n$3\r\nGET\r\n$300000\r\n".utf8), "over the limit of 262144 bytes"),
            ("bulk over the input bound", Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n".utf8), "input limit"),
            ("unterminated frame past the bound", Array("*1000\r\n".utf8) + [UInt8](repeating: 0, count: 0)
                + Array(repeating: Array("$3\r\nabc\r\n".utf8), count: 999).flatMap { $0 } + Array("$60000\r\n".utf8)
                + [UInt8](repeating: 0x61, count: 70_000), "input limit"),
            ("inline line past the limit", [UInt8](repeating: 0x41, count: 10_000), "too big inline request"),
            ("missing CRLF after a bulk", Array("*1\r\n$3\r\nabcXY".utf8), "not followed by CRLF"),
            ("binary garbage", garbage, "Protocol error"),
        ]
        for (name, input, text) in cases {
            let c = try Client(port: server.port)
            c.write(input)  // may fail part-way once the server has closed: that is the point
            let (eof, reply) = c.textToEOF()
            #expect(reply.hasPrefix("-ERR Protocol error: "), "\(name): \(reply.prefix(120))")
            #expect(reply.contains(text), "\(name): \(reply.prefix(120))")
            #expect(eof, "\(name): the server closed the connection")
            bystander.command("GET", "b")
            #expect(bystander.reply() == "$10\r\nstill here\r\n", "after \(name): the other connection goes on")
        }
        #expect(Self.info(server, "protocol_errors") == cases.count)
    }

    /// A client that pipelines GETs of a 64 KiB value and never reads: its unsent replies pass
    /// `maxOutput` and it is closed (the bytes it could receive are bounded); another goes on.
    @Test(arguments: backendsOnly)
    func clientThatNeverReadsIsClosedAtTheOutputBound(backend: Engine.Configuration.Backend) throws {
        let server = try Self.start(backend, workers: twoOrOne) { $0.maxOutput = 1 << 20 }
        defer { server.stop() }
        let bystander = try Client(port: server.port)
        let value = String(repeating: "x", count: 64 << 10)
        bystander.command("SET", "v", value)
        #expect(bystander.reply() == "+OK\r\n")
        let c = try Client(port: server.port, receiveBuffer: 4096)
        let gets = 2000  // 128 MiB of replies if they were all sent
        var out: [UInt8] = []
        for _ in 0..<100 { out += multibulk([Array("GET".utf8), Array("v".utf8)]) }
        var written = 0
        for _ in 0..<(gets / 100) {
            guard c.write(out) else { break }  // refused once the server has closed
            written += 100
        }
        #expect(eventually { Self.info(server, "output_limit_closes") == 1 }, "the server closed the connection at its output bound")
        let (eof, received) = c.readToEOF()
        #expect(eof, "the connection ends")
        #expect(received < gets * (value.count + 10) / 4, "received \(received) bytes of \(written) GETs: bounded")
        bystander.command("GET", "v")
        #expect(bystander.reply()?.utf8.count == value.count + 10, "the other connection goes on")
    }

    /// The control port (lane 0) answers while the data port floods, and INFO reports the lanes.
    @Test(arguments: backendsOnly)
    func controlPortAnswersOnTheStrictLane(backend: Engine.Configuration.Backend) throws {
        let server = try Self.start(backend, workers: twoOrOne)
        defer { server.stop() }
        #expect(server.controlLane == "critical")
        #expect(server.dataLane == "high")
        let control = try Client(port: server.controlPort)
        control.command("PING")
        #expect(control.reply() == "+PONG\r\n")
        control.command("INFO")
        let info = control.reply() ?? ""
        #expect(info.contains("lane1_high:policy=weighted"), "\(info.prefix(200))")
        control.command("SET", "c", "1")
        #expect(control.reply() == "+OK\r\n")
        let data = try Client(port: server.port)
        data.command("GET", "c")
        #expect(data.reply() == "$1\r\n1\r\n", "one keyspace behind both ports")
    }
}
