/// What kind of value a scanned JSON value is.
enum JSONKind: Equatable {
    case object, array, string, number, bool, null

    var name: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// A JSON value found by `JSONScanner`: its kind and the exact bytes it
/// occupies in the scanned text (quotes included for a string).
struct JSONValue: Equatable {
    var kind: JSONKind
    var range: Range<Int>
}

/// One member of a scanned object.
struct JSONMember {
    /// The key's string value (quotes included).
    var key: JSONValue
    var value: JSONValue
}

/// Where and why a text is not valid JSON.
struct JSONSyntaxError: Error {
    var reason: String
    /// Byte offset in the scanned bytes.
    var offset: Int
}

/// A strict RFC 8259 validator that reports where each value lies instead
/// of building a tree, so a caller can keep a value's original bytes (the
/// `data` of an event is stored exactly as it was written).
///
/// Checks strings for control characters, escapes and well-formed UTF-8;
/// numbers against the grammar; nesting against `maxDepth`.
///
/// Generic over the byte container so that it reads an input line (an
/// array) and a stored event (borrowed bytes) alike, copying neither.
struct JSONScanner<Bytes: RandomAccessCollection> where Bytes.Element == UInt8, Bytes.Index == Int {
    /// Deepest nesting of arrays and objects accepted (bounds the recursion).
    static var maxDepth: Int { 512 }

    private let bytes: Bytes
    private var i: Int
    private let end: Int
    /// The members of the outermost value, when it is an object.
    private var members: [JSONMember] = []

    private init(_ bytes: Bytes, _ range: Range<Int>) {
        self.bytes = bytes
        self.i = range.lowerBound
        self.end = range.upperBound
    }

    /// Validates that `bytes[range]` is exactly one JSON value with optional
    /// whitespace around it. Returns that value and, when it is an object,
    /// its members in order.
    static func scan(_ bytes: Bytes, range: Range<Int>? = nil) throws(JSONSyntaxError) -> (JSONValue, [JSONMember]) {
        var scanner = JSONScanner(bytes, range ?? bytes.startIndex..<bytes.endIndex)
        scanner.skipWhitespace()
        let value = try scanner.value(depth: 0)
        scanner.skipWhitespace()
        if scanner.i < scanner.end { throw scanner.error("unexpected text after the JSON value") }
        return (value, scanner.members)
    }

    /// True when `bytes` is exactly one valid JSON value (whitespace around it allowed).
    static func isValid(_ bytes: Bytes) -> Bool {
        do { _ = try scan(bytes) } catch { return false }
        return true
    }

    // MARK: Values

    private mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard i < end else { throw error("expected a value, found the end of the text") }
        let start = i
        switch bytes[i] {
        case UInt8(ascii: "{"):
            try object(depth: depth + 1)
            return JSONValue(kind: .object, range: start..<i)
        case UInt8(ascii: "["):
            try array(depth: depth + 1)
            return JSONValue(kind: .array, range: start..<i)
        case UInt8(ascii: "\""):
            try string()
            return JSONValue(kind: .string, range: start..<i)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try number()
            return JSONValue(kind: .number, range: start..<i)
        case UInt8(ascii: "t"):
            try literal("true")
            return JSONValue(kind: .bool, range: start..<i)
        case UInt8(ascii: "f"):
            try literal("false")
            return JSONValue(kind: .bool, range: start..<i)
        case UInt8(ascii: "n"):
            try literal("null")
            return JSONValue(kind: .null, range: start..<i)
        default:
            throw error("unexpected character \(describe(bytes[i])) where a value should start")
        }
    }

    private mutating func object(depth: Int) throws(JSONSyntaxError) {
        guard depth <= Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
        i += 1  // {
        skipWhitespace()
        if i < end && bytes[i] == UInt8(ascii: "}") {
            i += 1
            return
        }
        while true {
            guard i < end, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a string key in an object") }
            let keyStart = i
            try string()
            let key = JSONValue(kind: .string, range: keyStart..<i)
            skipWhitespace()
            guard i < end, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
            i += 1
            skipWhitespace()
            let member = try value(depth: depth)
            if depth == 1 { members.append(JSONMember(key: key, value: member)) }
            skipWhitespace()
            guard i < end else { throw error("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
                continue
            }
            guard bytes[i] == UInt8(ascii: "}") else { throw error("expected ',' or '}' in an object") }
            i += 1
            return
        }
    }

    private mutating func array(depth: Int) throws(JSONSyntaxError) {
        guard depth <= Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
        i += 1  // [
        skipWhitespace()
        if i < end && bytes[i] == UInt8(ascii: "]") {
            i += 1
            return
        }
        while true {
            _ = try value(depth: depth)
            skipWhitespace()
            guard i < end else { throw error("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
                continue
            }
            guard bytes[i] == UInt8(ascii: "]") else { throw error("expected ',' or ']' in an array") }
            i += 1
            return
        }
    }

    // MARK: Strings

    private mutating func string() throws(JSONSyntaxError) {
        i += 1  // opening quote
        while i < end {
            // Printable ASCII, most of a string, skipped in a tight loop over the contiguous bytes.
            if let plainEnd = bytes.withContiguousStorageIfAvailable({ buffer -> Int in
                let offset = bytes.startIndex
                var j = i
                while j < end {
                    let c = buffer[j - offset]
                    if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
                    j += 1
                }
                return j
            }) {
                i = plainEnd
                if i >= end { break }
            }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return
            }
            if b == UInt8(ascii: "\\") {
                try escape()
            } else if b < 0x20 {
                throw error("control character \(describe(b)) inside a string (it must be escaped)")
            } else if b < 0x80 {
                i += 1
            } else {
                try utf8Sequence()
            }
        }
        throw error("unterminated string")
    }

    private mutating func escape() throws(JSONSyntaxError) {
        i += 1  // backslash
        guard i < end else { throw error("unterminated string") }
        switch bytes[i] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            i += 1
        case UInt8(ascii: "u"):
            i += 1
            for _ in 0..<4 {
                guard i < end, Self.hexValue(bytes[i]) != nil else { throw error("\\u must be followed by four hex digits") }
                i += 1
            }
        default:
            throw error("invalid escape \\\(describe(bytes[i])) in a string")
        }
    }

    /// Checks one multi-byte UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF).
    private mutating func utf8Sequence() throws(JSONSyntaxError) {
        let lead = bytes[i]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: throw error("invalid UTF-8 byte \(describe(lead)) in a string")
        }
        guard end - i >= length else { throw error("truncated UTF-8 sequence in a string") }
        let second = bytes[i + 1]
        guard second >= low, second <= high else { throw error("invalid UTF-8 sequence in a string") }
        for k in 2..<max(2, length) where bytes[i + k] & 0xC0 != 0x80 {
            throw error("invalid UTF-8 sequence in a string")
        }
        i += length
    }

    // MARK: Numbers and literals

    private mutating func number() throws(JSONSyntaxError) {
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end, isDigit(bytes[i]) else { throw error("expected a digit in a number") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < end && isDigit(bytes[i]) { i += 1 }
        }
        if i < end && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end, isDigit(bytes[i]) else { throw error("expected a digit after '.' in a number") }
            while i < end && isDigit(bytes[i]) { i += 1 }
        }
        if i < end && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < end && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < end, isDigit(bytes[i]) else { throw error("expected a digit in a number's exponent") }
            while i < end && isDigit(bytes[i]) { i += 1 }
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let matches = word.withUTF8Buffer { expected -> Bool in
            guard end - i >= expected.count else { return false }
            for k in 0..<expected.count where bytes[i + k] != expected[k] { return false }
            return true
        }
        guard matches else { throw error("invalid literal (expected \(word))") }
        i += word.utf8CodeUnitCount
    }

    // MARK: Helpers

    private mutating func skipWhitespace() {
        while i < end {
            switch bytes[i] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): i += 1
            default: return
            }
        }
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private func error(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(reason: reason, offset: i) }

    private func describe(_ b: UInt8) -> String {
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        let hex = String(b, radix: 16, uppercase: true)
        return "0x" + (hex.count < 2 ? "0" + hex : hex)
    }

    static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

// MARK: - Decoding scanned values

extension JSONScanner {
    /// The text of a scanned string value (escapes resolved), or nil when it
    /// holds an unpaired surrogate escape, which no Swift string can hold.
    static func decodeString(_ bytes: Bytes, _ value: JSONValue) -> String? {
        let inner = (value.range.lowerBound + 1)..<(value.range.upperBound - 1)
        guard bytes[inner].contains(UInt8(ascii: "\\")) else {
            return String(decoding: bytes[inner], as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var i = inner.lowerBound
        func flush() {
            if !utf8.isEmpty {
                scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
                utf8.removeAll()
            }
        }
        while i < inner.upperBound {
            let b = bytes[i]
            guard b == UInt8(ascii: "\\") else {
                utf8.append(b)
                i += 1
                continue
            }
            let code = bytes[i + 1]
            i += 2
            switch code {
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var unit = hex4(bytes, at: i)
                i += 4
                if unit >= 0xD800 && unit <= 0xDBFF {
                    // A high surrogate must be followed by an escaped low one.
                    guard i + 6 <= inner.upperBound, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u")
                    else { return nil }
                    let low = hex4(bytes, at: i + 2)
                    guard low >= 0xDC00 && low <= 0xDFFF else { return nil }
                    i += 6
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(unit) else { return nil }
                flush()
                scalars.append(scalar)
            default: utf8.append(code)  // " \ /
            }
        }
        flush()
        return String(scalars)
    }

    private static func hex4(_ bytes: Bytes, at i: Int) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 { value = value << 4 | (hexValue(bytes[i + k]) ?? 0) }
        return value
    }

    /// The value of a scanned number written as a plain integer (no
    /// fraction, no exponent) that fits in an `Int64`; nil otherwise.
    static func decodeInteger(_ bytes: Bytes, _ value: JSONValue) -> Int64? {
        guard value.kind == .number else { return nil }
        var i = value.range.lowerBound
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var magnitude: UInt64 = 0
        while i < value.range.upperBound {
            let b = bytes[i]
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            magnitude = sum
            i += 1
        }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return .min }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }
}
