import Foundation
import Spindle
import SpindleEcho
import Testing

/// The echo example: both ports echo every byte in order, on both backends.
@Suite(.serialized)
struct EchoTests {
    @Test(arguments: backendsOnly)
    func bothPortsEchoInOrder(backend: Engine.Configuration.Backend) throws {
        var o = EchoOptions()
        o.port = 0
        o.controlPort = 0
        o.configuration = exampleConfig(workers: twoOrOne, backend: backend)
        let server = try EchoServer(options: o)
        defer { server.stop() }
        #expect(server.bulkLane == "high")
        for port in [server.port, server.controlPort] {
            let c = try Client(port: port)
            let chunk = 32 << 10
            var sent = [UInt8](repeating: 0, count: chunk)
            for round in 0..<32 {  // 1 MiB per port, in 32 KiB round trips
                for i in 0..<chunk { sent[i] = UInt8(truncatingIfNeeded: i &* 31 &+ round &* 7) }
                #expect(c.write(sent))
                c.buffer.removeAll()
                while c.buffer.count < chunk { if !c.fill() { break } }
                #expect(c.buffer == sent, "port \(port), round \(round)")
            }
        }
    }
}
