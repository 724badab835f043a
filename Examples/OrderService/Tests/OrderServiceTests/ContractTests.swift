import Foundation
import Testing

/// Every line of the HTTP contract (issue 14; README "The HTTP contract"), against the real binary on a
/// loopback port.
@Suite(.serialized)
struct ContractTests {
    /// Waits (up to `timeout` seconds) until the read model shows `id` at `version` or later; returns that answer.
    static func readModel(
        _ service: ServiceProcess, _ id: String, atLeast version: Int, timeout: Double = 30
    ) throws -> HTTPResult {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var last: HTTPResult?
        while Date() < deadline {
            let answer = try service.send("GET", "/orders/\(id)")
            last = answer
            if answer.status == 200, let seen = answer.json?["version"] as? Int, seen >= version { return answer }
            usleep(20_000)
        }
        throw ServiceProcessError(description: "the read model did not show \(id) at version \(version) within \(timeout) s; last: \(last.map(String.init(describing:)) ?? "none")")
    }

    static func place(_ service: ServiceProcess, _ id: String, customer: String = "c-1", key: String?) throws -> HTTPResult {
        try service.send(
            "POST", "/orders", headers: key.map { [("Idempotency-Key", $0)] } ?? [],
            body: JSONBody.make(["order_id": id, "customer": customer]))
    }

    static func addItem(_ service: ServiceProcess, _ id: String, sku: String, quantity: Int, ifMatch: String?, key: String? = nil) throws -> HTTPResult {
        var headers: [(String, String)] = []
        if let ifMatch { headers.append(("If-Match", ifMatch)) }
        if let key { headers.append(("Idempotency-Key", key)) }
        return try service.send("POST", "/orders/\(id)/items", headers: headers, body: JSONBody.make(["sku": sku, "quantity": quantity]))
    }

    static func cancel(_ service: ServiceProcess, _ id: String, ifMatch: String?) throws -> HTTPResult {
        try service.send("POST", "/orders/\(id)/cancel", headers: ifMatch.map { [("If-Match", $0)] } ?? [])
    }

    @Test func placeOrderIsIdempotentByKeyAndRefusesATakenOrderID() throws {
        let directory = TemporaryDirectory("place")
        let service = ServiceProcess(dataDirectory: directory.sub("data"), outputPath: directory.sub("output.txt"))
        try service.start()
        defer { service.kill() }

        let first = try Self.place(service, "o-1", key: "K-1")
        #expect(first.status == 201, "\(first)")
        #expect(first.headers["content-type"] == "application/json")
        #expect(first.json?["order_id"] as? String == "o-1")
        #expect(first.json?["version"] as? Int == 0)
        #expect(first.json?.count == 2, "exactly order_id and version: \(first)")

        // The same request, the same key: the same body.
        let again = try Self.place(service, "o-1", key: "K-1")
        #expect([200, 201].contains(again.status), "\(again)")
        #expect(again.body == first.body)

        // The same order id under another key (or none): 409.
        let otherKey = try Self.place(service, "o-1", key: "K-2")
        #expect(otherKey.status == 409, "\(otherKey)")
        #expect(otherKey.json?["error"] is String)
        let noKey = try Self.place(service, "o-1", key: nil)
        #expect(noKey.status == 409, "\(noKey)")

        // A key reused for a different request: 422, nothing placed.
        let reused = try Self.place(service, "o-2", key: "K-1")
        #expect(reused.status == 422, "\(reused)")
        #expect(try service.send("GET", "/orders/o-2").status == 404)

        // Without a key, an order is placed once.
        let keyless = try Self.place(service, "o-3", key: nil)
        #expect(keyless.status == 201, "\(keyless)")
        #expect(keyless.json?["version"] as? Int == 0)

        // The read model shows the order.
        let shown = try Self.readModel(service, "o-1", atLeast: 0)
        #expect(shown.json?["customer"] as? String == "c-1")
        #expect(shown.json?["status"] as? String == "placed")
        #expect((shown.json?["items"] as? [Any])?.isEmpty == true)
    }

    @Test func itemsAndCancelFollowIfMatch() throws {
        let directory = TemporaryDirectory("items")
        let service = ServiceProcess(dataDirectory: directory.sub("data"), outputPath: directory.sub("output.txt"))
        try service.start()
        defer { service.kill() }
        #expect(try Self.place(service, "o-1", key: "K-1").status == 201)

        let added = try Self.addItem(service, "o-1", sku: "A-1", quantity: 2, ifMatch: "0")
        #expect(added.status == 200, "\(added)")
        #expect(added.json?["version"] as? Int == 1)
        #expect(added.json?.count == 1, "exactly version: \(added)")

        // A stale version: 409 with the current one; nothing appended.
        let stale = try Self.addItem(service, "o-1", sku: "B-1", quantity: 1, ifMatch: "0")
        #expect(stale.status == 409, "\(stale)")
        #expect(stale.json?["version"] as? Int == 1)
        // The entity-tag form of If-Match works too.
        let quoted = try Self.addItem(service, "o-1", sku: "B-2", quantity: 3, ifMatch: "\"1\"")
        #expect(quoted.status == 200, "\(quoted)")
        #expect(quoted.json?["version"] as? Int == 2)

        // An unknown order: 404, for items and cancel.
        #expect(try Self.addItem(service, "nope", sku: "A-1", quantity: 1, ifMatch: "0").status == 404)
        #expect(try Self.cancel(service, "nope", ifMatch: "0").status == 404)
        // No If-Match: 428; a malformed one: 400.
        let missing = try Self.addItem(service, "o-1", sku: "A-1", quantity: 1, ifMatch: nil)
        #expect(missing.status == 428, "\(missing)")
        #expect(missing.json?["error"] is String)
        #expect(try Self.addItem(service, "o-1", sku: "A-1", quantity: 1, ifMatch: "two").status == 400)

        // Cancel: stale is 409 with the version, then 200 with the next version.
        let staleCancel = try Self.cancel(service, "o-1", ifMatch: "1")
        #expect(staleCancel.status == 409, "\(staleCancel)")
        #expect(staleCancel.json?["version"] as? Int == 2)
        let cancelled = try Self.cancel(service, "o-1", ifMatch: "2")
        #expect(cancelled.status == 200, "\(cancelled)")
        #expect(cancelled.json?["version"] as? Int == 3)
        // A cancelled order takes no item and no second cancel: 409, at its version.
        let afterCancel = try Self.addItem(service, "o-1", sku: "C-1", quantity: 1, ifMatch: "3")
        #expect(afterCancel.status == 409, "\(afterCancel)")
        #expect(afterCancel.json?["version"] as? Int == 3)
        #expect(try Self.cancel(service, "o-1", ifMatch: "3").status == 409)

        // The read model, fed by the projection, catches up with all of it.
        let shown = try Self.readModel(service, "o-1", atLeast: 3)
        let json = try #require(shown.json)
        #expect(Set(json.keys) == ["order_id", "customer", "status", "items", "version"])
        #expect(json["order_id"] as? String == "o-1")
        #expect(json["customer"] as? String == "c-1")
        #expect(json["status"] as? String == "cancelled")
        #expect(json["version"] as? Int == 3)
        let items = try #require(json["items"] as? [[String: Any]])
        #expect(items.count == 2)
        #expect(items.map { $0["sku"] as? String } == ["A-1", "B-2"])
        #expect(items.map { $0["quantity"] as? Int } == [2, 3])
        #expect(try service.send("GET", "/orders/unknown").status == 404)
    }

    @Test func badRequestsAreAnswered400WithAReason() throws {
        let directory = TemporaryDirectory("bad")
        let service = ServiceProcess(dataDirectory: directory.sub("data"), outputPath: directory.sub("output.txt"))
        try service.start()
        defer { service.kill() }
        #expect(try Self.place(service, "o-1", key: "K-1").status == 201)

        let cases: [(path: String, body: String, mentions: String)] = [
            ("/orders", "{not json", "JSON"),
            ("/orders", "", "JSON"),
            ("/orders", #"{"order_id": "o-9"}"#, "customer"),
            ("/orders", #"{"customer": "c-1"}"#, "order_id"),
            ("/orders", #"{"order_id": 7, "customer": "c-1"}"#, "order_id"),
            ("/orders", #"{"order_id": "", "customer": "c-1"}"#, "order_id"),
            ("/orders", #"{"order_id": "a/b", "customer": "c-1"}"#, "order_id"),
            ("/orders", #"[1, 2]"#, "body"),
            ("/orders/o-1/items", #"{"sku": "A-1"}"#, "quantity"),
            ("/orders/o-1/items", #"{"sku": "A-1", "quantity": "2"}"#, "quantity"),
            ("/orders/o-1/items", #"{"sku": "A-1", "quantity": 0}"#, "quantity"),
            ("/orders/o-1/items", #"{"quantity": 1}"#, "sku"),
        ]
        for (path, body, mentions) in cases {
            let answer = try service.send("POST", path, headers: [("Idempotency-Key", "K-bad"), ("If-Match", "0")], body: Array(body.utf8))
            #expect(answer.status == 400, "\(path) \(body): \(answer)")
            #expect(answer.headers["content-type"] == "application/json", "\(path) \(body)")
            let message = answer.json?["error"] as? String ?? ""
            #expect(message.contains(mentions), "\(path) \(body): \(message)")
        }
        // Nothing of it was appended: the order is still at version 0 and o-9 does not exist.
        #expect(try Self.addItem(service, "o-1", sku: "A-1", quantity: 1, ifMatch: "0").json?["version"] as? Int == 1)
        #expect(try service.send("GET", "/orders/o-9").status == 404)
        // A bad Idempotency-Key is a 400 too.
        let badKey = try Self.place(service, "o-8", key: String(repeating: "k", count: 300))
        #expect(badKey.status == 400, "\(badKey)")
    }

    @Test func healthAndMetrics() throws {
        let directory = TemporaryDirectory("metrics")
        let service = ServiceProcess(dataDirectory: directory.sub("data"), outputPath: directory.sub("output.txt"))
        try service.start()
        defer { service.kill() }
        #expect(try service.send("GET", "/health").status == 200)
        #expect(try Self.place(service, "o-1", key: "K-1").status == 201)
        // The log reports on a timer (the service sets 1 s): wait for the appended-events counter.
        let deadline = Date(timeIntervalSinceNow: 20)
        var text = ""
        while Date() < deadline {
            let metrics = try service.send("GET", "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
            text = metrics.text
            if text.contains("eventlog_appended_events_total") { break }
            usleep(200_000)
        }
        #expect(text.contains("eventlog_appended_events_total"), "\(text.prefix(2000))")
        #expect(text.contains("eventlog_open_duration"))
        #expect(text.contains("eventlog_sync_duration"))
        // The HTTP layer's own metrics (Hummingbird's MetricsMiddleware) are there too.
        #expect(text.contains("hb_requests"))
    }
}
