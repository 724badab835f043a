import Foundation
import Testing

/// The library's folders are layers (README, "Architecture"): a folder may
/// name types of the folders below it only. Read from the sources: a folder
/// depends on another when its code (comments and string literals left
/// out) names a type declared there.
@Suite struct LayeringTests {
    /// Bottom to top.
    static let layers = ["Model", "Support", "IO", "Format", "Segment", "Log", "Streams", "Consumers", "Maintenance", "API"]

    static var sourceRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/EventLog")
    }

    /// Every Swift file of the library: (folder, code without comments and strings).
    static func sources() throws -> [(folder: String, code: String)] {
        let root = sourceRoot
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var files: [(String, String)] = []
        for case let url as URL in walker where url.pathExtension == "swift" {
            let relative = url.path.dropFirst(root.path.count + 1)
            let folder = relative.split(separator: "/").first.map(String.init) ?? ""
            files.append((folder, stripped(try String(contentsOf: url, encoding: .utf8))))
        }
        return files
    }

    static func stripped(_ source: String) -> String {
        var code = source
        for pattern in [#"/\*[\s\S]*?\*/"#, #"//[^\n]*"#, #""(?:\\.|[^"\\\n])*""#] {
            code = code.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
        }
        return code
    }

    static func matches(_ pattern: String, in text: String, group: Int) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        let range = NSRange(text.startIndex..., in: text)
        return regex.matches(in: text, range: range).compactMap { match in
            Range(match.range(at: group), in: text).map { String(text[$0]) }
        }
    }

    /// Folder → folder → the type names that make the dependency.
    static func dependencies() throws -> [String: [String: Set<String>]] {
        let files = try sources()
        var declaredIn: [String: Set<String>] = [:]
        for (folder, code) in files {
            for name in matches(#"\b(?:struct|class|enum|protocol|actor|typealias)\s+([A-Z]\w*)"#, in: code, group: 1) {
                declaredIn[name, default: []].insert(folder)
            }
        }
        var edges: [String: [String: Set<String>]] = [:]
        for (folder, code) in files {
            for token in Set(matches(#"\b([A-Z]\w*)\b"#, in: code, group: 1)) {
                guard let owners = declaredIn[token], owners.count == 1, let owner = owners.first, owner != folder else { continue }
                edges[folder, default: [:]][owner, default: []].insert(token)
            }
        }
        return edges
    }

    @Test func everyFolderIsALayer() throws {
        let folders = Set(try Self.sources().map(\.folder))
        #expect(!folders.isEmpty, "no sources found under \(Self.sourceRoot.path)")
        for folder in folders {
            #expect(Self.layers.contains(folder), "Sources/EventLog/\(folder) is not one of the layers \(Self.layers)")
        }
    }

    @Test func layersOnlyPointDown() throws {
        let edges = try Self.dependencies()
        #expect(!edges.isEmpty)
        for (from, targets) in edges {
            guard let fromRank = Self.layers.firstIndex(of: from) else { continue }
            for (to, names) in targets {
                guard let toRank = Self.layers.firstIndex(of: to) else { continue }
                #expect(toRank < fromRank, "\(from) names \(to) (above it) through \(names.sorted().prefix(5).joined(separator: ", "))")
            }
        }
    }

    /// The check itself can fail: a lower layer naming an upper one's type is caught.
    @Test func anUpwardNameIsFound() {
        let code = Self.stripped("struct A { let b: Thing } // Other\n let s = \"Other\"")
        let tokens = Set(Self.matches(#"\b([A-Z]\w*)\b"#, in: code, group: 1))
        #expect(tokens.contains("Thing"))
        #expect(!tokens.contains("Other"), "comments and strings are not code")
    }
}
