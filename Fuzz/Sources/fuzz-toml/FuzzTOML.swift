import Foundation
import Spindle
import SpindleProfiles

/// libFuzzer's driver (from `libclang_rt.fuzzer_no_main`, linked by Fuzz/run-toml.sh): SwiftPM
/// gives an executable its own `main`, so the fuzzer is started from there.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@main
struct FuzzTOML {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in FuzzTOML.one(data, size) })
    }

    /// One input: arbitrary bytes as TOML source. The compiler either refuses with one line (no
    /// newline, naming the file) or produces a profile that the loader accepts and that survives the
    /// round trip inspect → compile byte for byte. Anything else — a crash, a sanitizer report, a
    /// broken property — stops the fuzzer (`fatalError` is a crash to libFuzzer).
    static func one(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
        let compiled: [UInt8]
        do {
            // The bytes as a file gives them (not repaired to UTF-8 first): the parser sees all.
            compiled = try ProfileFiles.compile(tomlBytes: bytes, name: "fuzz.toml")
        } catch {
            let m = error.message
            if m.isEmpty || m.contains("\n") { fatalError("refusal is not one line: \(m.debugDescription)") }
            if !m.hasPrefix("fuzz.toml") { fatalError("refusal does not name the file: \(m.debugDescription)") }
            return 0
        }
        // Accepted: the loader agrees, and the canonical TOML compiles back to the same bytes.
        do {
            _ = try Profile(bytes: compiled, name: "fuzz.spindle")
        } catch { fatalError("the compiler wrote a profile the loader refuses: \(error.message)") }
        do {
            let shown = try ProfileFiles.inspect(bytes: compiled, name: "fuzz.spindle")
            let again = try ProfileFiles.compile(toml: shown, name: "inspected.toml")
            if again != compiled { fatalError("inspect → compile changed the bytes:\n\(shown)") }
        } catch { fatalError("round trip failed: \(error.message)") }
        return 0
    }
}
