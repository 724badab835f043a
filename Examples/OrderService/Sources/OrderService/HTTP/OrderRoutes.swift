import Foundation
import Hummingbird
import Prometheus

/// The HTTP contract (README.md of this package, "The HTTP contract"): parses and checks each request, hands
/// the command to `OrderCommands` or the query to the read model, and turns the outcome into a status and a
/// JSON body. Nothing here touches the log.
enum OrderRoutes {
    static func router(
        commands: OrderCommands, readModel: OrderReadModel, registry: PrometheusCollectorRegistry, health: @escaping @Sendable () -> HealthBody
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MetricsMiddleware())

        router.post("orders") { request, _ -> Response in
            await placeOrder(request, commands: commands).response
        }
        router.post("orders/:id/items") { request, context -> Response in
            await addItem(request, id: context.parameters.get("id") ?? "", commands: commands).response
        }
        router.post("orders/:id/cancel") { request, context -> Response in
            await cancel(request, id: context.parameters.get("id") ?? "", commands: commands).response
        }
        router.get("orders/:id") { _, context -> Response in
            let id = context.parameters.get("id") ?? ""
            guard let order = readModel.order(id) else { return JSONResponse.error(404, "no order \(id)").response }
            return JSONResponse(status: 200, order).response
        }
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("health") { _, _ -> Response in
            JSONResponse(status: 200, health()).response
        }
        return router
    }

    /// `POST /orders` `{"order_id", "customer"}` with an optional `Idempotency-Key`.
    static func placeOrder(_ request: Request, commands: OrderCommands) async -> JSONResponse {
        do {
            let body = try await decode(PlaceOrderRequest.self, request)
            if let problem = Validation.orderIDProblem(body.orderID) ?? Validation.textProblem(body.customer, field: "customer") {
                throw RequestRefusal(400, problem)
            }
            let key = try idempotencyKey(request)
            switch try await commands.place(orderID: body.orderID, customer: body.customer, idempotencyKey: key) {
            case .done(let version):
                return JSONResponse(status: 201, PlacedBody(orderID: body.orderID, version: version))
            case .conflict(let current):
                return .error(409, "order \(body.orderID) exists", version: current)
            case .keyReused(let original):
                return .error(422, "the Idempotency-Key was used for a command on order \(original)")
            case .unknownOrder, .cancelled:
                return .error(500, "placing an order cannot end so")
            }
        } catch let refusal as RequestRefusal {
            return refusal.response
        } catch {
            return failure(error)
        }
    }

    /// `POST /orders/{id}/items` `{"sku", "quantity"}` with `If-Match` and an optional `Idempotency-Key`.
    static func addItem(_ request: Request, id: String, commands: OrderCommands) async -> JSONResponse {
        await versioned(request, id: id) { expected, key in
            let body = try await decode(AddItemRequest.self, request)
            if let problem = Validation.textProblem(body.sku, field: "sku") ?? Validation.quantityProblem(body.quantity) {
                throw RequestRefusal(400, problem)
            }
            return try await commands.addItem(orderID: id, sku: body.sku, quantity: body.quantity, expected: expected, idempotencyKey: key)
        }
    }

    /// `POST /orders/{id}/cancel` with `If-Match` and an optional `Idempotency-Key` (no body).
    static func cancel(_ request: Request, id: String, commands: OrderCommands) async -> JSONResponse {
        await versioned(request, id: id) { expected, key in
            try await commands.cancel(orderID: id, expected: expected, idempotencyKey: key)
        }
    }

    /// A command on an existing order at the version `If-Match` names: 200 `{"version"}`, 404 for an unknown
    /// order, 409 with the current version for a stale one (or a cancelled order), 428 without `If-Match`.
    /// The headers are checked first, then the body (by `command`), then the rules of the order.
    static func versioned(
        _ request: Request, id: String, _ command: (UInt64, String?) async throws -> CommandOutcome
    ) async -> JSONResponse {
        do {
            let expected = try ifMatch(request, id: id)
            let key = try idempotencyKey(request)
            if Validation.orderIDProblem(id) != nil { return .error(404, "no order \(id)") }
            switch try await command(expected, key) {
            case .done(let version):
                return JSONResponse(status: 200, VersionBody(version: version))
            case .conflict(nil), .unknownOrder:
                return .error(404, "no order \(id)")
            case .conflict(let current?):
                return .error(409, "order \(id) is at version \(current), not \(expected)", version: current)
            case .cancelled(let version):
                return .error(409, "order \(id) is cancelled", version: version)
            case .keyReused(let original):
                return .error(422, "the Idempotency-Key was used for a command on order \(original)")
            }
        } catch let refusal as RequestRefusal {
            return refusal.response
        } catch {
            return failure(error)
        }
    }

    /// The request's JSON body as `T`. Throws `RequestRefusal`: 413 past `RequestDecoding.maxBodyBytes`, 400
    /// for what does not decode.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: RequestDecoding.maxBodyBytes)
        } catch {
            throw RequestRefusal(413, "the body is larger than \(RequestDecoding.maxBodyBytes) bytes")
        }
        return try RequestDecoding.decode(type, from: Array(buffer.readableBytesView))
    }

    /// The version `If-Match` names. Throws `RequestRefusal`: 428 without the header, 400 for a malformed one.
    static func ifMatch(_ request: Request, id: String) throws(RequestRefusal) -> UInt64 {
        guard let header = request.headers[.ifMatch] else {
            throw RequestRefusal(428, "the If-Match header must give the order's version (GET /orders/\(id) shows it)")
        }
        guard let version = Validation.ifMatchVersion(header) else {
            throw RequestRefusal(400, "the If-Match header must be a version number, got \(header)")
        }
        return version
    }

    /// The `Idempotency-Key` header (nil when absent). Throws `RequestRefusal` (400) for a malformed one.
    static func idempotencyKey(_ request: Request) throws(RequestRefusal) -> String? {
        guard let field = idempotencyKeyField, let key = request.headers[field] else { return nil }
        if let problem = Validation.idempotencyKeyProblem(key) { throw RequestRefusal(400, problem) }
        return key
    }

    /// Nil only if HTTPTypes refused the name (it is a valid token).
    static let idempotencyKeyField = HTTPFields.Element.Name("Idempotency-Key")

    /// A failure the service did not expect (the log refused the append: a full disk, a failed sync): 503 with
    /// the reason. Nothing is acknowledged; a failed sync may still leave the command in the log, so a client
    /// retries with the same Idempotency-Key.
    static func failure(_ error: any Error) -> JSONResponse {
        .error(503, "the command failed (retry with the same Idempotency-Key): \(error)")
    }
}

/// `201` of `POST /orders`.
struct PlacedBody: Codable, Sendable {
    var orderID: String
    var version: UInt64

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case version
    }
}

/// `200` of the commands on an order.
struct VersionBody: Codable, Sendable {
    var version: UInt64
}

/// `GET /health`: the service is up; how its log was found at start (`clean`, `unclean`, `new log`).
struct HealthBody: Codable, Sendable {
    var status: String
    var previousShutdown: String

    enum CodingKeys: String, CodingKey {
        case status
        case previousShutdown = "previous_shutdown"
    }
}
