/// The NATS subject an event is published on: the prefix, then the stream
/// name with the bytes a subject cannot hold percent-encoded: whitespace and
/// control characters, `*`, `>` and `%`, and a `.` that would leave an empty
/// token (leading, trailing or doubled). Other dots separate tokens as usual:
/// stream `eu.order-7` under prefix `orders.` is `orders.eu.order-7`.
public enum SubjectEncoding {
    /// The subject of an event of `stream` (its name's UTF-8 bytes, as an
    /// `EventView` lends them) under `prefix`. The prefix is used as given.
    public static func subject(prefix: String, stream: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        append(prefix: Array(prefix.utf8), stream: stream, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the subject's bytes to `out` (`prefix` as UTF-8), without making a `String`: the relay reuses one
    /// array for every event.
    static func append(prefix: [UInt8], stream: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out += prefix
        // A leading dot leaves an empty token after an empty prefix or one ending with a dot.
        let prefixEndsAToken = prefix.last.map { $0 == UInt8(ascii: ".") } ?? true
        let n = stream.count
        for i in 0..<n {
            let b = stream[i]
            var escape = b <= 0x20 || b == 0x7F || b == UInt8(ascii: "*") || b == UInt8(ascii: ">") || b == UInt8(ascii: "%")
            if b == UInt8(ascii: ".") {
                let emptyBefore = i == 0 ? prefixEndsAToken : stream[i - 1] == UInt8(ascii: ".")
                escape = emptyBefore || i == n - 1
            }
            PercentEncoding.append(b, escaped: escape, into: &out)
        }
    }

    /// The subject of an event of `stream` under `prefix`
    /// (`subject(prefix:stream:)` of its UTF-8 bytes).
    public static func subject(prefix: String, stream: String) -> String {
        var s = stream
        return s.withUTF8 { subject(prefix: prefix, stream: UnsafeRawBufferPointer($0)) }
    }
}

/// `%XX` for a byte a subject or a header cannot hold: the one escape both use.
enum PercentEncoding {
    /// Upper-case hex digits (also `EventHeaders`' spelling of a UUID).
    static let hex = Array("0123456789ABCDEF".utf8)

    /// Appends `b`, as `%XX` (upper-case hex) when `escaped`.
    @inline(__always)
    static func append(_ b: UInt8, escaped: Bool, into out: inout [UInt8]) {
        if escaped {
            out.append(UInt8(ascii: "%"))
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 15)])
        } else {
            out.append(b)
        }
    }
}
