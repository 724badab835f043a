/// A NATS header block (`NATS/1.0[ status[ description]]` then `Name: Value` lines),
/// as HPUB sends it and HMSG delivers it. Names keep their case; lookups ignore it.
public struct NATSHeaders: Sendable, Hashable {
    /// The status code of a server-made message (404, 408, 409, 503), nil for an ordinary one.
    public var status: Int?
    /// The words after the status code (`Request Timeout`).
    public var statusDescription: String
    /// The fields in the order given; a name may repeat.
    public var fields: [(name: String, value: String)] {
        get { storage.map { ($0.name, $0.value) } }
        set { storage = newValue.map { Field(name: $0.name, value: $0.value) } }
    }
    private var storage: [Field]

    private struct Field: Sendable, Hashable {
        var name: String
        var value: String
    }

    /// A header block with these fields, in this order (an ordinary message's: no status).
    public init(status: Int? = nil, statusDescription: String = "", fields: [(name: String, value: String)] = []) {
        self.status = status
        self.statusDescription = statusDescription
        self.storage = fields.map { Field(name: $0.name, value: $0.value) }
    }

    /// Calls `body` with each field in order (without building the `fields` array).
    public func forEachField(_ body: (_ name: String, _ value: String) throws -> Void) rethrows {
        for field in storage { try body(field.name, field.value) }
    }

    /// Adds a field (after any of the same name).
    public mutating func append(_ name: String, _ value: String) {
        storage.append(Field(name: name, value: value))
    }

    /// The first value of `name` (case-insensitive), nil when absent.
    public subscript(name: String) -> String? {
        storage.first { Self.sameName($0.name, name) }?.value
    }

    /// True when the block has no status and no field.
    public var isEmpty: Bool { status == nil && storage.isEmpty }

    /// Equal names without regard to ASCII case, compared without allocating.
    static func sameName(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        for (x, y) in zip(a.utf8, b.utf8) where x != y {
            let lx = x | 0x20
            guard lx == y | 0x20, lx >= 0x61 && lx <= 0x7A else { return false }
        }
        return true
    }

    // MARK: Wire form

    static let versionLine = Array("NATS/1.0".utf8)

    /// Checks that a field can travel: a name of visible ASCII without `:`, a value without CR or LF.
    static func validate(name: String, value: String) throws(NATSError) {
        if name.isEmpty || name.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: ":") }) {
            throw .invalidArgument("NATS header name \(name.debugDescription): visible ASCII without ':' only")
        }
        if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
            throw .invalidArgument("NATS header \(name) value contains CR or LF")
        }
    }

    /// The header block as HPUB sends it, ending with the blank line.
    public func encoded() throws(NATSError) -> [UInt8] {
        var out = Self.versionLine
        if let status {
            out += Array(" \(status)".utf8)
            if !statusDescription.isEmpty { out += Array(" \(statusDescription)".utf8) }
        }
        out += [0x0D, 0x0A]
        for field in storage {
            try Self.validate(name: field.name, value: field.value)
            out += Array(field.name.utf8)
            out += [UInt8(ascii: ":"), UInt8(ascii: " ")]
            out += Array(field.value.utf8)
            out += [0x0D, 0x0A]
        }
        out += [0x0D, 0x0A]
        return out
    }

    /// Parses a header block (the first `headerBytes` of an HMSG's payload, blank line included).
    public static func parse<C: Collection<UInt8>>(_ block: C) throws(NATSError) -> NATSHeaders where C.Index == Int {
        var lines: [ArraySlice<UInt8>] = []
        let bytes = Array(block)
        var start = 0
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x0D && bytes[i + 1] == 0x0A {
                lines.append(bytes[start..<i])
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        guard start == bytes.count, lines.count >= 2, lines.last?.isEmpty == true else {
            throw .malformed("a header block must be CRLF-terminated lines ending with a blank line")
        }
        let first = lines[0]
        guard first.starts(with: versionLine) else {
            throw .malformed("header block does not start with NATS/1.0: \(String(decoding: first.prefix(40), as: UTF8.self).debugDescription)")
        }
        var headers = NATSHeaders()
        let rest = String(decoding: first.dropFirst(versionLine.count), as: UTF8.self).trimmingSpaces()
        if !rest.isEmpty {
            let parts = rest.split(separator: " ", maxSplits: 1)
            guard let code = Int(parts[0]), (100...999).contains(code) else {
                throw .malformed("header status is not a 3-digit code: \(rest.prefix(40).debugDescription)")
            }
            headers.status = code
            headers.statusDescription = parts.count > 1 ? String(parts[1]).trimmingSpaces() : ""
        }
        for line in lines.dropFirst().dropLast() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw .malformed("header line without 'Name:': \(String(decoding: line.prefix(40), as: UTF8.self).debugDescription)")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces()
            headers.append(name, value)
        }
        return headers
    }

    /// Equal status, status description and fields (names compared with
    /// their case, in order).
    public static func == (a: NATSHeaders, b: NATSHeaders) -> Bool {
        a.status == b.status && a.statusDescription == b.statusDescription && a.storage == b.storage
    }

    /// Hashes the status and the fields (consistent with `==`).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        hasher.combine(storage)
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (Foundation-free).
    func trimmingSpaces() -> String {
        let u = Array(utf8)
        var a = 0
        var b = u.count
        while a < b && (u[a] == 0x20 || u[a] == 0x09) { a += 1 }
        while b > a && (u[b - 1] == 0x20 || u[b - 1] == 0x09) { b -= 1 }
        return String(decoding: u[a..<b], as: UTF8.self)
    }
}
