import EventLog

/// The lines of `eventlog dump --batches`: one per stored batch, in
/// position order.
///
/// Text, fields two spaces apart: segment file, byte offset in it, length
/// in bytes, CRC32C (8 hex digits), codec, base position, record count,
/// first timestamp (ISO 8601, UTC, microseconds):
///
///     00000000000000000000.segment  64  1234  0a1b2c3d  none  0  10  2023-11-14T22:13:20.000000Z
///
/// JSON, one object per line:
///
///     {"segment":"00000000000000000000.segment","offset":64,"length":1234,"crc":"0a1b2c3d",
///      "codec":"none","base_position":0,"record_count":10,"first_timestamp":1700000000000000}
enum BatchListing {
    /// `none` or `lz4`, as `append --compression` takes it.
    static func codecName(_ compression: Compression) -> String {
        switch compression {
        case .none: return "none"
        case .lz4: return "lz4"
        }
    }

    /// Buffers `batch` as one line (without its line end).
    static func write(_ batch: BatchInfo, json: Bool, into output: inout OutputWriter) {
        if json {
            writeJSON(batch, into: &output)
        } else {
            writeText(batch, into: &output)
        }
    }

    static func writeText(_ batch: BatchInfo, into output: inout OutputWriter) {
        output.append(batch.segment)
        output.append("  ")
        output.append(batch.offset)
        output.append("  ")
        output.append(batch.length)
        output.append("  ")
        output.appendHex(UInt64(batch.crc), digits: 8)
        output.append("  ")
        output.append(codecName(batch.compression))
        output.append("  ")
        output.append(batch.basePosition)
        output.append("  ")
        output.append(batch.recordCount)
        output.append("  ")
        output.appendISO8601(batch.firstTimestamp)
    }

    static func writeJSON(_ batch: BatchInfo, into output: inout OutputWriter) {
        output.append("{\"segment\":")
        output.appendJSONString(batch.segment)
        output.append(",\"offset\":")
        output.append(batch.offset)
        output.append(",\"length\":")
        output.append(batch.length)
        output.append(",\"crc\":\"")
        output.appendHex(UInt64(batch.crc), digits: 8)
        output.append("\",\"codec\":\"")
        output.append(codecName(batch.compression))
        output.append("\",\"base_position\":")
        output.append(batch.basePosition)
        output.append(",\"record_count\":")
        output.append(batch.recordCount)
        output.append(",\"first_timestamp\":")
        output.append(batch.firstTimestamp)
        output.append(byte: UInt8(ascii: "}"))
    }
}
