// Lists the public symbols that have no doc comment, from symbol graph files (what
// `swift package generate-documentation` extracts). Used by scripts/docs-check.sh.
//
//   swift scripts/undocumented-symbols.swift ROOT FILE.symbols.json...
//
// Prints one line per symbol — `path/File.swift:line: Module.Type.member (kind)` — and exits 1
// when there is any. Symbols the compiler made (no source location: an enum's
// `init(rawValue:)`, a protocol's default implementation) cannot carry a comment and are skipped,
// A member declared here whose only comment is inherited from another module's protocol counts as
// undocumented (DocC shows it without an abstract).
import Foundation

let args = CommandLine.arguments.dropFirst()
guard let root = args.first else {
    FileHandle.standardError.write("usage: undocumented-symbols.swift ROOT FILE.symbols.json...\n".data(using: .utf8)!)
    exit(2)
}
var missing: [String] = []
for file in args.dropFirst() {
    guard let data = FileManager.default.contents(atPath: file),
          let graph = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let symbols = graph["symbols"] as? [[String: Any]]
    else {
        FileHandle.standardError.write("undocumented-symbols: cannot read \(file)\n".data(using: .utf8)!)
        exit(2)
    }
    let module = (graph["module"] as? [String: Any])?["name"] as? String ?? "?"
    for s in symbols {
        let access = s["accessLevel"] as? String ?? ""
        guard access == "public" || access == "open" else { continue }
        // A comment of its own; an inherited one names the module it comes from (RawRepresentable's
        // `rawValue`, say), which DocC does not show: the declaration here still needs its own.
        if let doc = s["docComment"] as? [String: Any], (doc["module"] as? String ?? module) == module { continue }
        guard let location = s["location"] as? [String: Any] else { continue }
        let path = ((s["pathComponents"] as? [String]) ?? []).joined(separator: ".")
        let kind = ((s["kind"] as? [String: Any])?["displayName"] as? String) ?? "symbol"
        var where_ = (location["uri"] as? String ?? "").replacingOccurrences(of: "file://", with: "")
        if where_.hasPrefix(root + "/") { where_.removeFirst(root.count + 1) }
        let line = ((location["position"] as? [String: Any])?["line"] as? Int).map { $0 + 1 } ?? 0
        missing.append("\(where_):\(line): \(module).\(path) (\(kind)) has no /// doc comment")
    }
}
for m in Set(missing).sorted() { print(m) }
exit(missing.isEmpty ? 0 : 1)
