import CSpindle

/// A compiled per-host profile, memory-mapped read-only and validated completely when opened.
///
/// Opening checks size, magic, version, feature bits, CRC32C, the section table, every field's
/// range and every cross-field rule before any value is used; a profile is refused, never
/// half-used. Host rules (the CPUs exist here and are allowed, the host has not drifted since
/// `detect`) are checked by ``checkHost(strict:)`` and by ``Engine/Configuration/init(profile:warn:)-(String,_)``.
///
/// A `Profile` is `~Copyable`: the mapping is closed exactly once, when the value is consumed.
///
/// ```swift
/// let profile = try Profile(contentsOf: "/etc/spindle/host.spindle")
/// var builder = Engine.Builder(configuration: try .init(profile: profile))
/// ```
public struct Profile: ~Copyable {
    @usableFromInline
    let handle: OpaquePointer

    /// The file's path, as given (it names the file in every message).
    public let path: String

    /// Opens, maps and validates a compiled profile (wraps `sp_profile_open`).
    /// - Parameters:
    ///   - path: the `.spindle` file.
    ///   - allowWritableByOthers: accept a file that group or others may write. Refused by
    ///     default, as sshd's StrictModes does: whoever can write it chooses the CPUs we spin on.
    /// - Throws: ``SpindleError`` with code ``SpindleError/Code/invalidProfile`` and one line
    ///   naming file, section, key, value, rule and fix.
    public init(contentsOf path: String, allowWritableByOthers: Bool = false) throws(SpindleError) {
        let flags: UInt32 = allowWritableByOthers ? UInt32(SP_PROFILE_ALLOW_WRITABLE) : 0
        // The message buffer is on the stack and read only on failure: a successful load allocates
        // nothing but the C handle and builds no string.
        // withCString, not the implicit String-to-pointer conversion: that one copies into a new array.
        let (h, failure) = path.withCString { cPath in
            withMessageBuffer { msg, len in
                var err: Int32 = 0
                return sp_profile_open(cPath, flags, &err, msg, len)
            }
        }
        guard let h else { throw SpindleError(.invalidProfile, failure) }
        self.handle = h
        self.path = path
    }

    /// Validates profile bytes held in memory (wraps `sp_profile_from_memory`); `name` stands for
    /// the file in messages.
    public init(bytes: [UInt8], name: String = "profile") throws(SpindleError) {
        let (h, failure) = name.withCString { cName in
            withMessageBuffer { msg, len in
                var err: Int32 = 0
                return bytes.withUnsafeBytes { buf in
                    sp_profile_from_memory(buf.baseAddress, buf.count, cName, &err, msg, len)
                }
            }
        }
        guard let h else { throw SpindleError(.invalidProfile, failure) }
        self.handle = h
        self.path = name
    }

    deinit { sp_profile_close(handle) }

    /// The engine configuration the profile describes (CPUs, lanes, spin time, io_uring).
    public var configuration: Engine.Configuration {
        Engine.Configuration(sp_profile_config(handle).pointee)
    }

    /// The raw C configuration (for tools that need every bit, e.g. both io_uring flags).
    public var rawConfiguration: sp_config { sp_profile_config(handle).pointee }

    /// The host facts `detect` recorded in the HOST section.
    public var rawHost: sp_host_facts { sp_profile_host(handle).pointee }

    /// Format version and feature masks as found in the file.
    public var info: sp_profile_info { sp_profile_get_info(handle).pointee }

    /// Whether the file carries read-only-compatible features this version does not know: it may
    /// be loaded but must never be rewritten from what this version understood.
    public var isReadOnly: Bool { info.read_only != 0 }

    /// Checks the host rules against this machine (facts read once per process): every CPU exists
    /// and is allowed by this process's affinity and cgroup cpuset (else throws); CPU model, NUMA
    /// layout or kernel changed since `detect` are returned as warnings (thrown with `strict`).
    /// - Returns: the warning lines, each naming key, value, rule and fix; empty — and nothing
    ///   allocated — when the host has not drifted.
    public func checkHost(strict: Bool = false) throws(SpindleError) -> [String] {
        var allowed: UnsafePointer<UInt64>? = nil
        let here = sp_host_current(&allowed)
        return try Profile.checkHost(
            sp_profile_config(handle), sp_profile_host(handle), here: here!, allowed: allowed, strict: strict,
            name: path)
    }

    /// The host rules for any configuration and recorded facts against `here` (wraps
    /// `sp_profile_check_host`).
    public static func checkHost(
        _ cfg: UnsafePointer<sp_config>, _ recorded: UnsafePointer<sp_host_facts>, here: UnsafePointer<sp_host_facts>,
        allowed: UnsafePointer<UInt64>?, strict: Bool, name: String
    ) throws(SpindleError) -> [String] {
        let flags: UInt32 = strict ? UInt32(SP_PROFILE_STRICT) : 0
        // First without a warning buffer: the usual outcome (no drift) costs no allocation.
        let (failure, warnings) = name.withCString { cName -> (String?, [String]) in
            let (count, failure) = withMessageBuffer { msg, len in
                sp_profile_check_host(cfg, recorded, here, allowed, flags, cName, nil, 0, msg, len)
            }
            if count <= 0 { return (count < 0 ? failure : nil, []) }
            // Drift: ask again for the lines (the rules are pure, so the answer is the same).
            var warn = [CChar](repeating: 0, count: Int(count) * Int(SP_PROFILE_MSG_MAX))
            _ = sp_profile_check_host(cfg, recorded, here, allowed, flags, cName, &warn, warn.count, nil, 0)
            return (nil, Self.lines(warn))
        }
        if let failure { throw SpindleError(.invalidProfile, failure) }
        return warnings
    }

    /// The newline-separated lines of a NUL-terminated C buffer.
    static func lines(_ warn: [CChar]) -> [String] {
        warn.withUnsafeBytes { buf in
            var out: [String] = []
            var start = 0
            for i in 0...buf.count where i == buf.count || buf[i] == 0x0A || buf[i] == 0 {
                if i > start { out.append(String(decoding: buf[start..<i], as: UTF8.self)) }
                if i == buf.count || buf[i] == 0 { break }
                start = i + 1
            }
            return out
        }
    }
}

/// Calls `body` with a C message buffer of `SP_PROFILE_MSG_MAX` bytes on the stack; returns its
/// result and the buffer's line, which is decoded only when `failed` says the call failed.
@inline(__always)
func withMessageBuffer<R>(
    _ body: (UnsafeMutablePointer<CChar>, Int) -> R, failed: (R) -> Bool
) -> (R, String) {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(SP_PROFILE_MSG_MAX)) { buf in
        buf[0] = 0
        let result = body(buf.baseAddress!, buf.count)
        return (result, failed(result) ? String(cString: buf.baseAddress!) : "")
    }
}

/// ``withMessageBuffer(_:failed:)`` for calls that return a handle: NULL is failure.
@inline(__always)
func withMessageBuffer(_ body: (UnsafeMutablePointer<CChar>, Int) -> OpaquePointer?) -> (OpaquePointer?, String) {
    withMessageBuffer(body, failed: { $0 == nil })
}

/// ``withMessageBuffer(_:failed:)`` for calls that return a code: negative is failure.
@inline(__always)
func withMessageBuffer(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> (Int32, String) {
    withMessageBuffer(body, failed: { $0 < 0 })
}

extension Engine.Configuration {
    /// The configuration a validated profile describes, after the host rules: refuses CPUs this
    /// host lacks or this process may not use; host drift is passed to `warn` (one line each).
    public init(profile: borrowing Profile, warn: (String) -> Void = { _ in }) throws(SpindleError) {
        for line in try profile.checkHost(strict: false) { warn(line) }
        self = profile.configuration
    }

    /// Loads, validates and host-checks the compiled profile at `path`.
    /// ```swift
    /// let config = try Engine.Configuration(profile: "/etc/spindle/host.spindle")
    /// ```
    public init(profile path: String, warn: (String) -> Void = { _ in }) throws(SpindleError) {
        let profile = try Profile(contentsOf: path)
        try self.init(profile: profile, warn: warn)
    }
}

extension Engine.Configuration {
    /// The configuration an engine starts with: the compiled profile at `path`, or — with no
    /// profile — ``hostDefault``, through the same validation (ranges, cross-field rules and this
    /// host's rules). `log` receives one line saying which, plus any host-drift warning.
    public static func resolve(profile path: String?, log: (String) -> Void) throws(SpindleError) -> Engine.Configuration {
        if let path {
            let cfg = try Engine.Configuration(profile: path, warn: log)
            log("spindle: profile \(path): \(cfg.cpus.count) workers, \(cfg.lanes.count) lanes")
            return cfg
        }
        let cfg = Engine.Configuration.hostDefault
        try cfg.validate(host: true)
        log("spindle: no profile; using the embedded default (\(cfg.cpus.count) workers on every allowed CPU, lanes critical/high/normal/bulk, spin 50 µs)")
        return cfg
    }
}
