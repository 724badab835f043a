import Testing

@testable import EventLog

/// What keeps the log's anonymous memory small (README, "Memory"): sealed
/// segments' indexes hold exactly their entries, whether sealed by the
/// writer, opened sealed or sealed by a read-only log's refresh; large
/// buffers come from the kernel and small ones from malloc; a `PageArray`
/// that gets more than it reserved keeps every value.
@Suite struct MemoryTests {
    static func options(readOnly: Bool = false) -> LogOptions {
        var options = LogOptions(segmentBytes: 64 << 10, indexInterval: 256, durability: .none, readOnly: readOnly)
        options.maintenanceInterval = nil
        options.metricsInterval = nil
        return options
    }

    static func append(_ log: Log, batches: Range<Int>) throws {
        let data = [UInt8](repeating: 0x61, count: 300)
        for b in batches {
            try log.appendBatch { batch in
                for e in 0..<20 { _ = try batch.append(NewEvent(stream: "s-\((b * 20 + e) % 7)", type: "T", data: data)) }
            }
        }
    }

    /// Every sealed segment's indexes are no larger than its entries (plus
    /// the slack `Segment.sealed()` allows), and the active one's keep their room.
    static func checkExact(_ snapshot: LogSnapshot, sealedAtLeast: Int) {
        #expect(snapshot.sealed.count >= sealedAtLeast)
        for s in snapshot.sealed {
            #expect(s.offsetIndexCount > 0)
            #expect(s.offsetIndex.capacity <= s.offsetIndexCount + s.offsetIndexCount / 8 + 64, "\(s.id): \(s.offsetIndex.capacity) for \(s.offsetIndexCount)")
            #expect(s.timeIndex.capacity <= s.timeIndexCount + s.timeIndexCount / 8 + 64, "\(s.id): \(s.timeIndex.capacity) for \(s.timeIndexCount)")
        }
        if let active = snapshot.active {
            #expect(active.offsetIndex.capacity >= IndexPolicy.capacity(segmentBytes: 64 << 10, interval: 256))
        }
    }

    @Test func sealedSegmentsKeepExactlyTheirIndexEntries() throws {
        let dir = TemporaryDirectory()
        let writer = try Log.open(at: dir.path, options: Self.options())
        try Self.append(writer, batches: 0..<40)
        // A read-only log opened now, which sees later segments sealed by its refresh.
        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        defer { try? reader.close() }
        try Self.append(writer, batches: 40..<200)
        Self.checkExact(writer.batches.snapshot(), sealedAtLeast: 8)
        for p in stride(from: 0, to: 4000, by: 37) {
            #expect(try writer.event(at: UInt64(p)).data.count == 300)
        }
        try writer.close()

        _ = try reader.refresh()
        Self.checkExact(reader.batches.snapshot(), sealedAtLeast: 8)
        for p in stride(from: 5, to: 4000, by: 41) {
            #expect(try reader.event(at: UInt64(p)).data.count == 300)
        }

        // Opened again: its sealed segments' indexes from their files, exactly.
        let reopened = try Log.open(at: dir.path, options: Self.options())
        defer { try? reopened.close() }
        Self.checkExact(reopened.batches.snapshot(), sealedAtLeast: 8)
        #expect(reopened.endPosition == 4000)
        for p in stride(from: 11, to: 4000, by: 43) {
            #expect(try reopened.event(at: UInt64(p)).data.count == 300)
        }
    }

    @Test func largeBlocksAreMappedSmallOnesAreNot() {
        let large = PageBlock(byteCount: PageBlock.mappedThreshold)
        #expect(large.isMapped)
        #expect(Int(bitPattern: large.base) % 4096 == 0)
        large.base.storeBytes(of: 7, toByteOffset: PageBlock.mappedThreshold - 8, as: UInt64.self)
        #expect(large.base.load(fromByteOffset: PageBlock.mappedThreshold - 8, as: UInt64.self) == 7)
        let small = PageBlock(byteCount: PageBlock.mappedThreshold - 1)
        #expect(!small.isMapped)
        #expect(PageBlock(byteCount: 0).byteCount == 1)
    }

    @Test func aPageArrayKeepsEveryValuePastWhatItReserved() {
        let array = PageArray<UInt64>(reserving: 3)
        for v in 0..<100_000 { array.append(UInt64(v) &* 0x9E37_79B9) }
        #expect(array.count == 100_000)
        array.withUnsafeBufferPointer { values in
            #expect(values.count == 100_000)
            #expect(values.enumerated().allSatisfy { $0.element == UInt64($0.offset) &* 0x9E37_79B9 })
        }
    }
}
