#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpindle
import Spindle

/// The operator's tools on files: compile, inspect, validate, diff. Each throws
/// `SpindleError` with code `SpindleError.Code.invalidProfile` and one line.
public enum ProfileFiles {
    /// Reads a whole file, or its first `limit` bytes when it is longer (a file that never ends,
    /// such as `/dev/zero`, does not grow memory without bound: the caller refuses what is too long).
    public static func read(_ path: String, limit: Int = 16 << 20) throws(SpindleError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SpindleError(.invalidProfile, "\(path): cannot open: \(String(cString: strerror(errno))); fix: check the path") }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SpindleError(.invalidProfile, "\(path): cannot read: \(String(cString: strerror(errno))); fix: check the file")
            }
            if n == 0 { return out }
            out += chunk.prefix(min(n, limit - out.count))
            if out.count >= limit { return out }
        }
    }

    /// Replaces `path` atomically: write a temporary file in the same directory, fsync it, rename
    /// it over the target, fsync the directory. A reader (or a mapping) never sees a half-written
    /// file, and the profile is never edited in place.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(SpindleError) {
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let tmp = "\(path).tmp.\(getpid())"
        func fail(_ what: String) -> SpindleError {
            SpindleError(.invalidProfile, "\(path): \(what): \(String(cString: strerror(errno))); fix: check the directory and its permissions")
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw fail("cannot create \(tmp)") }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let e = fail("cannot write")
                close(fd)
                unlink(tmp)
                throw e
            }
            off += n
        }
        fchmod(fd, mode)  // the umask must not make a profile group-writable
        guard fsync(fd) == 0 else {
            let e = fail("fsync failed")
            close(fd)
            unlink(tmp)
            throw e
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = fail("cannot rename \(tmp)")
            unlink(tmp)
            throw e
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)  // makes the rename itself durable
            close(dfd)
        }
    }

    /// Compiles TOML text to profile bytes; `name` stands for the source file in messages.
    public static func compile(toml: String, name: String) throws(SpindleError) -> [UInt8] {
        try ProfileSource.parse(toml: toml, name: name).encode(name: name)
    }

    /// Compiles TOML source bytes (a file's, not repaired: bytes that are not UTF-8 are refused
    /// with their line and column).
    public static func compile(tomlBytes: [UInt8], name: String) throws(SpindleError) -> [UInt8] {
        try ProfileSource.parse(toml: tomlBytes, name: name).encode(name: name)
    }

    /// `spindle profile compile IN.toml -o OUT.spindle`.
    public static func compile(input: String, output: String) throws(SpindleError) {
        // One byte past the parser's bound is enough for it to refuse a source that is too long.
        try writeAtomically(try compile(tomlBytes: try read(input, limit: TOMLParser.maxBytes + 1), name: input), to: output)
    }

    /// Canonical TOML of profile bytes: documented keys only, so `compile(inspect(x)) == x`.
    /// Derived facts (workers, ring memory, format) are comments.
    public static func inspect(bytes: [UInt8], name: String) throws(SpindleError) -> String {
        let (source, info) = try ProfileSource.decode(bytes, name: name)
        var header = [
            "Spindle profile \(name): format \(info.version_major).\(info.version_minor), \(info.total_length) bytes, CRC32C 0x\(String(info.crc, radix: 16))",
            "compile with: spindle profile compile THIS.toml -o OUT.spindle",
        ]
        if info.read_only != 0 {
            header.append("WARNING: the file has read-only-compatible features this spindle does not know (ro_compat 0x\(String(info.ro_compat, radix: 16))); compiling this TOML drops them")
        }
        if info.compat != 0 || info.incompat != 0 {
            header.append("feature masks: incompat 0x\(String(info.incompat, radix: 16)) ro_compat 0x\(String(info.ro_compat, radix: 16)) compat 0x\(String(info.compat, radix: 16))")
        }
        return source.render(comments: source.derivedComments(), header: header)
    }

    /// Host-independent checks plus host rules against this machine (or the host under `root`).
    /// - Returns: warnings (host drift); throws the one-line refusal.
    public static func validate(path: String, strict: Bool, root: String? = nil, allowWritable: Bool = false) throws(SpindleError) -> [String] {
        let profile = try Profile(contentsOf: path, allowWritableByOthers: allowWritable)
        guard let root else { return try profile.checkHost(strict: strict) }
        let (here, allowed) = try HostFacts.read(root: root)
        var cfg = profile.rawConfiguration
        var recorded = profile.rawHost
        var raw = here.cValue()
        var bits = [UInt64](repeating: 0, count: Int(SP_MAX_CPUS) / 64)
        for cpu in allowed { bits[cpu / 64] |= 1 << UInt64(cpu % 64) }
        return try Profile.checkHost(&cfg, &recorded, here: &raw, allowed: bits, strict: strict, name: path)
    }
}

extension ProfileSource {
    /// Comments `inspect` adds: what the numbers imply (not keys, never parsed back).
    func derivedComments() -> [String: [String]] {
        let workers = cpus.count
        let perLane = lanes.map { Int($0.capacity) * Int(SP_SLOT_SIZE) }.reduce(0, +)
        let mpsc = workers * perLane
        let spsc = workers * max(0, workers - 1) * perLane
        var c: [String: [String]] = [
            "engine": [
                "\(workers) workers; ring memory about \(2 * mpsc >> 10) KiB of MPSC rings and workers' own queues, plus \(spsc >> 10) KiB of SPSC rings if every pair is created (eager below eager_ring_bytes)"
            ]
        ]
        for (i, cpu) in cpus.enumerated() {
            if let node = host.node(ofCPU: cpu) { c["engine.cpus", default: []].append("worker \(i) on CPU \(cpu), node \(node): its rings live there") }
        }
        return c
    }
}
