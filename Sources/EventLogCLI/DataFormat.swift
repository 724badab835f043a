import ArgumentParser
import EventLog

/// How `dump --data` prints an event's data.
///
/// In the text format (the default, without `--data`: the bytes as they are
/// when they are printable UTF-8, else `base64:` and their base64):
/// - `text`: always as text: bytes that are not UTF-8 become U+FFFD, and
///   control characters other than tab (line breaks included) are written
///   as JSON escapes (`\n`, `\r`, `\u001b`), so an event stays one line;
/// - `json`: data that is one valid JSON value (whatever its content type)
///   as it is, line breaks turned into spaces; other data as without `--data`;
/// - `hex`: lowercase hexadecimal, two digits a byte, no prefix;
/// - `base64`: standard base64 with padding, no prefix.
///
/// With `--json` (the default: `data` when the content type is
/// application/json and the bytes are valid JSON, else `data_base64`):
/// `base64` always writes `data_base64`, `hex` writes `data_hex`; `text`
/// and `json` do not go with `--json`.
enum DataFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    case text, json, hex, base64

    /// The formats `--json` takes.
    var goesWithJSON: Bool { self == .hex || self == .base64 }

    /// Appends `data` for the text line of an event (`format` nil: the default).
    static func appendText(_ data: UnsafeRawBufferPointer, as format: DataFormat?, into output: inout OutputWriter) {
        switch format {
        case nil:
            appendPrintableOrBase64(data, into: &output)
        case .text:
            output.appendEscapingControlCharacters(data)
        case .json:
            if JSONScanner.isValid(data) {
                JSONEventFormat.appendOnOneLine(data, into: &output)
            } else {
                appendPrintableOrBase64(data, into: &output)
            }
        case .hex:
            output.appendHex(data)
        case .base64:
            output.appendBase64(data)
        }
    }

    /// The default: the bytes when printable UTF-8, else `base64:` and their base64.
    private static func appendPrintableOrBase64(_ data: UnsafeRawBufferPointer, into output: inout OutputWriter) {
        if TextEventFormat.isPrintableUTF8(data) {
            output.append(data)
        } else {
            output.append("base64:")
            output.appendBase64(data)
        }
    }
}
