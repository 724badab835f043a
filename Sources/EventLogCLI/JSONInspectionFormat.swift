import EventLog

/// Writes a `LogInspection` as the JSON object of `inspect --json` (snake_case keys).
enum JSONInspectionFormat {
    /// `settings`: the log's, nil (JSON null) when they could not be read.
    /// `reclaimableBytes`: what retention would remove now, nil (null) when unknown.
    /// `compaction`: how the last compaction went, nil (nulls) when unknown.
    static func write(
        _ log: LogInspection, settings: LogSettings?, reclaimableBytes: UInt64?, compaction: MaintenanceStatus?,
        into output: inout OutputWriter
    ) {
        output.append("{\"path\":")
        output.appendJSONString(log.path)
        output.append(",\"format_version\":")
        output.append(log.formatVersion)
        output.append(",\"log_id\":")
        output.appendJSONString(log.logID.uuidString.lowercased())
        output.append(",\"created_at\":")
        output.append(log.createdAt)
        output.append(",\"last_shutdown\":")
        switch log.lastShutdown {
        case .new: output.appendJSONString("new")
        case .unclean: output.appendJSONString("unclean")
        case .open: output.appendJSONString("open")
        case .clean(let at):
            output.appendJSONString("clean")
            output.append(",\"last_shutdown_at\":")
            output.append(at)
        }
        output.append(",\"start_position\":")
        output.append(log.startPosition)
        output.append(",\"end_position\":")
        output.append(log.endPosition)
        output.append(",\"missing_positions\":[")
        for (i, range) in log.missingPositions.enumerated() {
            output.append(i > 0 ? ",[" : "[")
            output.append(range.lowerBound)
            output.append(",")
            output.append(range.upperBound)
            output.append("]")
        }
        output.append("]")
        output.append(",\"damaged_files\":[")
        for (i, damaged) in log.damagedFiles.enumerated() {
            output.append(i > 0 ? ",{\"file\":" : "{\"file\":")
            output.appendJSONString(damaged.file)
            output.append(",\"offset\":")
            output.append(damaged.offset)
            output.append(",\"reason\":")
            output.appendJSONString(damaged.reason)
            output.append("}")
        }
        output.append("]")
        output.append(",\"settings\":")
        if let settings { RetentionSettingsFormat.writeJSON(settings, into: &output) } else { output.append("null") }
        output.append(",\"reclaimable_bytes\":")
        if let reclaimableBytes { output.append(reclaimableBytes) } else { output.append("null") }
        output.append(",\"last_compaction\":")
        if let result = compaction?.lastResult {
            CompactCommand.writeJSON(result, into: &output, finishedAt: true)
        } else {
            output.append("null")
        }
        output.append(",\"last_compaction_unreadable\":")
        if let problem = compaction?.unreadableReport { output.appendJSONString(problem) } else { output.append("null") }
        output.append(",\"last_compaction_failure\":")
        if let failure = compaction?.lastFailure {
            output.append("{\"at\":")
            if let at = compaction?.lastFailureAt { output.append(at) } else { output.append("null") }
            output.append(",\"error\":")
            output.appendJSONString(failure)
            output.append(byte: UInt8(ascii: "}"))
        } else {
            output.append("null")
        }
        output.append(",\"segments\":[")
        for (i, segment) in log.segments.enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            write(segment, into: &output)
        }
        let totals = InspectionTotals(log.segments)
        output.append("],\"totals\":{\"segments\":")
        output.append(totals.segments)
        output.append(",\"batches\":")
        appendOptional(totals.batches.map(Int64.init), into: &output)
        output.append(",\"events\":")
        output.append(totals.events)
        output.append(",\"bytes\":")
        output.append(totals.bytes)
        output.append(",\"allocated_bytes\":")
        output.append(totals.allocatedBytes)
        output.append("}")
        output.append(",\"directory_mode\":")
        output.appendJSONString(InspectCommand.octal(log.directoryMode))
        output.append(",\"file_modes\":{")
        for (i, name) in log.fileModes.keys.sorted().enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            output.appendJSONString(name)
            output.append(":")
            output.appendJSONString(InspectCommand.octal(log.fileModes[name] ?? 0))
        }
        output.append("},\"encryption\":")
        if let encryption = log.encryption {
            output.append("{\"scope\":")
            output.appendJSONString(InspectCommand.scopeName(encryption.scope))
            if case .streamPrefix(let separator) = encryption.scope {
                output.append(",\"separator\":")
                output.appendJSONString(String(decoding: [separator], as: UTF8.self))
            }
            output.append(",\"data_keys\":")
            output.append(encryption.dataKeys)
            output.append(",\"forgotten_keys\":")
            output.append(encryption.forgottenKeys)
            output.append(",\"key_store_bytes\":")
            output.append(encryption.keyStoreBytes)
            output.append("}")
        } else {
            output.append("null")
        }
        output.append("}")
    }

    private static func write(_ segment: SegmentInspection, into output: inout OutputWriter) {
        output.append("{\"file\":")
        output.appendJSONString(segment.file)
        output.append(",\"base_position\":")
        output.append(segment.basePosition)
        output.append(",\"end_position\":")
        output.append(segment.endPosition)
        output.append(",\"batches\":")
        appendOptional(segment.batches.map(Int64.init), into: &output)
        output.append(",\"events\":")
        output.append(segment.events)
        output.append(",\"bytes\":")
        output.append(segment.bytes)
        output.append(",\"allocated_bytes\":")
        output.append(segment.allocatedBytes)
        output.append(",\"first_timestamp\":")
        appendOptional(segment.firstTimestamp, into: &output)
        output.append(",\"last_timestamp\":")
        appendOptional(segment.lastTimestamp, into: &output)
        output.append(",\"sealed\":")
        output.append(segment.isSealed ? "true" : "false")
        output.append(",\"rewritten\":")
        output.append(segment.isRewritten ? "true" : "false")
        output.append(",\"scanned\":")
        if let reason = segment.scanned { output.appendJSONString(reason.description) } else { output.append("null") }
        output.append(byte: UInt8(ascii: "}"))
    }

    private static func appendOptional(_ value: Int64?, into output: inout OutputWriter) {
        if let value { output.append(value) } else { output.append("null") }
    }
}
