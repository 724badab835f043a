/// Which way a stream read goes.
public enum ReadDirection: Sendable {
    case forward, backward
}
