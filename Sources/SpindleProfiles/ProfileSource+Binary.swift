import CSpindle
import Spindle

extension ProfileSource {
    /// Encodes the version 1.0 binary (wraps `sp_profile_encode`, which runs the loader's checks
    /// on the result: nothing that breaks a host-independent rule is ever returned).
    /// - Throws: `SpindleError` naming `name`, the section, key, value, rule and fix.
    public func encode(name: String) throws(SpindleError) -> [UInt8] {
        var cfg = config
        var raw = host.cValue()
        let size = sp_profile_encoded_size(&cfg, &raw)
        var bytes = [UInt8](repeating: 0, count: size)
        var msg = [CChar](repeating: 0, count: Int(SP_PROFILE_MSG_MAX))
        let rc = bytes.withUnsafeMutableBytes { buf in
            sp_profile_encode(&cfg, &raw, name, buf.baseAddress, buf.count, &msg, msg.count)
        }
        guard rc >= 0 else { throw SpindleError(.invalidProfile, cMessage(msg)) }
        return Array(bytes.prefix(rc))
    }

    /// Decodes and validates profile bytes (wraps `sp_profile_parse`).
    /// - Returns: the source and the file's format info (version, feature masks).
    public static func decode(_ bytes: [UInt8], name: String) throws(SpindleError) -> (ProfileSource, sp_profile_info) {
        var cfg = sp_config()
        var host = sp_host_facts()
        var info = sp_profile_info()
        var msg = [CChar](repeating: 0, count: Int(SP_PROFILE_MSG_MAX))
        let rc = bytes.withUnsafeBytes { buf in
            sp_profile_parse(buf.baseAddress, buf.count, name, &cfg, &host, &info, &msg, msg.count)
        }
        guard rc == 0 else { throw SpindleError(.invalidProfile, cMessage(msg)) }
        return (ProfileSource(config: cfg, host: HostFacts(host)), info)
    }

    /// The CPUs of the workers, worker 0 first.
    public var cpus: [Int] {
        var c = config
        return withUnsafeBytes(of: &c.cpus) { buf in
            (0..<Int(c.worker_count)).map { Int(buf.load(fromByteOffset: $0 * 2, as: UInt16.self)) }
        }
    }

    /// The lanes, lane 0 first.
    public var lanes: [sp_lane_config] {
        var c = config
        return withUnsafeBytes(of: &c.lanes) { buf in
            (0..<Int(min(c.lane_count, UInt32(SP_MAX_LANES)))).map {
                buf.load(fromByteOffset: $0 * MemoryLayout<sp_lane_config>.stride, as: sp_lane_config.self)
            }
        }
    }

    static func laneName(_ lane: sp_lane_config) -> String {
        var l = lane
        return HostFacts.string(&l.name)
    }
}
