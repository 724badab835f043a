import ArgumentParser
import EventLog

/// The spellings of an expected version on the command line and on input
/// lines: a non-negative integer (the exact version of the stream's last
/// event), `any`, `no_stream` or `stream_exists`.
extension ExpectedVersion {
    /// The accepted forms, for messages.
    static let acceptedForms = #"a non-negative integer, "any", "no_stream" or "stream_exists""#

    /// A command-line value: a keyword or a version number.
    init?(argument: String) {
        if let keyword = ExpectedVersion(keyword: argument) {
            self = keyword
            return
        }
        // Digits only: UInt64("+4") would accept a sign that the JSON form cannot have.
        guard !argument.isEmpty, argument.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let version = UInt64(argument)
        else { return nil }
        self = .exact(version)
    }

    /// `any`, `no_stream` or `stream_exists` (a JSON string; a version is a JSON number there).
    init?(keyword: String) {
        switch keyword {
        case "any": self = .any
        case "no_stream": self = .noStream
        case "stream_exists": self = .streamExists
        default: return nil
        }
    }
}

/// `--expected-version V` of `eventlog append`.
struct ExpectedVersionArgument: ExpressibleByArgument {
    var value: ExpectedVersion

    init?(argument: String) {
        guard let value = ExpectedVersion(argument: argument) else { return nil }
        self.value = value
    }
}
