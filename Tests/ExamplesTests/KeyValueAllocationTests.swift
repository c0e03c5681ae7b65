import CMallocCounter
import Foundation
import Spindle
import SpindleKeyValue
import Testing

/// The key-value server's hot path allocates nothing per command once warm: GET and overwriting
/// SET, pipelined, on one worker and across two (hops are pooled). Counted by the malloc
/// interposer over the whole process while a client that allocates nothing drives it.
@Suite(.serialized)
struct KeyValueAllocationTests {
    @Test(arguments: [1, twoOrOne])
    func steadyStateCommandsAllocateNothing(workers: Int) throws {
        try #require(spmc_active() == 1, "the malloc counter is not active (sanitizer build?)")
        let server = try KeyValueTests.start(.ioUring, workers: workers)
        defer { server.stop() }
        let c = try Client(port: server.port)
        let keys = 64
        var sets: [UInt8] = [], gets: [UInt8] = []
        for k in 0..<keys {
            sets += multibulk([Array("SET".utf8), Array("key:\(k)".utf8), Array("v".utf8)])
            gets += multibulk([Array("GET".utf8), Array("key:\(k)".utf8)])
        }
        let setReply = keys * 5, getReply = keys * 7  // "+OK\r\n", "$1\r\nv\r\n"
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
        defer { buffer.deallocate() }
        /// One pipelined round trip with no allocation on this side: false on a short read.
        func round(_ request: [UInt8], _ replyBytes: Int) -> Bool {
            guard c.write(request) else { return false }
            var got = 0
            while got < replyBytes {
                let n = recv(c.fd, buffer.baseAddress! + got, buffer.count - got, 0)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                got += n
            }
            return got == replyBytes
        }
        for _ in 0..<200 {  // warm: tables, hop pools, buffers at their working size
            #expect(round(sets, setReply) && round(gets, getReply))
        }
        let rounds = 300
        let before = spmc_total()
        var ok = true
        for _ in 0..<rounds { ok = ok && round(sets, setReply) && round(gets, getReply) }
        let allocations = spmc_total() - before
        #expect(ok, "every round trip complete")
        let commands = rounds * 2 * keys
        // Zero per command; a few stray allocations of the process (the test runner) are tolerated.
        #expect(allocations < UInt64(commands / 1000), "\(allocations) allocations for \(commands) commands on \(workers) worker(s)")
        if workers > 1 { #expect((KeyValueTests.info(server, "hops_sent") ?? 0) > 0) }
    }
}
