extension LogRepair {
    /// Carries out `steps` (Format.md §10.1), in an order that leaves, after
    /// a crash or a failed call at any point, either the damaged log (a
    /// repair run again plans the same end, and finds the same damage or a
    /// missing segment) or the repaired one, and never loses a byte:
    ///
    /// 1. the damaged directory is created and the log directory synced;
    /// 2. for a cut: the bytes from the cut on are copied into the damaged
    ///    directory and synced with it; then the bytes before it are copied
    ///    to `<segment>.tmp` (the file's length kept, sparse) and synced.
    ///    Until now nothing in the log changed;
    /// 3. the segments that go are moved aside (each rename synced in both
    ///    directories), the lowest base first, each segment file before its
    ///    index files: a crash in between leaves a gap, which every open
    ///    refuses, and the clean-shutdown marker and the stream table runs,
    ///    which still describe the longer log, keep the open from taking the
    ///    shorter one for a sound log;
    /// 4. the derived files that go are moved aside. After a crash from here
    ///    on an open may find no evidence left that damaged bytes of the last
    ///    segment were synced and cut them as a torn tail itself: this loses
    ///    nothing, since step 2 copied them;
    /// 5. for a cut: `<segment>.tmp` is renamed over the segment, and the
    ///    log directory synced. The old file's inode lives on for readers
    ///    that map it; the segment is never shrunk in place;
    /// 6. when the log would end in a rewritten segment, an empty segment is
    ///    created after it.
    ///
    /// A damaged cursor journal is copied into the damaged directory (after
    /// step 4) and replaced, by an atomic rename, with one that holds what
    /// its sound records say: a crash leaves the damaged journal or the new one.
    ///
    /// Before step 1, a segment merge under way (its manifest, Format.md
    /// §4.2) is finished, as a writer's open would: `verify`, and so the
    /// plan, saw the set it leaves.
    ///
    /// The open that ends the repair (in `Log.repair`) rebuilds the indexes
    /// and the stream table.
    func apply(_ steps: Steps) throws {
        if let bytes = steps.metadataBytes { try directory.writeAtomically(FileNames.metadata, bytes: bytes) }
        if let bytes = steps.startBytes { try directory.writeAtomically(FileNames.logStart, bytes: bytes) }
        _ = try MergeSwap.recover(in: directory)
        if let name = steps.damagedDirectory {
            try directory.makeDirectory(name)
            let damaged = DirectoryOperations(path: directory.file(name), faults: directory.faults, modes: directory.modes)
            if let cut = steps.cut { try copyAside(cut, into: damaged) }
            for file in steps.segmentFiles + steps.derivedFiles { try directory.move(file, into: damaged) }
            if let bytes = steps.journalBytes {
                if DirectoryOperations.exists(directory.file(FileNames.cursorJournal)) {
                    // Copied, not moved: until the rename below the damaged journal stays in place.
                    let source = try FileHandle.open(directory.file(FileNames.cursorJournal), readOnly: true, faults: directory.faults)
                    let aside = try FileHandle.open(
                        damaged.file(FileNames.cursorJournal), create: directory.modes, exclusive: true, faults: directory.faults)
                    try source.copy(0..<(try source.length()), to: aside, at: 0)
                    try aside.datasync()
                    try damaged.sync()
                }
                // A missing journal is created (empty) the same way.
                try directory.writeAtomically(FileNames.cursorJournal, bytes: bytes)
            }
            if let cut = steps.cut { try directory.rename(FileNames.segment(cut.base) + ".tmp", to: FileNames.segment(cut.base)) }
        }
        if let base = steps.newSegment {
            let capacity = min(max(Int(metadata.segmentBytes), Limits.minSegmentBytes), Limits.maxSegmentBytes)
            _ = try ActiveSegment.create(
                base: base, capacity: capacity, indexInterval: Int(metadata.indexInterval), logID: metadata.logID, directory: directory)
        }
    }

    /// Step 2: the bytes of the last segment from the cut on go into
    /// `damaged` as `<segment>.from-<offset>`, then the bytes before it into
    /// `<segment>.tmp` in the log directory, each synced.
    private func copyAside(_ cut: (base: UInt64, offset: Int), into damaged: DirectoryOperations) throws {
        let name = FileNames.segment(cut.base)
        let source = try FileHandle.open(directory.file(name), readOnly: true, faults: directory.faults)
        let length = try source.length()
        let offset = Int64(cut.offset)
        let aside = try FileHandle.open(
            damaged.file(FileNames.cutOff(cut.base, from: cut.offset)), create: directory.modes, exclusive: true, faults: directory.faults)
        try source.copy(offset..<length, to: aside, at: 0)
        try aside.setLength(length - offset)
        try aside.datasync()
        try damaged.sync()

        let replacement = try FileHandle.open(directory.file(name + ".tmp"), create: directory.modes, faults: directory.faults)
        try replacement.setLength(0)
        try source.copy(0..<offset, to: replacement, at: 0)
        try replacement.setLength(length)
        try replacement.datasync()
    }
}
