extension OutputWriter {
    /// Appends `rows` as columns two spaces apart, each padded to its widest
    /// cell (on the left for the columns in `rightAligned`), one line per row.
    mutating func appendTable(_ rows: [[String]], rightAligned: Set<Int>) {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[i] - cell.count)
                if i > 0 { line += "  " }
                line += rightAligned.contains(i) ? padding + cell : cell + padding
            }
            while line.last == " " { line.removeLast() }
            append(line + "\n")
        }
    }
}
