import class Foundation.NSCondition
import struct Foundation.Date
import Synchronization

/// Fetches from a durable pull consumer: `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`
/// with `{"batch": N, "expires": ns}`, the messages arriving on a reply subject of its own.
///
/// One pull request is kept open at a time, and the next one is sent as soon
/// as the previous one has delivered its batch or ended, before the caller has
/// processed what it took: the server streams the next batch while the caller
/// works. At most two batches are buffered (`batch` messages per request, and
/// a new request only when fewer than `batch` are waiting).
///
/// Statuses end a request: 404 (no messages) and 408 (request expired) are
/// normal; 409 (for example the consumer was deleted, or too many pull
/// requests wait) ends it too and is kept in `lastStatus`.
///
/// Threads: `next` and `ack` block; call them from one thread of your own.
public final class JetStreamPuller: @unchecked Sendable {
    /// The JetStream API (and connection) the pull requests go through.
    public let jetStream: JetStream
    /// The JetStream stream pulled from.
    public let stream: String
    /// The durable pull consumer's name (it must exist).
    public let durable: String
    /// Messages asked for by one pull request (at least 1).
    public let batch: Int
    /// How long the server keeps a pull request open, in seconds.
    public let expiresSeconds: Double
    private let replySubject: String
    private let sid: UInt64
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [JetStreamMessage] = []
    private var remaining = 0
    private var requestOpen = false
    private var deliveredByRequest = 0
    private var failure: NATSError?
    private var emptyReported = false
    /// The last status that ended a request (404, 408, 409 ...) and its description.
    public private(set) var lastStatus: (code: Int, description: String)?
    /// True when the last request ended (404 or 408) without delivering anything: the consumer had nothing.
    public private(set) var lastRequestWasEmpty = false

    /// A puller of `durable` on `stream`: subscribes to its reply subject
    /// (no request is sent until `next`). `batch` below 1 counts as 1.
    ///
    /// - Throws: `NATSError.connectionClosed` (or another write failure)
    ///   when the subscription cannot be sent.
    public init(jetStream: JetStream, stream: String, durable: String, batch: Int = 1000, expiresSeconds: Double = 1) throws(NATSError) {
        self.jetStream = jetStream
        self.stream = stream
        self.durable = durable
        self.batch = max(1, batch)
        self.expiresSeconds = expiresSeconds
        let connection = jetStream.connection
        replySubject = "\(connection.inboxPrefix)-pull.\(randomToken())"
        let box = WeakPuller()
        sid = try connection.subscribe(subject: replySubject) { message in box.puller?.received(message) }
        box.puller = self
    }

    /// Up to `maxCount` messages, waiting up to `timeout` seconds for the first.
    /// Empty when none came (see `lastRequestWasEmpty`).
    public func next(maxCount: Int, timeout: Double) throws(NATSError) -> [JetStreamMessage] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let failure { throw failure }
            if jetStream.connection.isClosed { throw .connectionClosed }
            if !requestOpen && queue.isEmpty && lastRequestWasEmpty && !emptyReported {
                emptyReported = true
                return []
            }
            if !requestOpen && queue.count < batch { try sendRequest() }
            if !queue.isEmpty {
                let taken = Array(queue.prefix(maxCount))
                queue.removeFirst(taken.count)
                if !requestOpen && queue.count < batch { try sendRequest() }
                return taken
            }
            if !condition.wait(until: deadline) { return [] }
        }
    }

    /// Acknowledges each message (`+ACK` to its reply subject), all in one write.
    public func ack(_ messages: [JetStreamMessage]) throws(NATSError) {
        let ack = Array("+ACK".utf8)
        try jetStream.connection.send { out throws(NATSError) in
            for message in messages {
                try out.publish(subject: message.ackSubject, payload: ack)
            }
        }
    }

    /// Stops receiving (the open request's messages are left to their ack wait).
    public func close() {
        jetStream.connection.unsubscribe(sid)
    }

    // Called with `condition` locked.
    private func sendRequest() throws(NATSError) {
        let body = Array(#"{"batch":\#(batch),"expires":\#(Int64(expiresSeconds * 1e9))}"#.utf8)
        let subject = "\(JetStream.apiPrefix)CONSUMER.MSG.NEXT.\(stream).\(durable)"
        try jetStream.connection.send { out throws(NATSError) in
            try out.publish(subject: subject, replyTo: replySubject, payload: body)
        }
        requestOpen = true
        remaining = batch
        deliveredByRequest = 0
        lastRequestWasEmpty = false
        emptyReported = false
    }

    /// On the event loop.
    private func received(_ message: NATSMessage) {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        if let status = message.status {
            switch status {
            case 100:
                return  // an idle heartbeat
            case 404, 408:
                lastRequestWasEmpty = deliveredByRequest == 0
            case 503:
                failure = .noResponders(subject: "\(JetStream.apiPrefix)CONSUMER.MSG.NEXT.\(stream).\(durable)")
            default:
                let description = message.headers?.statusDescription ?? ""
                if description.lowercased().contains("consumer deleted") {
                    failure = .jetStream(code: status, errorCode: 0, description: description)
                }
            }
            lastStatus = (status, message.headers?.statusDescription ?? "")
            requestOpen = false
            return
        }
        do {
            queue.append(try JetStreamMessage(message))
        } catch {
            failure = error
            return
        }
        deliveredByRequest += 1
        remaining -= 1
        if remaining <= 0 { requestOpen = false }
    }
}

/// Breaks the cycle connection → subscription handler → puller.
private final class WeakPuller: @unchecked Sendable {
    weak var puller: JetStreamPuller?
}
