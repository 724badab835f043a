/// The stream table of an imported log (`LogImporter`): one stream table
/// run from position 0 to the log's end (Format.md §14.1) holding the states
/// the export carried, or an empty run up to the log start when it carried
/// none (the open then replays the imported records, §14.3, and the run
/// says that nothing is known of the positions before the start).
enum ImportedStreamTable {
    /// The snapshots as stream table rows, sorted as a run holds them.
    static func rows(_ snapshots: [StreamSnapshot], hashMask: UInt64) throws(EventLogError) -> [(UInt64, StreamTableRow)] {
        var rows: [(UInt64, StreamTableRow)] = []
        rows.reserveCapacity(snapshots.count)
        for snapshot in snapshots {
            var name = snapshot.name
            let nameBytes = name.withUTF8 { UnsafeRawBufferPointer($0) }.count
            guard nameBytes >= 1, nameBytes <= Limits.maxStreamNameBytes else {
                throw .invalidArgument("stream name \"\(snapshot.name)\" must be 1 to \(Limits.maxStreamNameBytes) UTF-8 bytes")
            }
            var state = StreamState(name: snapshot.name, hash: StreamHash.hash(snapshot.name) & hashMask)
            state.nextVersion = snapshot.nextVersion
            state.truncateBefore = snapshot.truncateBefore
            state.deletion = snapshot.deletion
            state.firstPosition = snapshot.firstPosition
            state.lastPosition = snapshot.lastPosition
            if let last = snapshot.lastAppend {
                state.lastAppendBatch = last.batchPosition
                state.lastAppendFirstVersion = last.firstVersion
                state.lastAppendCount = last.eventCount
                state.lastAppendRecordCount = last.recordCount
                state.lastAppendIDDigest = last.idDigest
            }
            state.maxAgeMicroseconds = snapshot.maxAgeMicroseconds
            state.maxCount = snapshot.maxCount
            rows.append((state.hash, state.row))
        }
        rows.sort { a, b in
            if a.0 != b.0 { return a.0 < b.0 }
            return Array(a.1.name.utf8).lexicographicallyPrecedes(Array(b.1.name.utf8))
        }
        for i in rows.indices.dropFirst() where rows[i].0 == rows[i - 1].0 && rows[i].1.name == rows[i - 1].1.name {
            throw .invalidArgument("stream \"\(rows[i].1.name)\" is given twice")
        }
        return rows
    }

    /// Writes the run `[0, to)` holding `rows` in `directory` (synced, renamed, directory synced).
    static func write(_ rows: [(UInt64, StreamTableRow)], to: UInt64, in directory: DirectoryOperations) throws(EventLogError) {
        do {
            try StreamTableRunWriter.write(
                rows: rows, to: FileNames.streamTableRun(from: 0, to: to), in: directory, from: 0, to: to,
                expectedRows: max(rows.count, 1))
        } catch {
            throw .io(error)
        }
    }

    /// The states of every stream, as snapshots, sorted by name.
    static func snapshots(of table: StreamTable) throws(EventLogError) -> [StreamSnapshot] {
        try table.states { _ in true }.map { state in
            StreamSnapshot(
                name: state.name, nextVersion: state.nextVersion, truncateBefore: state.truncateBefore, deletion: state.deletion,
                firstPosition: state.firstPosition, lastPosition: state.lastPosition,
                lastAppend: state.lastAppendBatch == .max ? nil : StreamSnapshot.LastAppend(
                    batchPosition: state.lastAppendBatch, firstVersion: state.lastAppendFirstVersion,
                    eventCount: state.lastAppendCount, recordCount: state.lastAppendRecordCount, idDigest: state.lastAppendIDDigest),
                maxAgeMicroseconds: state.maxAgeMicroseconds, maxCount: state.maxCount)
        }.sorted { $0.name < $1.name }
    }
}
