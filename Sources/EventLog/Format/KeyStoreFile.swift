/// The key store `eventlog.keys` of an encrypted log (Format.md §16): a
/// 64-byte header, then entries appended one after another, each with its
/// own CRC32C.
///
/// Header:
///
///     0   8   magic "EVLOGKEY"
///     8   2   format version (the log's read version)
///     10  2   reserved, zero
///     12  1   data key scope: 0 one key for the log, 1 one per stream, 2 one per stream name prefix
///     13  1   the prefix scope's separator byte (else 0)
///     14  2   reserved, zero
///     16  16  log id
///     32  16  master key check: the first 16 bytes of HMAC-SHA256(master key, "EventLog master key check" ‖ log id)
///     48  12  reserved, zero
///     60  4   CRC32C of bytes [0, 60)
///
/// Entry (at offset e):
///
///     0   1   kind: 1 a data key, 2 a forgetting
///     1   1   n: the scope name's length (kind 1; 0 for kind 2)
///     2   2   reserved, zero
///     4   4   key id (≥ 1)
///     8   n   the scope name (kind 1): the stream name, the prefix, or empty for the log's one key
///     8+n 60  the wrapped data key (kind 1): AES-256-GCM nonce (12), ciphertext of the 32-byte key (32), tag (16);
///             all zero once the key was forgotten (shredded)
///     …   4   CRC32C of the entry's bytes before this field
enum KeyStoreFile {
    static let headerSize = 64
    static let wrappedKeyBytes = 60
    static let entryHeadBytes = 8
    static let kindDataKey: UInt8 = 1
    static let kindForgetting: UInt8 = 2
    static let checkBytes = 16

    /// How data keys are assigned (Format.md §16; `DataKeyScope` is the public face).
    struct Header: Equatable {
        var version: UInt16
        var scope: UInt8
        var separator: UInt8
        var logID: [UInt8]
        var masterCheck: [UInt8]

        func encode() -> [UInt8] {
            var w = ByteWriter()
            w.le(Magic.keyStore)
            w.le(version)
            w.zeros(2)
            w.le(scope)
            w.le(separator)
            w.zeros(2)
            w.raw(logID)
            w.raw(masterCheck)
            w.zeros(12)
            w.appendChecksum()
            return w.bytes
        }

        /// Decodes the header at the start of `bytes`; `file` names it in errors.
        static func decode(_ bytes: [UInt8], file: String) throws(EventLogError) -> Header {
            guard bytes.count >= 10 else { throw .corruption(file: file, offset: 0, reason: "key store is shorter than its header") }
            let r = ByteReader(bytes: bytes)
            guard r.le(0, UInt64.self) == Magic.keyStore else { throw .foreignFile(file: file, reason: "not a key store (wrong magic)") }
            let version = r.le(8, UInt16.self)
            guard FormatVersion.readable.contains(version), version >= 8 else {
                throw .unsupportedFormatVersion(file: file, found: Int(version), supported: Int(FormatVersion.current))
            }
            guard bytes.count >= headerSize else { throw .corruption(file: file, offset: 0, reason: "key store is shorter than its header") }
            guard CRC32C.checksum(Array(bytes[0..<60])) == r.le(60, UInt32.self) else {
                throw .corruption(file: file, offset: 0, reason: "key store header checksum mismatch")
            }
            if let at = Reserved.firstNonZero(bytes, 10..<12) ?? Reserved.firstNonZero(bytes, 14..<16)
                ?? Reserved.firstNonZero(bytes, 48..<60) {
                throw .corruption(file: file, offset: Int64(at), reason: "key store header has a reserved byte set")
            }
            let scope = bytes[12]
            guard scope <= 2 else { throw .corruption(file: file, offset: 12, reason: "unknown data key scope \(scope)") }
            return Header(
                version: version, scope: scope, separator: bytes[13], logID: r.slice(16, 16), masterCheck: r.slice(32, checkBytes))
        }
    }

    /// One entry as decoded.
    struct Entry: Equatable {
        var kind: UInt8
        var keyID: UInt32
        var scopeName: [UInt8]
        /// Kind 1: the wrapped key; all zeros once shredded.
        var wrappedKey: [UInt8]

        var isShredded: Bool { kind == KeyStoreFile.kindDataKey && wrappedKey.allSatisfy { $0 == 0 } }

        func encode() -> [UInt8] {
            var w = ByteWriter()
            w.le(kind)
            w.le(UInt8(kind == KeyStoreFile.kindDataKey ? scopeName.count : 0))
            w.zeros(2)
            w.le(keyID)
            if kind == KeyStoreFile.kindDataKey {
                w.raw(scopeName)
                w.raw(wrappedKey)
            }
            w.appendChecksum()
            return w.bytes
        }

        /// The bytes an entry of this kind and scope name length takes.
        static func length(kind: UInt8, nameLength: Int) -> Int {
            kind == KeyStoreFile.kindDataKey ? entryHeadBytes + nameLength + wrappedKeyBytes + 4 : entryHeadBytes + 4
        }
    }

    /// What the entry at `offset` of `bytes` is.
    enum Scanned {
        /// A whole entry with its checksum holding; `length` bytes.
        case valid(Entry, length: Int)
        /// An entry whose head (kind, length, key id) is sound and complete
        /// but whose checksum fails: a torn or damaged write of it.
        case damaged(keyID: UInt32, kind: UInt8, length: Int)
        /// Bytes that do not begin an entry, or an entry cut short by the end of the file.
        case unreadable
    }

    static func scan(_ bytes: [UInt8], at offset: Int) -> Scanned {
        guard bytes.count - offset >= entryHeadBytes else { return .unreadable }
        let r = ByteReader(bytes: bytes)
        let kind = bytes[offset]
        let nameLength = Int(bytes[offset + 1])
        guard kind == kindDataKey || kind == kindForgetting, r.le(offset + 2, UInt16.self) == 0,
              kind == kindDataKey || nameLength == 0
        else { return .unreadable }
        let keyID = r.le(offset + 4, UInt32.self)
        let length = Entry.length(kind: kind, nameLength: nameLength)
        guard keyID >= 1, bytes.count - offset >= length else { return .unreadable }
        let stored = r.le(offset + length - 4, UInt32.self)
        let computed = bytes.withUnsafeBytes { CRC32C.checksum($0.baseAddress! + offset, count: length - 4) }
        guard stored == computed else { return .damaged(keyID: keyID, kind: kind, length: length) }
        let name = kind == kindDataKey ? r.slice(offset + entryHeadBytes, nameLength) : []
        let wrapped = kind == kindDataKey ? r.slice(offset + entryHeadBytes + nameLength, wrappedKeyBytes) : []
        return .valid(Entry(kind: kind, keyID: keyID, scopeName: name, wrappedKey: wrapped), length: length)
    }
}
