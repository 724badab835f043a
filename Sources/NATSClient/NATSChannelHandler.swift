import NIOCore
import Synchronization

/// Lets the channel handler reach the connection, which exists only after INFO arrived. What happens before it is
/// attached (an `-ERR` and the close that follow INFO at once) is kept and handed to it by `attach`.
final class ConnectionBox: Sendable {
    private struct State {
        var connection: NATSConnection?
        var earlyServerError: String?
        var closedEarly = false
    }

    private let state = Mutex(State())

    /// The connection, once attached.
    var connection: NATSConnection? { state.withLock { $0.connection } }

    /// Attaches `connection` and gives it what came before: the last `-ERR`, and the close.
    func attach(_ connection: NATSConnection) {
        let (error, closed) = state.withLock { s in
            s.connection = connection
            return (s.earlyServerError, s.closedEarly)
        }
        if let error { connection.receivedServerError(error) }
        if closed { connection.didClose() }
    }

    /// A server error, for the connection or, before it is attached, kept for it.
    func receivedServerError(_ message: String) {
        let connection = state.withLock { s in
            if s.connection == nil { s.earlyServerError = message }
            return s.connection
        }
        connection?.receivedServerError(message)
    }

    /// The channel closed: the connection learns it now or when attached.
    func didClose() {
        let connection = state.withLock { s in
            if s.connection == nil { s.closedEarly = true }
            return s.connection
        }
        connection?.didClose()
    }
}

/// Parses what the server sends and hands it to the connection; answers PING.
final class NATSChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var parser = NATSProtocolParser()
    private var infoPromise: EventLoopPromise<NATSServerInfo>?
    private let box: ConnectionBox

    init(infoPromise: EventLoopPromise<NATSServerInfo>, box: ConnectionBox) {
        self.infoPromise = infoPromise
        self.box = box
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        do {
            while let operation = try parser.next() {
                handle(operation, context: context)
            }
        } catch {
            fail(error, context: context)
        }
    }

    private func handle(_ operation: NATSServerOperation, context: ChannelHandlerContext) {
        switch operation {
        case .info(let json):
            do {
                let info = try NATSServerInfo.decode(json)
                parser.maxPayload = info.maxPayload
                if let promise = infoPromise {
                    infoPromise = nil
                    promise.succeed(info)
                }
            } catch {
                fail(error, context: context)
            }
        case .message(let message):
            box.connection?.deliver(message)
        case .ping:
            var out = context.channel.allocator.buffer(capacity: 8)
            NATSProtocolEncoder.pong(into: &out)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        case .pong:
            box.connection?.receivedPong()
        case .ok:
            break
        case .error(let message):
            box.receivedServerError(message)
        }
    }

    private func fail(_ error: NATSError, context: ChannelHandlerContext) {
        box.receivedServerError(error.description)
        infoPromise?.fail(error)
        infoPromise = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        infoPromise?.fail(NATSError.connectionClosed)
        infoPromise = nil
        box.didClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
