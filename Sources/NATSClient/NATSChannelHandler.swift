import NIOCore
import Synchronization

/// Lets the channel handler reach the connection, which exists only after INFO arrived.
final class ConnectionBox: Sendable {
    let connection = Mutex<NATSConnection?>(nil)
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
            box.connection.withLock { $0 }?.deliver(message)
        case .ping:
            var out = context.channel.allocator.buffer(capacity: 8)
            NATSProtocolEncoder.pong(into: &out)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        case .pong:
            box.connection.withLock { $0 }?.receivedPong()
        case .ok:
            break
        case .error(let message):
            box.connection.withLock { $0 }?.receivedServerError(message)
        }
    }

    private func fail(_ error: NATSError, context: ChannelHandlerContext) {
        box.connection.withLock { $0 }?.receivedServerError(error.description)
        infoPromise?.fail(error)
        infoPromise = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        infoPromise?.fail(NATSError.connectionClosed)
        infoPromise = nil
        box.connection.withLock { $0 }?.didClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
