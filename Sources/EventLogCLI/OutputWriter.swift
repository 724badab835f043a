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

/// The memory an `OutputWriter` formats into: one block, grown by doubling,
/// freed with the last writer that shares it.
final class OutputBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    /// The bytes formatted and not yet written.
    var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for `extra` more bytes after `count`.
    @inline(never)
    func grow(toHold extra: Int) {
        var newCapacity = capacity
        while newCapacity - count < extra { newCapacity *= 2 }
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        moved.update(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = newCapacity
    }
}

/// Buffers output bytes and writes them to a file descriptor in large
/// chunks, so a command formats each line into the buffer without a system
/// call (or an allocation) per field: every append writes straight into one
/// block of memory (`OutputBuffer`) after one check that it has room.
///
/// Not thread-safe: one command owns it. A copy of a writer shares its
/// buffer (pass it `inout`, never copy it).
struct OutputWriter {
    /// Bytes gathered before `appendLineEnd` writes them out on its own.
    static let flushThreshold = 256 << 10

    let fd: Int32
    private let storage: OutputBuffer

    init(fd: Int32 = 1) {
        self.fd = fd
        storage = OutputBuffer(capacity: fd < 0 ? 256 : Self.flushThreshold + (16 << 10))
    }

    /// The bytes buffered (not yet written).
    var count: Int { storage.count }

    /// A copy of the bytes buffered (not yet written).
    var buffer: [UInt8] { Array(UnsafeBufferPointer(start: storage.base, count: storage.count)) }

    /// Drops the buffered bytes after the first `count`.
    mutating func truncate(to count: Int) {
        if count < storage.count { storage.count = max(count, 0) }
    }

    // MARK: Appending

    /// Room for `extra` more bytes: where they go. The caller then adds what it wrote to `storage.count`.
    @inline(__always)
    private func room(_ extra: Int) -> UnsafeMutablePointer<UInt8> {
        if storage.capacity - storage.count < extra { storage.grow(toHold: extra) }
        return storage.base + storage.count
    }

    @inline(__always)
    private func copy(_ source: UnsafeRawPointer?, _ n: Int) {
        guard n > 0, let source else { return }
        let target = room(n)
        UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: n)
        storage.count += n
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { copy($0.baseAddress, $0.count) }
    }

    /// Appends a literal's bytes (no `String` made of it).
    @inline(__always)
    mutating func append(literal text: StaticString) {
        copy(text.utf8Start, text.utf8CodeUnitCount)
    }

    @inline(__always)
    mutating func append(byte: UInt8) {
        room(1).pointee = byte
        storage.count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        copy(bytes.baseAddress, bytes.count)
    }

    @inline(__always)
    mutating func append(_ value: UInt64) {
        // The digits counted first, then written last first, in place.
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let target = room(digits)
        var n = value
        var i = digits
        repeat {
            i -= 1
            target[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: n % 10)
            n /= 10
        } while n > 0
        storage.count += digits
    }

    @inline(__always)
    mutating func append(_ value: Int64) {
        if value < 0 {
            append(byte: UInt8(ascii: "-"))
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
        if value < 0 { append(byte: UInt8(ascii: "-")) }
        for _ in 0..<max(width - digits, 0) { append(byte: UInt8(ascii: "0")) }
        append(UInt64(value.magnitude))
    }

    /// Appends `bytes` as a JSON string literal (quotes included). Bytes
    /// that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
    mutating func appendJSONString(_ bytes: UnsafeRawBufferPointer) {
        // Printable ASCII without a quote or backslash, the common case, is copied as it is.
        var plain = true
        for byte in bytes where byte < 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            plain = false
            break
        }
        if plain {
            let target = room(bytes.count + 2)
            target[0] = UInt8(ascii: "\"")
            if let source = bytes.baseAddress, bytes.count > 0 {
                UnsafeMutableRawPointer(target + 1).copyMemory(from: source, byteCount: bytes.count)
            }
            target[bytes.count + 1] = UInt8(ascii: "\"")
            storage.count += bytes.count + 2
            return
        }
        append(byte: UInt8(ascii: "\""))
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): appendEscaped(scalar)
            case .error: append(literal: "\\ufffd")
            case .emptyInput: break loop
            }
        }
        append(byte: UInt8(ascii: "\""))
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
        case "\"" where inString: append(literal: "\\\"")
        case "\\" where inString: append(literal: "\\\\")
        case "\t" where !inString: append(byte: UInt8(ascii: "\t"))
        case "\n": append(literal: "\\n")
        case "\r": append(literal: "\\r")
        case "\t": append(literal: "\\t")
        case "\u{08}": append(literal: "\\b")
        case "\u{0C}": append(literal: "\\f")
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
                || scalar.value == 0x2028 || scalar.value == 0x2029
            {
                append(literal: "\\u")
                for shift in stride(from: 12, through: 0, by: -4) {
                    append(byte: Self.hexDigit(UInt8((scalar.value >> UInt32(shift)) & 0xF)))
                }
            } else {
                for byte in UTF8.encode(scalar) ?? UTF8.EncodedScalar() { append(byte: byte) }
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
        // Room for the text and the 8-byte stores' slack, then the text written in place.
        let out = UnsafeMutableRawPointer(room(length + 8))
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
        storage.count += length
    }

    /// Appends `value` as `digits` lowercase hexadecimal digits, zero-padded (`0a1b2c3d`).
    mutating func appendHex(_ value: UInt64, digits: Int) {
        for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
            append(byte: Self.hexDigit(UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF))
        }
    }

    /// Appends `bytes` as lowercase hexadecimal, two digits a byte (`ff0041`).
    mutating func appendHex(_ bytes: UnsafeRawBufferPointer) {
        let target = room(2 * bytes.count)
        for (k, byte) in bytes.enumerated() {
            target[2 * k] = Self.hexDigit(byte >> 4)
            target[2 * k + 1] = Self.hexDigit(byte & 0xF)
        }
        storage.count += 2 * bytes.count
    }

    /// Appends 16 bytes as a UUID's text, lowercase (`00112233-4455-6677-8899-aabbccddeeff`), as
    /// `UUID.uuidString.lowercased()` writes it.
    mutating func appendUUID(_ bytes: UnsafeRawBufferPointer) {
        for k in 0..<16 {
            if k == 4 || k == 6 || k == 8 || k == 10 { append(byte: UInt8(ascii: "-")) }
            append(byte: Self.hexDigit(bytes[k] >> 4))
            append(byte: Self.hexDigit(bytes[k] & 0xF))
        }
    }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    // MARK: Writing

    /// Ends a line, and writes the buffer out once it holds `flushThreshold` bytes.
    @inline(__always)
    mutating func appendLineEnd() throws(OutputError) {
        append(byte: UInt8(ascii: "\n"))
        if storage.count >= Self.flushThreshold { try flush() }
    }

    /// Writes every buffered byte (`write(2)`, EINTR and short writes retried).
    mutating func flush() throws(OutputError) {
        let bytes = storage.base
        let total = storage.count
        storage.count = 0
        var done = 0
        while done < total {
            let n = write(fd, bytes + done, total - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw OutputError(errno: errno)
            }
            done += n
        }
    }
}
