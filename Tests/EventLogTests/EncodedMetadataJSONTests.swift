import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `EncodedMetadataJSON` writes what the decoded path writes, byte for
/// byte: `dump --json`'s line (`JSONEventFormat.writeFromEncoded` against
/// `write(_:metadata:)`) and export's metadata (`.pairs` against
/// `ExportFormat.writeMetadata`), over seeded random metadata of every shape.
@Suite struct EncodedMetadataJSONTests {
    @Test func theEncodedPathWritesWhatTheDecodedPathWrites() throws {
        var random = SplitMix64(seed: 11)
        func pick<T>(_ values: [T]) -> T { values[Int(random.next() % UInt64(values.count))] }
        let texts = ["acme", "a b", "quote \" here", "back\\slash", "tab\tnew\nline", "ctl\u{1}", "", "Größe", "\u{2028}", "x=y;z"]
        let types = ["application/json", "Application/JSON; charset=utf-8", " application/json ", "text/plain", "application/jsonx", "applicatión/json"]
        let dir = TemporaryDirectory("encoded-metadata")
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        for i in 0..<400 {
            var metadata = EventMetadata()
            if random.next() % 2 == 0 {
                let (a, b) = (random.next(), random.next())
                func byte(_ w: UInt64, _ k: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: w >> (8 * k)) }
                metadata.eventID = UUID(uuid: (byte(a, 0), byte(a, 1), byte(a, 2), byte(a, 3), byte(a, 4), byte(a, 5), byte(a, 6), byte(a, 7),
                                               byte(b, 0), byte(b, 1), byte(b, 2), byte(b, 3), byte(b, 4), byte(b, 5), byte(b, 6), byte(b, 7)))
            }
            if random.next() % 3 == 0 { metadata.schemaVersion = UInt32(truncatingIfNeeded: random.next()) }
            if random.next() % 2 == 0 { metadata.contentType = pick(types) }
            if random.next() % 3 == 0 { metadata.correlationID = pick(texts) }
            if random.next() % 3 == 0 { metadata.causationID = pick(texts) }
            for _ in 0..<Int(random.next() % 4) { metadata.headers.append(.init(pick(["tenant", "trace", "k"]), pick(texts))) }
            let data = random.next() % 2 == 0 ? Array(#"{"i": \#(i),"#.utf8) + Array("\n\"v\": [1, 2]}".utf8) : [UInt8(i % 256), 0, 255]
            try log.append([NewEvent(stream: "s-\(i % 3)", type: "T", data: data, metadata: metadata, key: i % 5 == 0 ? "k-\(i)" : nil)])
        }
        var encodedPaths = 0
        try log.read(from: 0) { event in
            let decoded = try event.metadata()
            for format in [nil, DataFormat.base64, .hex] {
                var slow = OutputWriter(fd: -1)
                JSONEventFormat.write(event, metadata: decoded, data: format, into: &slow)
                var fast = OutputWriter(fd: -1)
                if JSONEventFormat.writeFromEncoded(event, data: format, into: &fast) {
                    encodedPaths += 1
                    #expect(fast.buffer == slow.buffer, "\(String(decoding: fast.buffer, as: UTF8.self)) vs \(String(decoding: slow.buffer, as: UTF8.self))")
                }
            }
            var slow = OutputWriter(fd: -1)
            ExportFormat.writeMetadata(decoded, into: &slow)
            var fast = OutputWriter(fd: -1)
            if EncodedMetadataJSON.write(event.metadataBytes, headers: .pairs, into: &fast) {
                #expect(fast.buffer == slow.buffer, "\(String(decoding: fast.buffer, as: UTF8.self)) vs \(String(decoding: slow.buffer, as: UTF8.self))")
            }
            // Plain ASCII metadata never needs the decoded path.
            if !event.metadataBytes.contains(where: { $0 >= 0x80 }) {
                var probe = OutputWriter(fd: -1)
                #expect(EncodedMetadataJSON.write(event.metadataBytes, headers: .members, into: &probe))
            }
        }
        #expect(encodedPaths > 600, "most events go the encoded way: \(encodedPaths)")
        try log.close()
    }
}
