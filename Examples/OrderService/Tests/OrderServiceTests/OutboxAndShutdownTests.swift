import EventLog
import Foundation
import NATSClient
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The outbox (integration events appended with the domain events, relayed to a second log or to NATS
/// JetStream) and the graceful shutdown (SIGTERM: in-flight requests finish, the log closes cleanly).
@Suite(.serialized)
struct OutboxAndShutdownTests {
    /// The events of stream `delivered` in the log `DIR/outbox-delivered`, read by a read-only open.
    static func delivered(_ dataDirectory: String) throws -> [Event] {
        var options = LogOptions()
        options.readOnly = true
        options.logger.logLevel = .warning
        let log = try Log.open(at: dataDirectory + "/outbox-delivered", options: options)
        defer { try? log.close() }
        return try log.events(inStream: "delivered")
    }

    @Test func theOutboxReachesTheDeliveredLogOnceEach() throws {
        let directory = TemporaryDirectory("outbox")
        let data = directory.sub("data")
        let service = ServiceProcess(dataDirectory: data, outputPath: directory.sub("output.txt"))
        try service.start()
        for n in 0..<3 {
            #expect(try ContractTests.place(service, "o-\(n)", customer: "c-\(n)", key: "K-\(n)").status == 201)
        }
        // A retried place appends nothing: no second integration event.
        #expect(try ContractTests.place(service, "o-0", customer: "c-0", key: "K-0").status == 201)
        #expect(try ContractTests.addItem(service, "o-1", sku: "A-1", quantity: 2, ifMatch: "0").status == 200)
        #expect(try ContractTests.cancel(service, "o-1", ifMatch: "1").status == 200)
        // Stopped gracefully (the relay finishes its round, the logs close), then restarted and stopped again:
        // the relay resumes from its checkpoint in the delivered log and delivers nothing twice.
        #expect(service.terminate() == 0, "\(service.outputTail())")
        try service.start()
        let health = try service.send("GET", "/health")
        #expect(health.json?["previous_shutdown"] as? String == "clean", "\(health)")
        #expect(try ContractTests.place(service, "o-3", customer: "c-3", key: "K-3").status == 201)
        let deadline = Date(timeIntervalSinceNow: 20)
        var events: [Event] = []
        while Date() < deadline {
            // The relay runs beside the reads; a read-only open sees what it appended.
            events = (try? Self.delivered(data)) ?? []
            if events.count >= 5 { break }
            usleep(50_000)
        }
        #expect(service.terminate() == 0, "\(service.outputTail())")
        events = try Self.delivered(data)
        #expect(events.map(\.type) == [
            "orders.OrderPlaced.v1", "orders.OrderPlaced.v1", "orders.OrderPlaced.v1", "orders.OrderCancelled.v1", "orders.OrderPlaced.v1",
        ])
        let payloads = events.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.data))) as? [String: Any] }
        #expect(payloads.map { $0["order_id"] as? String } == ["o-0", "o-1", "o-2", "o-1", "o-3"])
        #expect(payloads[1]["customer"] as? String == "c-1")
        #expect(payloads[3]["items"] as? Int == 1)
        // Each message keeps its id (unique) and its contract's schema version and content type.
        #expect(Set(events.compactMap(\.metadata.eventID)).count == 5)
        #expect(events.allSatisfy { $0.metadata.schemaVersion == 1 && $0.metadata.contentType == "application/json" })
    }

    @Test func sigtermFinishesInFlightRequestsAndClosesTheLog() throws {
        let directory = TemporaryDirectory("shutdown")
        let service = ServiceProcess(dataDirectory: directory.sub("data"), outputPath: directory.sub("output.txt"))
        try service.start()
        let port = service.port
        // Clients keep placing orders while the service is told to stop. A request is either answered 201 (and
        // survives), or never served (refused, or cut before an answer once the server stopped): an answer other
        // than 201 would be a request the shutdown broke (the log closed under it).
        let placed = Mutex<[String: [UInt8]]>([:])
        let otherAnswers = Mutex<[String]>([])
        let group = DispatchGroup()
        let stop = Atomic<Bool>(false)
        for worker in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    let id = "s\(worker)-\(n)"
                    n += 1
                    do {
                        let answer = try HTTPClient.send(
                            port: port, "POST", "/orders", headers: [("Idempotency-Key", "k-\(id)")],
                            body: JSONBody.make(["order_id": id, "customer": "c"]), timeout: 10)
                        if answer.status == 201 {
                            placed.withLock { $0[id] = answer.body }
                        } else {
                            otherAnswers.withLock { $0.append("\(id): \(answer)") }
                        }
                    } catch {
                        usleep(5_000)
                    }
                }
            }
        }
        let deadline = Date(timeIntervalSinceNow: 60)
        while placed.withLock({ $0.count }) < 20 && Date() < deadline { usleep(1_000) }
        let status = service.terminate()
        stop.store(true, ordering: .relaxed)
        group.wait()
        #expect(otherAnswers.withLock { $0 }.isEmpty, "\(otherAnswers.withLock { $0 })")
        #expect(status == 0, "order-service exited with \(status.map(String.init) ?? "a signal") after SIGTERM:\n\(service.outputTail())")

        try service.start()
        defer { service.kill() }
        let health = try service.send("GET", "/health")
        #expect(health.json?["previous_shutdown"] as? String == "clean", "the log was not closed cleanly: \(health)")
        let acknowledged = placed.withLock { $0 }
        for (id, body) in acknowledged {
            let retry = try service.send("POST", "/orders", headers: [("Idempotency-Key", "k-\(id)")], body: JSONBody.make(["order_id": id, "customer": "c"]))
            #expect(retry.body == body, "\(id): \(retry)")
            #expect(try ContractTests.readModel(service, id, atLeast: 0).json?["order_id"] as? String == id)
        }
    }

    @Test(.enabled(if: NATSServer.binary != nil, "nats-server not found (apt-get install nats-server)"))
    func theOutboxReachesJetStream() throws {
        let directory = TemporaryDirectory("nats")
        let nats = try NATSServer(storeDirectory: directory.sub("nats"))
        try nats.start()
        defer { nats.kill() }
        let service = ServiceProcess(
            dataDirectory: directory.sub("data"), outputPath: directory.sub("output.txt"),
            extraArguments: ["--nats-url", "nats://127.0.0.1:\(nats.port)"])
        try service.start()
        defer { service.kill() }
        #expect(try ContractTests.place(service, "o-1", customer: "c-1", key: "K-1").status == 201)
        #expect(try ContractTests.cancel(service, "o-1", ifMatch: "0").status == 200)
        #expect(try ContractTests.place(service, "o-2", customer: "c-2", key: "K-2").status == 201)

        let messages = try nats.messages(stream: "ORDERS", expected: 3)
        #expect(messages.map { $0.headers?["EventLog-Type"] } == ["orders.OrderPlaced.v1", "orders.OrderCancelled.v1", "orders.OrderPlaced.v1"])
        #expect(messages.allSatisfy { $0.subject.hasPrefix("orders.") }, "\(messages.map(\.subject))")
        let payloads = messages.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.payload))) as? [String: Any] }
        #expect(payloads.map { $0["order_id"] as? String } == ["o-1", "o-1", "o-2"])
        #expect(Set(messages.compactMap { $0.headers?["Nats-Msg-Id"] }).count == 3)
    }
}

/// A real `nats-server -js` on a free loopback port for one test (killed at the end).
final class NATSServer: @unchecked Sendable {
    static let binary: String? = {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["NATS_SERVER"] { candidates.append(override) }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(directory)/nats-server")
        }
        candidates += ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    let port: Int
    let storeDirectory: String
    private var process: Process?

    init(storeDirectory: String) throws {
        self.storeDirectory = storeDirectory
        port = try ServiceProcess.freePort()
    }

    deinit { kill() }

    var url: NATSURL { NATSURL(host: "127.0.0.1", port: port) }

    func start() throws {
        guard let binary = Self.binary else { throw ServiceProcessError(description: "no nats-server") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDirectory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline {
            if let connection = try? NATSConnection.connect(to: url, timeout: 1) {
                defer { connection.close() }
                if connection.info.jetStream { return }
            }
            usleep(20_000)
        }
        throw ServiceProcessError(description: "nats-server on port \(port) did not start within 10 s")
    }

    func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Every message of `stream` (at least `expected`, waiting up to `timeout` seconds), in stream order.
    func messages(stream: String, expected: Int, timeout: Double = 20) throws -> [JetStreamMessage] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var messages: [JetStreamMessage] = []
        while Date() < deadline {
            let connection = try NATSConnection.connect(to: url)
            defer { connection.close() }
            let jetStream = JetStream(connection: connection)
            guard try jetStream.streamInfo(stream) != nil else {
                usleep(100_000)
                continue
            }
            let durable = "check\(UInt32.random(in: 0...UInt32.max))"
            _ = try jetStream.createConsumer(stream: stream, JetStreamConsumerConfig(durableName: durable))
            defer { try? jetStream.deleteConsumer(stream: stream, durable: durable) }
            let puller = try JetStreamPuller(jetStream: jetStream, stream: stream, durable: durable, batch: 100, expiresSeconds: 0.3)
            defer { puller.close() }
            messages = []
            for _ in 0..<10 {
                messages += try puller.next(maxCount: 100, timeout: 0.5)
                if messages.count >= expected { break }
            }
            if messages.count >= expected { break }
            usleep(200_000)
        }
        var seen = Set<UInt64>()
        return messages.filter { seen.insert($0.streamSequence).inserted }.sorted { $0.streamSequence < $1.streamSequence }
    }
}
