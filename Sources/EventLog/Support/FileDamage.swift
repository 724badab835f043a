/// A small file that does not decode (corruption, or a foreign file: a
/// wrong magic), where and why: what an open reports instead of failing when
/// the events do not need the file (Format.md §10.2), or refuses with advice.
struct FileDamage: Error {
    let error: EventLogError

    /// Nil for any other error (I/O, an unknown version), which is no damage.
    init?(_ error: EventLogError) {
        switch error {
        case .corruption, .foreignFile: self.error = error
        default: return nil
        }
    }

    var offset: Int64 {
        if case .corruption(_, let offset, _) = error { return offset }
        return 0  // a foreign file: its magic, at byte 0
    }

    var reason: String {
        switch error {
        case .corruption(_, _, let reason), .foreignFile(_, let reason): return reason
        default: return error.description
        }
    }

    /// The same error with `advice` after its reason.
    func advising(_ advice: String) -> EventLogError {
        switch error {
        case .corruption(let file, let offset, let reason): return .corruption(file: file, offset: offset, reason: reason + advice)
        case .foreignFile(let file, let reason): return .foreignFile(file: file, reason: reason + advice)
        default: return error
        }
    }
}
