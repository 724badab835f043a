import CMallocCounter
import Testing
import Workload

/// The check values of WORKLOAD.md, which the peers' `gen_dump N` and
/// `gen_ref.py N` print.
@Suite struct GeneratorCheckValues {
    @Test func firstThreeEvents() {
        let (digest, bytes) = workloadCheck(count: 3)
        #expect(digest.hex == "90385ed71faa7a5d")
        #expect(bytes == 621)
    }

    @Test func firstHundredThousandEvents() {
        let (digest, bytes) = workloadCheck(count: 100_000)
        #expect(digest.hex == "3d86668f95a72232")
        #expect(bytes == 22_272_674)
    }

    @Test func noEvents() {
        let (digest, bytes) = workloadCheck(count: 0)
        #expect(digest.value == FNV1a64.offsetBasis)
        #expect(bytes == 0)
    }
}

@Suite struct GeneratorEvents {
    static let event0Payload = #"{"orderId":"order-5413","seq":0,"customer":"cust-63858","sku":"SKU-5764","qty":1,"price":890.62,"currency":"USD","note":"small west reception door discount large required green small "}"#

    @Test func eventZeroIsTheOneInTheSpec() {
        var generator = EventGenerator()
        generator.next()
        #expect(generator.position == 0)
        #expect(generator.streamNumber == 5413)
        #expect(string(generator.stream) == "order-5413")
        #expect(generator.version == 0)
        #expect(string(generator.type) == "AddressChanged")
        #expect(string(generator.payload) == Self.event0Payload)
        #expect(generator.logicalBytes == 10 + 14 + Self.event0Payload.utf8.count)
    }

    @Test func payloadsHaveTheDrawnLengthAndShape() {
        var generator = EventGenerator()
        for i in 0..<20_000 {
            generator.next()
            let payload = generator.payload
            #expect(generator.position == UInt64(i))
            #expect((180...220).contains(payload.count))
            #expect(payload.first == UInt8(ascii: "{"))
            #expect(Array(payload.suffix(2)) == Array(#""}"#.utf8))
            #expect(!payload.contains(0))
            if payload.count < 180 || payload.count > 220 { break }
        }
    }

    @Test func versionsCountEarlierEventsOfTheSameStream() {
        var generator = EventGenerator()
        var counts = [UInt32](repeating: 0, count: EventGenerator.streamCount)
        for _ in 0..<50_000 {
            generator.next()
            let k = Int(generator.streamNumber)
            #expect(generator.version == counts[k])
            #expect(string(generator.stream) == "order-\(k)")
            counts[k] += 1
        }
        for k in [0, 42, 5413, 9999] { #expect(generator.eventCount(ofStream: k) == counts[k]) }
    }

    @Test func chunkHoldsTheSameEventsAsTheGenerator() {
        var direct = EventGenerator()
        var viaChunk = EventGenerator()
        var chunk = EventChunk(capacity: 1_000)
        var digestDirect = FNV1a64()
        var digestChunk = FNV1a64()
        var bytes: UInt64 = 0
        for round in 0..<3 {
            let count = round == 2 ? 1 : 1_000  // a full chunk, again, then a single event
            chunk.fill(from: &viaChunk, count: count)
            let events = chunk.events
            #expect(events.count == count)
            var chunkBytes: UInt64 = 0
            for i in 0..<count {
                direct.next()
                digestDirect.add(
                    stream: direct.stream, version: UInt64(direct.version), type: direct.type, payload: direct.payload)
                let event = events[i]
                #expect(event.position == direct.position)
                digestChunk.add(stream: event.stream, version: UInt64(event.version), type: event.type, payload: event.payload)
                chunkBytes += UInt64(event.logicalBytes)
            }
            #expect(chunk.logicalBytes == chunkBytes)
            bytes += chunkBytes
        }
        #expect(digestChunk.value == digestDirect.value)
        #expect(bytes > 0)
    }

    @Test func producingEventsAllocatesNothing() {
        guard malloc_counter_active() != 0 else { return }
        var generator = EventGenerator()
        var chunk = EventChunk(capacity: 10_000)
        generator.next()
        chunk.fill(from: &generator, count: 10)
        let before = malloc_counter_thread_allocations()
        for _ in 0..<10_000 { generator.next() }
        chunk.fill(from: &generator, count: 10_000)
        let after = malloc_counter_thread_allocations()
        #expect(after - before == 0)
    }

    /// The zero above means something only if the counter sees the Swift
    /// runtime's allocations.
    @Test func allocationCounterSeesSwiftAllocations() {
        guard malloc_counter_active() != 0 else { return }
        final class Box { var value = 0 }
        let before = malloc_counter_thread_allocations()
        let box = Box()
        withExtendedLifetime(box) {}
        #expect(malloc_counter_thread_allocations() > before)
    }

    @Test func splitMix64MatchesTheReference() {
        // First outputs of splitmix64 seeded 0 (Vigna's reference implementation).
        var rng = SplitMix64(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func fnvDecimal() {
        for value: UInt64 in [0, 7, 10, 99, 100, 12345, UInt64.max] {
            var a = FNV1a64()
            a.add(decimal: value)
            var b = FNV1a64()
            Array(String(value).utf8).withUnsafeBytes { b.add($0) }
            #expect(a.value == b.value)
        }
    }
}

private func string(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
