import Foundation

/// Facts about the machine a report was measured on: the JSON's `machine` object and the header
/// of the text table.
enum Machine {
    static func describe() -> [(String, JSONValue)] {
        var u = utsname()
        uname(&u)
        func field<T>(_ v: T) -> String {
            withUnsafeBytes(of: v) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
            ?? "unknown"
        let hypervisor = cpuinfo.contains(" hypervisor")
        let formatter = ISO8601DateFormatter()
        return [
            ("hostname", .string(field(u.nodename))),
            ("kernel", .string("\(field(u.sysname)) \(field(u.release))")),
            ("arch", .string(field(u.machine))),
            ("cpu_model", .string(model)),
            ("cpus_online", .int(ProcessInfo.processInfo.activeProcessorCount)),
            ("hypervisor", .bool(hypervisor)),
            ("swift", .string(swiftVersion)),
            ("date", .string(formatter.string(from: Date()))),
        ]
    }

    static var swiftVersion: String {
        #if compiler(>=6.3)
            return "6.3+"
        #elseif compiler(>=6.2)
            return "6.2"
        #else
            return "<6.2"
        #endif
    }
}

/// The progress line on stderr: one line per row, rewritten in place on a terminal.
final class Progress: @unchecked Sendable {
    private let enabled: Bool
    private let tty = isatty(2) != 0
    private var lastLength = 0

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ text: String) {
        guard enabled else { return }
        if tty {
            let padded = text.padding(toLength: max(text.count, lastLength), withPad: " ", startingAt: 0)
            FileHandle.standardError.write(Data(("\r" + padded).utf8))
            lastLength = text.count
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    func finish() {
        guard enabled, tty, lastLength > 0 else { return }
        FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: lastLength) + "\r").utf8))
        lastLength = 0
    }
}
