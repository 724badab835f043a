import NIOCore
import NIOPosix
import Synchronization

/// A reply to a request, or why none came.
public typealias NATSReplyHandler = @Sendable (Result<NATSMessage, NATSError>) -> Void

/// One client connection to a NATS server, on swift-nio.
///
/// Threads: every method is safe to call from any thread. The blocking ones
/// (`connect`, `request`, `flush`) wait on a future and must not be called on
/// an event loop thread or from Swift concurrency's cooperative pool: call
/// them from a thread of your own. Message handlers run on the connection's
/// event loop: they must be short and never block.
///
/// Requests share one wildcard subscription, `_INBOX.<random>.*`; each
/// request's reply subject ends with its own token. When the connection
/// closes, every pending reply handler gets `.connectionClosed`; a closed
/// connection stays closed (make a new one to reconnect).
public final class NATSConnection: Sendable {
    /// The server's INFO at connect.
    public let info: NATSServerInfo
    let channel: any Channel
    let state: Mutex<ConnectionState>
    /// Reply subjects are `<inboxPrefix>.<token>`.
    public let inboxPrefix: String

    /// The subscription that carries every request's reply.
    static let replySID: UInt64 = 1

    struct ConnectionState {
        var nextSID: UInt64 = 2
        var nextToken: UInt64 = 1
        var subscriptions: [UInt64: @Sendable (NATSMessage) -> Void] = [:]
        var replies: [UInt64: NATSReplyHandler] = [:]
        var pongs: [EventLoopPromise<Void>] = []
        var closed = false
        var lastServerError: String?
    }

    init(info: NATSServerInfo, channel: any Channel, inboxPrefix: String) {
        self.info = info
        self.channel = channel
        self.inboxPrefix = inboxPrefix
        self.state = Mutex(ConnectionState())
    }

    /// Connects, reads INFO, sends CONNECT (verbose off, headers and
    /// no_responders on, and `credentials`: an NKey or a user JWT signs INFO's
    /// nonce), and waits for the PONG of a PING, so that a refused CONNECT
    /// fails here. Blocks up to `timeout` seconds.
    ///
    /// - Throws: `NATSError.authorizationRefused` when the server refuses the
    ///   credentials (or wants some and got none), `.tlsRequired` when its INFO
    ///   requires TLS, `.connectionFailed`, `.timeout` or `.connectionClosed`
    ///   for the rest. No error carries a secret of `credentials`.
    public static func connect(
        to url: NATSURL, name: String = "eventlog", credentials: NATSCredentials = .none, timeout: Double = 5,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(NATSError) -> NATSConnection {
        let infoPromise = group.next().makePromise(of: NATSServerInfo.self)
        let box = ConnectionBox()
        let handler = NATSChannelHandler(infoPromise: infoPromise, box: box)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(timeout * 1000)))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
        let channel: any Channel
        do {
            channel = try bootstrap.connect(host: url.host, port: url.port).wait()
        } catch {
            infoPromise.fail(NATSError.connectionFailed("\(url): \(error)"))
            throw .connectionFailed("\(url): \(error)")
        }
        let deadline = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            infoPromise.fail(NATSError.timeout("no INFO from \(url) within \(timeout) s"))
        }
        let info: NATSServerInfo
        do {
            info = try infoPromise.futureResult.wait()
            deadline.cancel()
        } catch {
            channel.close(promise: nil)
            throw (error as? NATSError) ?? .connectionFailed("\(url): \(error)")
        }
        guard !info.tlsRequired else {
            channel.close(promise: nil)
            throw .tlsRequired
        }
        guard info.headers else {
            channel.close(promise: nil)
            throw .connectionFailed("\(url): the server does not support headers (NATS 2.2 or later needed)")
        }
        let connection = NATSConnection(info: info, channel: channel, inboxPrefix: newInbox())
        box.attach(connection)
        var out = channel.allocator.buffer(capacity: 256)
        var connectOptions = NATSConnectOptions(name: name)
        credentials.apply(to: &connectOptions, nonce: info.nonce)
        NATSProtocolEncoder.connect(into: &out, json: connectOptions.json())
        do {
            try NATSProtocolEncoder.subscribe(into: &out, subject: connection.inboxPrefix + ".*", sid: replySID)
        } catch {
            channel.close(promise: nil)
            throw error
        }
        channel.writeAndFlush(out, promise: nil)
        do {
            try connection.flush(timeout: timeout)
        } catch {
            connection.close()
            // The server answers refused credentials with `-ERR 'Authorization Violation'` (or, for a user JWT,
            // `'User Authentication Expired'`, `'Authentication Timeout'`…) and closes the connection.
            if let message = connection.lastServerError, Self.isAuthorizationError(message) {
                throw .authorizationRefused(message)
            }
            throw error
        }
        return connection
    }

    /// True for a server's `-ERR` text about authorization or authentication.
    static func isAuthorizationError(_ message: String) -> Bool {
        let lowered = message.lowercased()
        return lowered.contains("authorization") || lowered.contains("authentication")
    }

    /// True once the connection closed (it never reopens).
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// The last `-ERR` the server sent, if any.
    public var lastServerError: String? { state.withLock { $0.lastServerError } }

    /// Closes the connection; pending replies fail with `.connectionClosed`.
    public func close() {
        channel.close(promise: nil)
        didClose()
    }

    // MARK: Sending

    /// Writes what `build` encodes as one write (one syscall for many
    /// messages), registering the reply handlers of its requests first.
    public func send(_ build: (inout NATSOutbound) throws(NATSError) -> Void) throws(NATSError) {
        var outbound = NATSOutbound(buffer: channel.allocator.buffer(capacity: 4096), connection: self)
        try build(&outbound)
        try write(outbound)
    }

    /// An empty batch of messages for `send(_:)`, for a caller that encodes while it reads (a relay filling it in a
    /// read callback) rather than inside `send`'s closure.
    public func makeOutbound(capacity: Int = 4096) -> NATSOutbound {
        NATSOutbound(buffer: channel.allocator.buffer(capacity: capacity), connection: self)
    }

    /// Writes `outbound` as one write, registering the reply handlers of its requests first.
    public func send(_ outbound: NATSOutbound) throws(NATSError) {
        try write(outbound)
    }

    /// A new unique inbox subject, `_INBOX.<random>`: subscribe to `<inbox>.*` to collect the replies of publishes
    /// whose reply subjects are `<inbox>.<token>`.
    public static func newInbox() -> String {
        "_INBOX.\(randomToken())"
    }

    func write(_ outbound: NATSOutbound) throws(NATSError) {
        if !outbound.replies.isEmpty {
            let closed = state.withLock { s -> Bool in
                if s.closed { return true }
                for (token, handler) in outbound.replies { s.replies[token] = handler }
                return false
            }
            if closed { throw .connectionClosed }
        } else if isClosed {
            throw .connectionClosed
        }
        guard outbound.buffer.readableBytes > 0 else { return }
        channel.writeAndFlush(outbound.buffer, promise: nil)
    }

    /// Takes `count` fresh reply tokens.
    func takeTokens(_ count: Int) -> UInt64 {
        state.withLock { s in
            let first = s.nextToken
            s.nextToken += UInt64(count)
            return first
        }
    }

    /// Publishes one message (no reply expected).
    public func publish(subject: String, headers: NATSHeaders? = nil, payload: [UInt8]) throws(NATSError) {
        try send { out throws(NATSError) in try out.publish(subject: subject, headers: headers, payload: payload) }
    }

    /// Subscribes `handler` (run on the event loop: keep it short) to `subject`; returns the subscription id.
    public func subscribe(subject: String, queue: String? = nil, handler: @escaping @Sendable (NATSMessage) -> Void) throws(NATSError) -> UInt64 {
        let sid = state.withLock { s in
            let sid = s.nextSID
            s.nextSID += 1
            s.subscriptions[sid] = handler
            return sid
        }
        var out = channel.allocator.buffer(capacity: 128)
        try NATSProtocolEncoder.subscribe(into: &out, subject: subject, queue: queue, sid: sid)
        try write(NATSOutbound(buffer: out, connection: self))
        return sid
    }

    /// Ends subscription `sid`: its handler is not called again, and
    /// `UNSUB` is sent (without waiting for the write). Does not block.
    public func unsubscribe(_ sid: UInt64) {
        _ = state.withLock { $0.subscriptions.removeValue(forKey: sid) }
        var out = channel.allocator.buffer(capacity: 32)
        NATSProtocolEncoder.unsubscribe(into: &out, sid: sid)
        channel.writeAndFlush(out, promise: nil)
    }

    // MARK: Blocking calls

    /// Sends a request and waits up to `timeout` seconds for its reply.
    /// A 503 status (nobody subscribed to `subject`) is `.noResponders`.
    public func request(subject: String, headers: NATSHeaders? = nil, payload: [UInt8], timeout: Double = 5) throws(NATSError) -> NATSMessage {
        let promise = channel.eventLoop.makePromise(of: NATSMessage.self)
        do {
            try send { out throws(NATSError) in
                try out.request(subject: subject, headers: headers, payload: payload) { result in
                    switch result {
                    case .success(let message) where message.status == 503: promise.fail(NATSError.noResponders(subject: subject))
                    case .success(let message): promise.succeed(message)
                    case .failure(let error): promise.fail(error)
                    }
                }
            }
        } catch {
            // A promise left unfulfilled traps in a debug build (a connection already closed, an invalid subject).
            promise.fail(error)
            throw error
        }
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            promise.fail(NATSError.timeout("no reply to \(subject) within \(timeout) s"))
        }
        defer { timer.cancel() }
        do {
            return try promise.futureResult.wait()
        } catch {
            throw (error as? NATSError) ?? .connectionClosed
        }
    }

    /// Sends PING and waits for the PONG: everything written before it reached the server and was processed.
    public func flush(timeout: Double = 5) throws(NATSError) {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let closed = state.withLock { s -> Bool in
            if s.closed { return true }
            s.pongs.append(promise)
            return false
        }
        if closed {
            // A promise left unfulfilled traps in a debug build: a server that refuses CONNECT may close first.
            promise.fail(NATSError.connectionClosed)
            throw .connectionClosed
        }
        var out = channel.allocator.buffer(capacity: 8)
        NATSProtocolEncoder.ping(into: &out)
        channel.writeAndFlush(out, promise: nil)
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            promise.fail(NATSError.timeout("no PONG within \(timeout) s"))
        }
        defer { timer.cancel() }
        do {
            try promise.futureResult.wait()
        } catch {
            throw (error as? NATSError) ?? .connectionClosed
        }
    }

    // MARK: From the channel handler (event loop)

    func deliver(_ message: NATSMessage) {
        if message.sid == Self.replySID {
            guard let dot = message.subject.utf8.lastIndex(of: UInt8(ascii: ".")),
                let token = UInt64(message.subject[message.subject.index(after: dot)...])
            else { return }
            let handler = state.withLock { $0.replies.removeValue(forKey: token) }
            handler?(.success(message))
            return
        }
        let handler = state.withLock { $0.subscriptions[message.sid] }
        handler?(message)
    }

    func receivedPong() {
        let promise = state.withLock { s -> EventLoopPromise<Void>? in s.pongs.isEmpty ? nil : s.pongs.removeFirst() }
        promise?.succeed(())
    }

    func receivedServerError(_ message: String) {
        state.withLock { $0.lastServerError = message }
    }

    func didClose() {
        let (replies, pongs) = state.withLock { s -> ([NATSReplyHandler], [EventLoopPromise<Void>]) in
            s.closed = true
            defer {
                s.replies.removeAll()
                s.pongs.removeAll()
            }
            return (Array(s.replies.values), s.pongs)
        }
        for handler in replies { handler(.failure(.connectionClosed)) }
        for promise in pongs { promise.fail(NATSError.connectionClosed) }
    }
}

/// 22 random characters for an inbox subject.
func randomToken() -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
    var generator = SystemRandomNumberGenerator()
    return String(decoding: (0..<22).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }, as: UTF8.self)
}
