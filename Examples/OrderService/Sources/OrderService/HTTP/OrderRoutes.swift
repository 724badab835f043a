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
        let body: PlaceOrderRequest
        switch await decode(PlaceOrderRequest.self, request) {
        case .success(let decoded): body = decoded
        case .failure(let answer): return answer
        }
        if let problem = Validation.orderIDProblem(body.orderID) ?? Validation.textProblem(body.customer, field: "customer") {
            return .error(400, problem)
        }
        let key: String?
        switch idempotencyKey(request) {
        case .success(let value): key = value
        case .failure(let answer): return answer
        }
        do {
            switch try await commands.place(orderID: body.orderID, customer: body.customer, idempotencyKey: key) {
            case .done(let version):
                return JSONResponse(status: 201, PlacedBody(orderID: body.orderID, version: version))
            case .conflict(let current):
                return .error(409, "order \(body.orderID) exists", version: current)
            case .unknownOrder, .cancelled:
                return .error(500, "unexpected outcome of placing an order")
            case .keyReused(let original):
                return .error(422, "the Idempotency-Key was used for another request (\(original))")
            }
        } catch {
            return failure(error)
        }
    }

    /// `POST /orders/{id}/items` `{"sku", "quantity"}` with `If-Match` and an optional `Idempotency-Key`.
    static func addItem(_ request: Request, id: String, commands: OrderCommands) async -> JSONResponse {
        let body: AddItemRequest
        switch await decode(AddItemRequest.self, request) {
        case .success(let decoded): body = decoded
        case .failure(let answer): return answer
        }
        if let problem = Validation.textProblem(body.sku, field: "sku") ?? Validation.quantityProblem(body.quantity) {
            return .error(400, problem)
        }
        return await versioned(request, id: id) { expected, key in
            try await commands.addItem(orderID: id, sku: body.sku, quantity: body.quantity, expected: expected, idempotencyKey: key)
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
    static func versioned(
        _ request: Request, id: String, _ command: (UInt64, String?) async throws -> CommandOutcome
    ) async -> JSONResponse {
        if Validation.orderIDProblem(id) != nil { return .error(404, "no order \(id)") }
        guard let header = request.headers[.ifMatch] else {
            return .error(428, "the If-Match header must give the order's version (GET /orders/\(id) shows it)")
        }
        guard let expected = Validation.ifMatchVersion(header) else {
            return .error(400, "the If-Match header must be a version number, got \(header)")
        }
        let key: String?
        switch idempotencyKey(request) {
        case .success(let value): key = value
        case .failure(let answer): return answer
        }
        do {
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
                return .error(422, "the Idempotency-Key was used for another request (\(original))")
            }
        } catch {
            return failure(error)
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async -> Result<T, JSONResponse> {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: RequestDecoding.maxBodyBytes)
        } catch {
            return .failure(.error(413, "the body is larger than \(RequestDecoding.maxBodyBytes) bytes"))
        }
        return RequestDecoding.decode(type, from: Array(buffer.readableBytesView))
    }

    static func idempotencyKey(_ request: Request) -> Result<String?, JSONResponse> {
        guard let field = idempotencyKeyField, let key = request.headers[field] else { return .success(nil) }
        if let problem = Validation.idempotencyKeyProblem(key) { return .failure(.error(400, problem)) }
        return .success(key)
    }

    /// Nil only if HTTPTypes refused the name (it is a valid token).
    static let idempotencyKeyField = HTTPField.Name("Idempotency-Key")

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
