#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed `write(2)` to an output file descriptor.
struct OutputError: Error, CustomStringConvertible {
    var errno: Int32
    /// The reader of the pipe went away (`EPIPE`).
    var isBrokenPipe: Bool { errno == EPIPE }
    var description: String { "cannot write to standard output: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Buffers output bytes and writes them to a file descriptor in large
/// chunks, so a command formats each line into the buffer without a system
/// call (or an allocation) per field.
///
/// Not thread-safe: one command owns it.
struct OutputWriter {
    /// Bytes gathered before `appendLineEnd` writes them out on its own.
    static let flushThreshold = 64 << 10

    let fd: Int32
    private(set) var buffer: [UInt8] = []

    init(fd: Int32 = 1) {
        self.fd = fd
        buffer.reserveCapacity(Self.flushThreshold + 4096)
    }

    /// The bytes buffered (not yet written).
    var count: Int { buffer.count }

    /// Drops the buffered bytes after the first `count`.
    mutating func truncate(to count: Int) {
        if count < buffer.count { buffer.removeSubrange(count...) }
    }

    // MARK: Appending

    mutating func append(_ text: String) {
        buffer.append(contentsOf: text.utf8)
    }

    /// Appends a literal's bytes (no `String` made of it).
    mutating func append(literal text: StaticString) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(byte: UInt8) {
        buffer.append(byte)
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    mutating func append(_ value: UInt64) {
        // The digits, last first, in a small stack buffer: one append for the number.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var n = value
            var i = 20
            repeat {
                i -= 1
                digits[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: n % 10)
                n /= 10
            } while n > 0
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: digits[i..<20]))
        }
    }

    mutating func append(_ value: Int64) {
        if value < 0 {
            buffer.append(UInt8(ascii: "-"))
            append(value.magnitude)
        } else {
            append(UInt64(value))
        }
    }

    mutating func append(_ value: Int) { append(Int64(value)) }

    /// Appends `value` in decimal, left-padded with zeros to `width` digits.
    mutating func append(_ value: Int, zeroPaddedTo width: Int) {
        var digits = 1
        var rest = value.magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        if digits < width { buffer.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - digits)) }
        append(UInt64(value.magnitude))
    }

    /// Appends `bytes` as a JSON string literal (quotes included). Bytes
    /// that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
    mutating func appendJSONString(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(UInt8(ascii: "\""))
        // Printable ASCII without a quote or backslash, the common case, is copied as it is.
        if !bytes.contains(where: { $0 < 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            buffer.append(contentsOf: bytes)
            buffer.append(UInt8(ascii: "\""))
            return
        }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): appendEscaped(scalar)
            case .error: append("\\ufffd")
            case .emptyInput: break loop
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    mutating func appendJSONString(_ text: String) {
        var text = text
        text.withUTF8 { appendJSONString(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `bytes` as text on one line: bytes that are not valid UTF-8
    /// become U+FFFD, and control characters other than tab are escaped as
    /// in a JSON string (`\n`, `\u001b`); quotes and backslashes stay as they are.
    mutating func appendEscapingControlCharacters(_ bytes: UnsafeRawBufferPointer) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): appendEscaped(scalar, inString: false)
            case .error: append("\u{FFFD}")
            case .emptyInput: break loop
            }
        }
    }

    /// `inString`: inside a JSON string literal, where quotes, backslashes
    /// and tabs are escaped too.
    private mutating func appendEscaped(_ scalar: Unicode.Scalar, inString: Bool = true) {
        switch scalar {
        case "\"" where inString: append("\\\"")
        case "\\" where inString: append("\\\\")
        case "\t" where !inString: append("\t")
        case "\n": append("\\n")
        case "\r": append("\\r")
        case "\t": append("\\t")
        case "\u{08}": append("\\b")
        case "\u{0C}": append("\\f")
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
                || scalar.value == 0x2028 || scalar.value == 0x2029
            {
                append("\\u")
                for shift in stride(from: 12, through: 0, by: -4) {
                    let digit = UInt8((scalar.value >> UInt32(shift)) & 0xF)
                    buffer.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
                }
            } else {
                buffer.append(contentsOf: UTF8.encode(scalar) ?? UTF8.EncodedScalar())
            }
        }
    }

    /// Two base64 characters for each 12-bit value, the first in the low
    /// byte (stored little-endian, it comes first in memory).
    private static let base64Pairs: [UInt16] = {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var table = [UInt16](repeating: 0, count: 4096)
        for i in 0..<4096 { table[i] = UInt16(alphabet[i >> 6]) | UInt16(alphabet[i & 63]) << 8 }
        return table
    }()

    /// Appends `bytes` in standard base64 (RFC 4648, with padding).
    mutating func appendBase64(_ bytes: UnsafeRawBufferPointer) {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        let length = (bytes.count + 2) / 3 * 4
        guard length > 0, let input = bytes.baseAddress else { return }
        let start = buffer.count
        // Room first, then the text written in place: no append (and uniqueness check) per character.
        buffer.append(contentsOf: repeatElement(0, count: length))
        buffer.withUnsafeMutableBytes { whole in
            guard let base = whole.baseAddress else { return }
            let out = base + start
            Self.base64Pairs.withUnsafeBufferPointer { pairs in
                // Three bytes make two 12-bit halves, each two characters from the table: two stores.
                var o = 0
                var i = 0
                // Six bytes (read as eight) make four 12-bit values: eight characters in one store.
                while i + 8 <= bytes.count {
                    let w = UInt64(bigEndian: input.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                    let chars = UInt64(pairs[Int(truncatingIfNeeded: w >> 52)])
                        | UInt64(pairs[Int(truncatingIfNeeded: w >> 40) & 0xFFF]) << 16
                        | UInt64(pairs[Int(truncatingIfNeeded: w >> 28) & 0xFFF]) << 32
                        | UInt64(pairs[Int(truncatingIfNeeded: w >> 16) & 0xFFF]) << 48
                    out.storeBytes(of: chars.littleEndian, toByteOffset: o, as: UInt64.self)
                    i += 6
                    o += 8
                }
                let full = bytes.count - bytes.count % 3
                while i < full {
                    let n = Int(input.load(fromByteOffset: i, as: UInt8.self)) << 16
                        | Int(input.load(fromByteOffset: i + 1, as: UInt8.self)) << 8
                        | Int(input.load(fromByteOffset: i + 2, as: UInt8.self))
                    out.storeBytes(of: pairs[n >> 12].littleEndian, toByteOffset: o, as: UInt16.self)
                    out.storeBytes(of: pairs[n & 0xFFF].littleEndian, toByteOffset: o + 2, as: UInt16.self)
                    i += 3
                    o += 4
                }
                let rest = bytes.count - i
                if rest > 0 {
                    alphabet.withUTF8Buffer { table in
                        let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
                        out.storeBytes(of: table[Int(n >> 18 & 63)], toByteOffset: o, as: UInt8.self)
                        out.storeBytes(of: table[Int(n >> 12 & 63)], toByteOffset: o + 1, as: UInt8.self)
                        out.storeBytes(of: rest == 2 ? table[Int(n >> 6 & 63)] : UInt8(ascii: "="), toByteOffset: o + 2, as: UInt8.self)
                        out.storeBytes(of: UInt8(ascii: "="), toByteOffset: o + 3, as: UInt8.self)
                    }
                }
            }
        }
    }

    /// Appends `value` as `digits` lowercase hexadecimal digits, zero-padded (`0a1b2c3d`).
    mutating func appendHex(_ value: UInt64, digits: Int) {
        for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
            buffer.append(Self.hexDigit(UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF))
        }
    }

    /// Appends `bytes` as lowercase hexadecimal, two digits a byte (`ff0041`).
    mutating func appendHex(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            buffer.append(Self.hexDigit(byte >> 4))
            buffer.append(Self.hexDigit(byte & 0xF))
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    // MARK: Writing

    /// Ends a line, and writes the buffer out once it holds `flushThreshold` bytes.
    mutating func appendLineEnd() throws(OutputError) {
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= Self.flushThreshold { try flush() }
    }

    /// Writes every buffered byte (`write(2)`, EINTR and short writes retried).
    mutating func flush() throws(OutputError) {
        var failure: Int32 = 0
        buffer.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            var done = 0
            while done < bytes.count {
                let n = write(fd, base + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
        if failure != 0 { throw OutputError(errno: failure) }
    }
}
