/// Encryption at rest and crypto-shredding (Format.md §5.1, §16; README, "Security").
extension Log {
    /// True when the log is encrypted (`LogOptions.encryption`).
    public var isEncrypted: Bool { batches.keyRing != nil }

    /// How the log's data keys are assigned; nil for a plain log.
    public var dataKeyScope: DataKeyScope? { batches.keyRing?.scope }

    /// Forgets `stream` for good (crypto-shredding): destroys the data key
    /// its events were sealed under, durably, so every event it sealed
    /// reads as forgotten (`EventView.isForgotten`, `Event.isForgotten`:
    /// stream, type, version, timestamp and key remain; data and metadata
    /// are empty) in every read: stream reads, whole-log reads, batches,
    /// subscriptions, consumer groups, dumps and exports. Scavenging then
    /// drops them from disk (each stream's last event stays, keeping its
    /// version; a batch that also holds events of other keys stays whole).
    ///
    /// With `DataKeyScope.streamPrefix`, forgets every stream that shares
    /// the stream's prefix. Events appended to the stream afterwards are
    /// sealed under a new data key.
    ///
    /// Backups of the key store (`eventlog.keys`) taken before still hold
    /// the key: keep them apart from the log's backups, and short-lived.
    ///
    /// A writer only; blocks on two syncs of the key store.
    ///
    /// - Returns: how many data keys were destroyed (0: the stream never
    ///   had an event sealed).
    /// - Throws: `EventLogError.encryptionMismatch` for a plain log,
    ///   `invalidArgument` for a log with one data key (`DataKeyScope.log`),
    ///   `readOnly`, `io` for a failed write or sync.
    @discardableResult
    public func forgetStream(_ stream: String) throws -> Int {
        guard let ring = batches.keyRing else {
            throw EventLogError.encryptionMismatch(path: path, reason: "the log is not encrypted: there is no key to forget")
        }
        guard ring.scope != .log else {
            throw EventLogError.invalidArgument(
                "the log has one data key (DataKeyScope.log): forgetting one stream needs per-stream keys (.stream or .streamPrefix)")
        }
        var name = stream
        let scopeName = name.withUTF8 { Array(ring.scope.scopeName(of: UnsafeRawBufferPointer($0))) }
        // Under the writer lock: no batch is being sealed under the key while it goes.
        let forgotten = try batches.commit { (state) throws(EventLogError) -> (result: Int, sequence: UInt64, wait: Bool) in
            do throws(EventLogError) {
                return (try ring.forget(scopeName: scopeName).count, state.writtenSequence, false)
            } catch {
                // A failed write or sync of the key store stops the writer (Format.md §11).
                if case .io = error { batches.groupCommit.fail("the key store: \(error)") }
                throw error
            }
        }
        if forgotten > 0 { try maintenance.scavenger.forgetCleanSegments() }
        return forgotten
    }

    /// Re-wraps every data key of the log under the master key from
    /// `provider`, atomically (a crash leaves the key store under the old
    /// master key or the new one). Open the log with the new provider from
    /// then on. No event is rewritten.
    ///
    /// A writer only.
    /// - Throws: `encryptionMismatch` for a plain log, `readOnly`, what the
    ///   provider throws, `io`.
    public func rotateMasterKey(to provider: any KeyProvider) throws {
        guard let ring = batches.keyRing else {
            throw EventLogError.encryptionMismatch(path: path, reason: "the log is not encrypted: there is no master key")
        }
        var failure: (any Error)?
        try batches.commit { (state) throws(EventLogError) -> (result: Void, sequence: UInt64, wait: Bool) in
            do { try ring.rotate(to: provider) } catch { failure = error }
            return ((), state.writtenSequence, false)
        }
        if let failure { throw failure }
    }
}
