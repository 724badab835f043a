import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Readers on other threads see whole batches only, in order, while a writer
/// appends; concurrent durable appenders share syncs.
@Suite struct ConcurrencyTests {
    /// Event data: batch id, batch size, index in batch.
    static func batch(id: UInt32, size: Int) -> [NewEvent] {
        (0..<size).map { i in
            var data: [UInt8] = []
            withUnsafeBytes(of: id.littleEndian) { data += $0 }
            withUnsafeBytes(of: UInt32(size).littleEndian) { data += $0 }
            withUnsafeBytes(of: UInt32(i).littleEndian) { data += $0 }
            return NewEvent(stream: "s-\(id % 5)", type: "T", data: data + [UInt8](repeating: UInt8(id & 0xFF), count: Int(id % 50)))
        }
    }

    @Test func readersSeeWholeBatchesInOrder() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.segmentBytes = 32 << 10  // many rolls while readers read
        let log = try Log.open(at: dir.path, options: options)
        let done = Atomic<Bool>(false)
        let failures = Mutex<[String]>([])
        let reads = Atomic<Int>(0)
        let writer = Thread {
            var rng = SplitMix64(seed: 11)
            for id in 0..<400 {
                do { try log.append(Self.batch(id: UInt32(id), size: Int(1 + rng.next() % 20))) } catch {
                    failures.withLock { $0.append("append: \(error)") }
                }
            }
            done.store(true, ordering: .releasing)
        }
        var readers: [Thread] = []
        for _ in 0..<3 {
            readers.append(Thread {
                while !done.load(ordering: .acquiring) {
                    var expectedPosition: UInt64 = 0
                    var currentBatch: UInt32? = nil
                    var seenInBatch = 0
                    var batchSize = 0
                    do {
                        try log.read(from: 0) { view in
                            let id = view.data.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
                            let size = Int(view.data.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                            let index = Int(view.data.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
                            if view.position != expectedPosition { failures.withLock { $0.append("gap at \(view.position)") } }
                            expectedPosition = view.position + 1
                            if id != currentBatch {
                                if let currentBatch, seenInBatch != batchSize {
                                    failures.withLock { $0.append("batch \(currentBatch) seen partly") }
                                }
                                if let currentBatch, id != currentBatch + 1 { failures.withLock { $0.append("batch order") } }
                                currentBatch = id
                                seenInBatch = 0
                                batchSize = size
                            }
                            if index != seenInBatch { failures.withLock { $0.append("order inside batch \(id)") } }
                            seenInBatch += 1
                        }
                        if currentBatch != nil, seenInBatch != batchSize {
                            failures.withLock { $0.append("last batch seen partly") }
                        }
                        reads.add(1, ordering: .relaxed)
                    } catch {
                        failures.withLock { $0.append("read: \(error)") }
                    }
                }
            })
        }
        for r in readers { r.start() }
        writer.start()
        while !done.load(ordering: .acquiring) { usleep(1000) }
        usleep(20_000)
        #expect(failures.withLock { $0 } == [])
        #expect(reads.load(ordering: .relaxed) > 0)
        try log.close()
    }

    @Test func concurrentDurableAppendersShareSyncs() throws {
        let dir = TemporaryDirectory()
        // For each fdatasync of a segment file, in the order they are called:
        // the writer's end position as the call begins (readers see less under
        // .always: only what is synced). Every batch below it was written (its
        // pwrite returned, under the writer lock) before then, so the sync
        // covers it. A sync called under the writer lock (a roll; none here)
        // is not recorded, which could only report an append as uncovered.
        let syncedUpTo = Mutex<[UInt64]>([])
        let logBox = Mutex<Log?>(nil)
        var options = LogOptions(durability: .always)
        // No zeroing thread: its own syncs can come while an appender holding
        // the writer lock waits for it, and this hook would then wait for that lock.
        options.preallocates = false
        options.storageFaults = StorageFaults { op, path in
            guard op == .datasync, path.hasSuffix(".segment"), let log = logBox.withLock({ $0 }) else { return nil }
            // Another appender may hold the writer lock for a moment. (This
            // thread would hold it itself at a roll, which 400 small events
            // never reach, and at close, which runs after `logBox` is cleared.)
            for _ in 0..<1_000_000 {
                if let end = log.batches.writer.withLockIfAvailable({ $0.active.snapshot.endPosition }) {
                    syncedUpTo.withLock { $0.append(end) }
                    break
                }
                usleep(1)
            }
            return nil
        }
        let log = try Log.open(at: dir.path, options: options)
        logBox.withLock { $0 = log }
        let threads = 8
        let perThread = 50
        let positions = Mutex<[UInt64]>([])
        // Appends that returned before any sync covering them had been called.
        let uncovered = Mutex<[UInt64]>([])
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread {
                for i in 0..<perThread {
                    do {
                        let p = try log.append(NewEvent(stream: "t\(t)", type: "E", data: Array("\(t)-\(i)".utf8)))
                        if !syncedUpTo.withLock({ $0.contains { $0 > p } }) { uncovered.withLock { $0.append(p) } }
                        positions.withLock { $0.append(p) }
                    } catch {
                        Issue.record("append failed: \(error)")
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        let all = positions.withLock { $0 }.sorted()
        #expect(all == (0..<UInt64(threads * perThread)).map { $0 })
        // No append returned before an fdatasync covering its batch had been
        // called. (The fault seam sees a call begin, not end: that the append
        // also waits for it to end is not checked here.)
        #expect(uncovered.withLock { $0 } == [])
        // And they shared syncs: fewer than one per append.
        #expect(syncedUpTo.withLock { $0.count } < threads * perThread)
        logBox.withLock { $0 = nil }
        try log.close()
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(reopened.endPosition == UInt64(threads * perThread))
        try reopened.close()
    }
}
