/// One step of a repair (`Log.repair(at:options:apply:)`, Format.md §10.1).
/// A value: safe to keep and to share between threads.
public struct RepairAction: Sendable, Equatable, CustomStringConvertible {
    /// What a step does to its file.
    public enum Kind: String, Sendable {
        /// The last segment is cut at `offset`, the offset of its first
        /// damaged batch: the bytes from there on are first copied into the
        /// damaged directory (`<segment>.from-<offset>`), then the segment
        /// is replaced by a copy of the bytes before it.
        case cut
        /// `file` is moved (renamed) into the damaged directory.
        case moveAside = "move_aside"
        /// `file` is written again from the log by the open that ends the
        /// repair: an index file, the stream table run replayed from the
        /// log, or an empty segment where the log continues.
        case rebuild
    }

    /// What the step does.
    public var kind: Kind
    /// The file's name in the log directory (`00000000000000000000.segment`).
    public var file: String
    /// For a cut, the byte offset where the segment is cut; for a damaged
    /// segment moved aside, the offset of its damage; otherwise nil.
    public var offset: Int64?
    /// Why: the damage found, or what the file needs.
    public var reason: String

    /// The step as `eventlog repair` prints it.
    public var description: String {
        "\(kind.rawValue) \(file)" + (offset.map { " at byte \($0)" } ?? "") + ": \(reason)"
    }
}

/// What `Log.repair(at:options:apply:)` found and would do (or, applied,
/// did). A value: safe to keep and to share between threads.
public struct RepairPlan: Sendable {
    /// The log directory.
    public var path: String
    /// The steps, in the order they are carried out. Empty when there is
    /// nothing to repair (or when the repair is refused).
    public var actions: [RepairAction] = []
    /// Set when the damage cannot be repaired without losing what only the
    /// log's files hold (Format.md §10.1): why, and what to do instead.
    /// Nothing is changed then, even when asked to apply.
    public var refusal: String?
    /// What the next open deals with by itself and repair leaves to it: a
    /// torn tail it cuts, a creation a crash interrupted.
    public var notes: [String] = []
    /// The directory (`DIR/damaged-<UTC time>`) that holds, or would hold,
    /// what the repair takes out of the log; nil when nothing is moved aside.
    public var damagedDirectory: String?
    /// The position after the last event the segments hold before the repair.
    public var endPositionBefore: UInt64 = 0
    /// The position after the last event of the repaired log: the next
    /// append gets it. Positions from here to `endPositionBefore` were in
    /// the part moved aside.
    public var endPositionAfter: UInt64 = 0
    /// True once the repair was carried out and the log opened, rebuilt its
    /// indexes and stream table, and closed again.
    public var applied = false
    /// Cursors the open that ended the repair moved back to the new end of
    /// the log (their events were moved aside).
    public var clampedCursors: [RecoveryReport.ClampedCursor] = []
    /// What `Log.verify(at:)` reported once the repair was applied (empty: sound).
    public var problemsAfter: [VerificationProblem] = []

    /// True when there is nothing to repair.
    public var isSound: Bool { actions.isEmpty && refusal == nil }
}
