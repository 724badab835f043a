/// The names of `EventMetadata`'s fields in the tool's JSON (`dump --json`,
/// `append`'s input, `dump --meta`): snake_case, as every other key of the
/// tool's JSON. Input also takes the camelCase names earlier versions
/// printed (`eventId`, `schemaVersion`, …), so their output still appends.
/// Any other key of a metadata object is a header.
enum MetadataFieldName: CaseIterable {
    case eventID, schemaVersion, contentType, correlationID, causationID

    /// The name the tool prints.
    var key: String {
        switch self {
        case .eventID: return "event_id"
        case .schemaVersion: return "schema_version"
        case .contentType: return "content_type"
        case .correlationID: return "correlation_id"
        case .causationID: return "causation_id"
        }
    }

    /// The camelCase name earlier versions printed (still read).
    var legacyKey: String {
        switch self {
        case .eventID: return "eventId"
        case .schemaVersion: return "schemaVersion"
        case .contentType: return "contentType"
        case .correlationID: return "correlationId"
        case .causationID: return "causationId"
        }
    }

    /// The field `key` names, in either spelling; nil for a header.
    init?(key: String) {
        guard let field = Self.allCases.first(where: { $0.key == key || $0.legacyKey == key }) else { return nil }
        self = field
    }
}
