import ArgumentParser
import EventLog
import struct Foundation.UUID

/// One `dump --meta KEY=VALUE`: the event's metadata entry KEY, as
/// `dump --json` prints it under "metadata", must equal VALUE. The keys
/// `eventId` (a UUID, in any case), `schemaVersion` (an integer),
/// `contentType`, `correlationId` and `causationId` name those fields;
/// any other key names a header (the first header of that name, as
/// `EventMetadata[header:]` reads it). An event without the entry does not match.
struct MetadataCondition: Sendable, Equatable {
    enum Entry: Sendable, Equatable {
        case eventID(UUID)
        case schemaVersion(UInt32)
        case contentType(String)
        case correlationID(String)
        case causationID(String)
        case header(name: String, value: String)
    }

    var entry: Entry

    /// `tenant=acme`: split at the first `=`, the key not empty.
    static func parse(_ text: String) throws -> MetadataCondition {
        guard let equals = text.firstIndex(of: "=") else {
            throw ValidationError("expected KEY=VALUE (e.g. tenant=acme or correlation_id=checkout-7), without an = in \"\(text)\"")
        }
        let key = String(text[..<equals])
        let value = String(text[text.index(after: equals)...])
        guard !key.isEmpty else { throw ValidationError("expected KEY=VALUE, the key is empty in \"\(text)\"") }
        switch MetadataFieldName(key: key) {
        case .eventID?:
            guard let id = UUID(uuidString: value) else { throw ValidationError("event_id must be a UUID, got \"\(value)\"") }
            return MetadataCondition(entry: .eventID(id))
        case .schemaVersion?:
            guard let version = UInt32(value) else {
                throw ValidationError("schema_version must be an integer from 0 to \(UInt32.max), got \"\(value)\"")
            }
            return MetadataCondition(entry: .schemaVersion(version))
        case .contentType?: return MetadataCondition(entry: .contentType(value))
        case .correlationID?: return MetadataCondition(entry: .correlationID(value))
        case .causationID?: return MetadataCondition(entry: .causationID(value))
        case nil: return MetadataCondition(entry: .header(name: key, value: value))
        }
    }

    func matches(_ metadata: EventMetadata) -> Bool {
        switch entry {
        case .eventID(let id): return metadata.eventID == id
        case .schemaVersion(let version): return metadata.schemaVersion == version
        case .contentType(let value): return metadata.contentType == value
        case .correlationID(let value): return metadata.correlationID == value
        case .causationID(let value): return metadata.causationID == value
        case .header(let name, let value): return metadata[header: name] == value
        }
    }
}
