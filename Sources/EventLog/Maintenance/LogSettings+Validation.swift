/// The limits `Log.updateSettings(_:)` checks before it stores settings.
extension LogSettings {
    /// The longest retain age (its microseconds fit the settings file's field).
    static let maxRetainAge = Duration.seconds(100 * 366 * 86_400)

    /// Checks the limits: a retain age of one second to 100 years, retain
    /// bytes of at least one, at most `Limits.maxRetentionCursors` cursor
    /// names of 1 to 255 UTF-8 bytes, none twice.
    func validate() throws(EventLogError) {
        if let age = retainAge, age < .seconds(1) || age > Self.maxRetainAge {
            throw .invalidArgument("the retain age must be 1 second to 100 years, got \(age)")
        }
        if let bytes = retainBytes, bytes == 0 { throw .invalidArgument("the retain bytes must be at least 1") }
        let (seconds, attoseconds) = tombstoneRetention.components
        guard seconds >= 0, seconds <= Int64(UInt32.max), attoseconds == 0 else {
            throw .invalidArgument("the tombstone retention must be whole seconds, 0 to \(UInt32.max), got \(tombstoneRetention)")
        }
        guard retainCursors.count <= Limits.maxRetentionCursors else {
            throw .limitExceeded(limit: "retention cursors", value: retainCursors.count, maximum: Limits.maxRetentionCursors)
        }
        var seen = Set<String>()
        for name in retainCursors {
            guard (1...Limits.maxCursorNameBytes).contains(name.utf8.count) else {
                throw .invalidArgument("a retention cursor name must be 1 to \(Limits.maxCursorNameBytes) UTF-8 bytes: \"\(name)\"")
            }
            guard seen.insert(name).inserted else { throw .invalidArgument("the retention cursor \(name) is named twice") }
        }
    }
}
