/// Which way a stream read goes.
public enum ReadDirection: Sendable {
    /// From the stream's lowest readable version up.
    case forward
    /// From the stream's last version down (`maxCount: 1` reads the last event).
    case backward
}
