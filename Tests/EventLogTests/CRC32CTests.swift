import CCRC32C
import Testing
@testable import EventLog

/// The hardware CRC32C against the software one (the oracle) and the standard check value.
@Suite struct CRC32CTests {
    @Test func checkValue() {
        let bytes = Array("123456789".utf8)
        #expect(bytes.withUnsafeBytes { eventlog_crc32c(0, $0.baseAddress, $0.count) } == 0xE306_9283)
        #expect(bytes.withUnsafeBytes { eventlog_crc32c_software(0, $0.baseAddress, $0.count) } == 0xE306_9283)
        #expect(eventlog_crc32c(0, nil, 0) == 0)
    }

    @Test func hardwareEqualsSoftwareOnEveryLengthAndAlignment() {
        var rng = SplitMix64(seed: 99)
        let buffer = (0..<4200).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        buffer.withUnsafeBytes { raw in
            for length in 0..<300 {
                for start in 0..<9 {
                    let p = raw.baseAddress! + start
                    #expect(eventlog_crc32c(7, p, length) == eventlog_crc32c_software(7, p, length))
                }
            }
            #expect(eventlog_crc32c(0, raw.baseAddress, raw.count) == eventlog_crc32c_software(0, raw.baseAddress, raw.count))
        }
    }

    /// The hardware path joins three streams over blocks of 4,096 and 256
    /// bytes (three of them at least): lengths on both sides of each round's
    /// size, at every alignment of the start.
    @Test func hardwareEqualsSoftwareAcrossTheThreeWayRounds() {
        var rng = SplitMix64(seed: 2026)
        let buffer = (0..<41_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let lengths = [767, 768, 769, 775, 776, 1_543, 2_304, 12_287, 12_288, 12_289, 12_288 + 768 + 13, 22_000, 24_576, 40_000]
        buffer.withUnsafeBytes { raw in
            for length in lengths {
                for start in 0..<9 {
                    let p = raw.baseAddress! + start
                    #expect(eventlog_crc32c(0xDEAD_BEEF, p, length) == eventlog_crc32c_software(0xDEAD_BEEF, p, length))
                }
            }
        }
    }

    @Test func continuingEqualsOneCall() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        bytes.withUnsafeBytes { raw in
            let whole = CRC32C.checksum(raw)
            for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
                let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<cut]))
                #expect(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[cut...]), continuing: first) == whole)
            }
        }
    }
}
