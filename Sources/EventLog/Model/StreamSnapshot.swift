/// Everything the stream table keeps of one stream (Format.md §14): what
/// `Log.streamSnapshots()` reads for an export and `LogImporter` writes back,
/// so that an imported log's streams are the original's exactly, including
/// what only the table remembers once retention or scavenging removed the
/// events (a stream's first position, its last append for idempotent
/// retries, §14.4).
public struct StreamSnapshot: Sendable, Hashable {
    /// The last append to a stream (Format.md §14.4).
    public struct LastAppend: Sendable, Hashable {
        /// The position of its batch.
        public var batchPosition: UInt64
        /// The first version it gave the stream, and how many events.
        public var firstVersion: UInt64
        /// How many events of the stream it held.
        public var eventCount: UInt32
        /// The batch's record count, markers included (0: unknown).
        public var recordCount: UInt32
        /// The digest of the event ids it gave the stream (0: unknown, or an event had no id).
        public var idDigest: UInt64

        /// A last append as the stream table stores it.
        public init(batchPosition: UInt64, firstVersion: UInt64, eventCount: UInt32, recordCount: UInt32, idDigest: UInt64) {
            self.batchPosition = batchPosition
            self.firstVersion = firstVersion
            self.eventCount = eventCount
            self.recordCount = recordCount
            self.idDigest = idDigest
        }
    }

    /// The stream's name.
    public var name: String
    /// The version the stream's next event gets.
    public var nextVersion: UInt64
    /// Versions below it are hidden from stream reads (a truncation or a soft deletion); 0: none.
    public var truncateBefore: UInt64
    /// Whether the stream is deleted, softly or for good.
    public var deletion: StreamDeletion
    /// The position of the stream's first event still in the log, nil when none is.
    public var firstPosition: UInt64?
    /// The position of the stream's last event, nil when it has none.
    public var lastPosition: UInt64?
    /// The stream's last append, for recognising a retried one (nil: unknown).
    public var lastAppend: LastAppend?
    /// The stream's limits (`$limits`), in microseconds and events (0: none).
    public var maxAgeMicroseconds: UInt64
    /// The stream's max count (`StreamLimits.maxCount`; 0: none).
    public var maxCount: UInt64

    /// A stream's state, as `LogImporter` writes it back.
    public init(
        name: String, nextVersion: UInt64, truncateBefore: UInt64 = 0, deletion: StreamDeletion = .none,
        firstPosition: UInt64? = nil, lastPosition: UInt64? = nil, lastAppend: LastAppend? = nil,
        maxAgeMicroseconds: UInt64 = 0, maxCount: UInt64 = 0
    ) {
        self.name = name
        self.nextVersion = nextVersion
        self.truncateBefore = truncateBefore
        self.deletion = deletion
        self.firstPosition = firstPosition
        self.lastPosition = lastPosition
        self.lastAppend = lastAppend
        self.maxAgeMicroseconds = maxAgeMicroseconds
        self.maxCount = maxCount
    }
}
