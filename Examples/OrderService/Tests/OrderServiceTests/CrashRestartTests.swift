import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// kill -9 in the middle of a seeded run of commands from concurrent clients, then a restart on the same data
/// directory: every acknowledged (2xx) order and item is there, the read model catches up, and retries with the
/// same Idempotency-Key get the original body. `ORDER_SERVICE_SEED` replays a run.
@Suite(.serialized)
struct CrashRestartTests {
    /// What the clients sent and what the service acknowledged, per order.
    struct OrderRecord: Sendable {
        var id: String
        var customer: String
        var placeKey: String
        /// The 2xx body of the place command (nil: not acknowledged).
        var placedBody: [UInt8]?
        /// Acknowledged item lines in order, with the version each got, its key and its body.
        var items: [(sku: String, quantity: Int, version: Int, key: String, body: [UInt8])] = []
        /// The version acknowledged for the cancel (nil: none).
        var cancelledVersion: Int?
        /// A command whose answer never came (the service died under it): it may or may not have happened.
        var pending: Pending?

        enum Pending: Sendable {
            case place
            case item(sku: String, quantity: Int, key: String)
            case cancel
        }

        var ackedVersion: Int? {
            guard placedBody != nil else { return nil }
            return cancelledVersion ?? items.last?.version ?? 0
        }
    }

    static let workers = 4

    /// What the workers and the test share while the run goes.
    final class Run: Sendable {
        /// Commands the service acknowledged so far.
        let acknowledged = Atomic<Int>(0)
        /// Set once the service is killed: each worker ends after its current request.
        let stop = Atomic<Bool>(false)
        let records = Mutex<[[OrderRecord]]>(Array(repeating: [], count: CrashRestartTests.workers))
        /// Answers a worker did not expect (recorded here: a worker's thread is outside the test's task).
        let failures = Mutex<[String]>([])

        func fail(_ message: String) { failures.withLock { $0.append(message) } }
    }

    /// Rounds of: clients run seeded commands, SIGKILL mid-run, restart, check every order of every round so far.
    static let rounds = 3

    @Test func killNineMidRunLosesNothingAcknowledged() throws {
        let seed = ProcessInfo.processInfo.environment["ORDER_SERVICE_SEED"].flatMap(UInt64.init) ?? 14
        print("CrashRestartTests seed \(seed) (ORDER_SERVICE_SEED replays it)")
        var seeds = SplitMix64(seed: seed)
        let directory = TemporaryDirectory("crash")
        let service = ServiceProcess(dataDirectory: directory.sub("data"), outputPath: directory.sub("output.txt"))
        defer { service.kill() }
        var orders: [OrderRecord] = []
        for round in 0..<Self.rounds {
            let killAfter = Int(seeds.next() % 120) + 60
            try service.start()
            let run = Run()
            let port = service.port
            let group = DispatchGroup()
            for worker in 0..<Self.workers {
                let workerSeed = seeds.next()
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    let mine = Self.drive(worker: worker, round: round, seed: workerSeed, port: port, run: run)
                    run.records.withLock { $0[worker] = mine }
                }
            }
            // Kill once enough commands were acknowledged: the workers are mid-request then.
            let deadline = Date(timeIntervalSinceNow: 120)
            while run.acknowledged.load(ordering: .relaxed) < killAfter && Date() < deadline { usleep(1_000) }
            service.kill()
            run.stop.store(true, ordering: .relaxed)
            group.wait()
            let newOrders = run.records.withLock { $0.flatMap { $0 } }
            let ackedCount = run.acknowledged.load(ordering: .relaxed)
            #expect(ackedCount >= killAfter, "round \(round): \(ackedCount) commands acknowledged before the deadline: \(service.outputTail())")
            #expect(run.failures.withLock { $0 }.isEmpty, "round \(round): \(run.failures.withLock { $0 })")
            #expect(newOrders.contains { $0.placedBody != nil })
            orders += newOrders

            // After the restart: every order of every round so far, as acknowledged.
            try service.start()
            var checkedItems = 0
            for index in orders.indices {
                orders[index] = try Self.check(orders[index], service: service)
                checkedItems += orders[index].items.count
            }
            let unanswered = newOrders.filter { $0.pending != nil }.count
            print("CrashRestartTests round \(round): \(ackedCount) acknowledged commands, \(unanswered) unanswered at the kill; \(orders.count) orders, \(checkedItems) items checked after the restart")
            service.kill()
        }
    }

    /// One client's seeded commands, until `stop` or a transport error (the service died under a request).
    static func drive(worker: Int, round: Int, seed: UInt64, port: Int, run: Run) -> [OrderRecord] {
        var random = SplitMix64(seed: seed)
        var orders: [OrderRecord] = []
        var open: [Int] = []  // indexes of placed, not cancelled orders
        var step = 0
        while !run.stop.load(ordering: .relaxed) {
            step += 1
            let roll = random.next() % 100
            if open.isEmpty || roll < 30 {
                let id = "r\(round)-w\(worker)-o\(orders.count)"
                var order = OrderRecord(id: id, customer: "c-\(random.next() % 50)", placeKey: "place-\(id)")
                let body = JSONBody.make(["order_id": id, "customer": order.customer])
                do {
                    let answer = try HTTPClient.send(port: port, "POST", "/orders", headers: [("Idempotency-Key", order.placeKey)], body: body)
                    guard answer.status == 201 else { run.fail("place \(id): \(answer)"); return orders + [order] }
                    order.placedBody = answer.body
                    open.append(orders.count)
                    run.acknowledged.add(1, ordering: .relaxed)
                } catch {
                    order.pending = .place
                    return orders + [order]
                }
                orders.append(order)
            } else {
                let slot = Int(random.next() % UInt64(open.count))
                let index = open[slot]
                let version = orders[index].ackedVersion ?? 0
                if roll < 92 {
                    let sku = "S-\(random.next() % 20)"
                    let quantity = Int(random.next() % 9) + 1
                    let key = "item-\(orders[index].id)-\(step)"
                    do {
                        let answer = try HTTPClient.send(
                            port: port, "POST", "/orders/\(orders[index].id)/items",
                            headers: [("If-Match", String(version)), ("Idempotency-Key", key)],
                            body: JSONBody.make(["sku": sku, "quantity": quantity]))
                        guard answer.status == 200, let next = answer.json?["version"] as? Int, next == version + 1 else {
                            run.fail("item for \(orders[index].id) at \(version): \(answer)")
                            return orders
                        }
                        orders[index].items.append((sku, quantity, next, key, answer.body))
                        run.acknowledged.add(1, ordering: .relaxed)
                    } catch {
                        orders[index].pending = .item(sku: sku, quantity: quantity, key: key)
                        return orders
                    }
                } else {
                    do {
                        let answer = try HTTPClient.send(
                            port: port, "POST", "/orders/\(orders[index].id)/cancel", headers: [("If-Match", String(version))])
                        guard answer.status == 200, let next = answer.json?["version"] as? Int, next == version + 1 else {
                            run.fail("cancel \(orders[index].id) at \(version): \(answer)")
                            return orders
                        }
                        orders[index].cancelledVersion = next
                        open.remove(at: slot)
                        run.acknowledged.add(1, ordering: .relaxed)
                    } catch {
                        orders[index].pending = .cancel
                        return orders
                    }
                }
            }
        }
        return orders
    }

    /// After the restart: the read model holds every acknowledged line of `order` (and at most the one pending
    /// command beyond them), and the write side answers retries with the original bodies. Returns the order as
    /// the service now has it (the pending command settled, one more item added), for the next round's check.
    static func check(_ order: OrderRecord, service: ServiceProcess) throws -> OrderRecord {
        var settled = order
        settled.pending = nil
        let placeBody = JSONBody.make(["order_id": order.id, "customer": order.customer])
        guard let placedBody = order.placedBody, let acked = order.ackedVersion else {
            // A place that was never answered happened wholly or not at all: retrying it with its key is a
            // success either way (the original, or placed now), never a conflict.
            let retry = try service.send("POST", "/orders", headers: [("Idempotency-Key", order.placeKey)], body: placeBody)
            #expect([200, 201].contains(retry.status), "retry of the unanswered place of \(order.id): \(retry)")
            #expect(retry.json?["version"] as? Int == 0, "\(order.id): \(retry)")
            if retry.status == 201 || retry.status == 200 { settled.placedBody = retry.body }
            return settled
        }
        let shown = try ContractTests.readModel(service, order.id, atLeast: acked)
        let json = try #require(shown.json)
        let version = try #require(json["version"] as? Int)
        let items = try #require(json["items"] as? [[String: Any]])
        let status = json["status"] as? String
        #expect(json["customer"] as? String == order.customer, "\(order.id)")
        // Every acknowledged line, in order, at the front.
        #expect(items.count >= order.items.count, "\(order.id): \(items.count) items shown, \(order.items.count) acknowledged")
        for (offset, item) in order.items.enumerated() where offset < items.count {
            #expect(items[offset]["sku"] as? String == item.sku, "\(order.id) item \(offset)")
            #expect(items[offset]["quantity"] as? Int == item.quantity, "\(order.id) item \(offset)")
        }
        // Beyond them, at most the one command whose answer never came.
        switch order.pending {
        case .none:
            #expect(version == acked, "\(order.id): version \(version), acknowledged \(acked)")
            #expect(items.count == order.items.count, "\(order.id)")
        case .item(let sku, let quantity, let key):
            #expect(version == acked || version == acked + 1, "\(order.id): version \(version), acknowledged \(acked)")
            #expect(items.count == order.items.count + (version - acked), "\(order.id)")
            if version == acked + 1, let last = items.last {
                #expect(last["sku"] as? String == sku && last["quantity"] as? Int == quantity, "\(order.id)")
            }
            if version == acked + 1 {
                // Applied although unanswered: its retry gets the result it would have had.
                let again = try service.send(
                    "POST", "/orders/\(order.id)/items", headers: [("If-Match", String(acked)), ("Idempotency-Key", key)],
                    body: JSONBody.make(["sku": sku, "quantity": quantity]))
                #expect(again.status == 200 && again.json?["version"] as? Int == version, "\(order.id): \(again)")
                settled.items.append((sku, quantity, version, key, again.body))
            }
        case .cancel:
            #expect(version == acked || version == acked + 1, "\(order.id): version \(version), acknowledged \(acked)")
            #expect(items.count == order.items.count, "\(order.id)")
            if version == acked + 1 { settled.cancelledVersion = version }
        case .place:
            Issue.record("\(order.id): a pending place on a placed order")
        }
        let cancelled = order.cancelledVersion != nil || (order.pending.map { if case .cancel = $0 { true } else { false } } == true && version == acked + 1)
        #expect(status == (cancelled ? "cancelled" : "placed"), "\(order.id): \(status ?? "nil")")

        // Retries with the same keys get the original bodies, byte for byte.
        let retry = try service.send("POST", "/orders", headers: [("Idempotency-Key", order.placeKey)], body: placeBody)
        #expect([200, 201].contains(retry.status), "\(order.id): \(retry)")
        #expect(retry.body == placedBody, "\(order.id): \(retry.text) vs \(String(decoding: placedBody, as: UTF8.self))")
        if let item = order.items.last {
            let again = try service.send(
                "POST", "/orders/\(order.id)/items",
                headers: [("If-Match", String(item.version - 1)), ("Idempotency-Key", item.key)],
                body: JSONBody.make(["sku": item.sku, "quantity": item.quantity]))
            #expect(again.status == 200, "\(order.id): \(again)")
            #expect(again.body == item.body, "\(order.id): \(again.text)")
        }
        // The write side is where the read model is: the next command at its version succeeds (unless cancelled).
        if !cancelled {
            let key = "after-restart-\(order.id)-\(version)"
            let next = try service.send(
                "POST", "/orders/\(order.id)/items", headers: [("If-Match", String(version)), ("Idempotency-Key", key)],
                body: JSONBody.make(["sku": "after-restart", "quantity": 1]))
            #expect(next.status == 200 && next.json?["version"] as? Int == version + 1, "\(order.id): \(next)")
            if next.status == 200 { settled.items.append(("after-restart", 1, version + 1, key, next.body)) }
        }
        return settled
    }
}
