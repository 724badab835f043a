#if canImport(Glibc)
import Glibc
#endif

/// A key store (`eventlog.keys`, Format.md §16) as read without the master
/// key: its header and every entry, sound or damaged, in file order. What
/// `KeyRing.load` unwraps keys from, and what `Log.inspect` summarizes
/// (`EncryptionInspection`); reading it checks each entry's checksum and
/// nothing needs a key.
struct KeyStoreContents {
    var header: KeyStoreFile.Header
    /// Sound entries, with the offset each starts at.
    var entries: [(offset: Int, entry: KeyStoreFile.Entry)] = []
    /// Entries whose checksum fails (their key id and kind as stored).
    var damaged: [(offset: Int, keyID: UInt32, kind: UInt8)] = []
    /// The end of the last sound entry: what follows it (a damaged or
    /// unreadable last entry) is a torn tail a writer cuts.
    var lastValidEnd = KeyStoreFile.headerSize
    /// The file's length.
    var length = 0

    /// Reads the key store in `directory`; nil when there is none. A file
    /// longer than `KeyRing.maxBytes` is refused before it is read.
    static func read(in directory: DirectoryOperations) throws -> KeyStoreContents? {
        let path = directory.file(FileNames.keyStore)
        var info = stat()
        if stat(path, &info) == 0, Int64(info.st_size) > Int64(KeyRing.maxBytes) {
            throw EventLogError.limitExceeded(
                limit: "key store bytes", value: Int(clamping: Int64(info.st_size)), maximum: KeyRing.maxBytes)
        }
        guard let bytes = try directory.readWhole(FileNames.keyStore, atMost: KeyRing.maxBytes) else { return nil }
        guard bytes.count <= KeyRing.maxBytes else {
            throw EventLogError.limitExceeded(limit: "key store bytes", value: bytes.count, maximum: KeyRing.maxBytes)
        }
        var contents = KeyStoreContents(header: try KeyStoreFile.Header.decode(bytes, file: path), length: bytes.count)
        var offset = KeyStoreFile.headerSize
        scan: while offset < bytes.count {
            switch KeyStoreFile.scan(bytes, at: offset) {
            case .valid(let entry, let length):
                contents.entries.append((offset, entry))
                offset += length
                contents.lastValidEnd = offset
            case .damaged(let keyID, let kind, let length):
                contents.damaged.append((offset, keyID, kind))
                offset += length
            case .unreadable:
                break scan
            }
        }
        return contents
    }

    /// Data keys forgotten: a forgetting entry names them, or their wrapped bytes are zeros.
    var forgottenKeyIDs: Set<UInt32> {
        var ids = Set<UInt32>()
        for (_, entry) in entries where entry.kind == KeyStoreFile.kindForgetting || entry.isShredded { ids.insert(entry.keyID) }
        return ids
    }

    /// What a damaged key entry is reported as, by an open and by `inspect`.
    static func damageReason(keyID: UInt32) -> String { "key store entry of data key \(keyID) is damaged" }

    /// The damaged entries before the end of the last sound one that no
    /// forgetting entry explains (a shred torn by a crash is explained: its
    /// forgetting entry was synced first): damage, not a torn tail.
    var unexplainedDamage: [(offset: Int, keyID: UInt32, kind: UInt8)] {
        let forgotten = forgottenKeyIDs
        return damaged.filter {
            $0.offset < lastValidEnd && !($0.kind == KeyStoreFile.kindDataKey && forgotten.contains($0.keyID))
        }
    }
}
