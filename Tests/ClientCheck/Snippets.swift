// Generated from README.md and Sources/EventLog/EventLog.docc by scripts/readme-snippets.py --write: do not edit.
import EventLog
import Foundation
import Logging
import ServiceLifecycle

// README.md, Swift snippet 1
func readmeSnippet1() throws {
    let log = try Log.open(at: "/var/lib/orders/events", options: LogOptions(durability: .always))

    // One atomic batch: an aggregate's events and the outbox message they cause.
    let positions = try log.append([
        NewEvent(stream: "order-42", type: "OrderPlaced", data: Array(#"{"total":99.5}"#.utf8),
                 metadata: EventMetadata(eventID: UUID(), schemaVersion: 1, contentType: "application/json",
                                         correlationID: "checkout-7")),
        NewEvent(stream: "outbox", type: "SendConfirmation", data: Array(#"{"order":"order-42"}"#.utf8)),
    ])

    // Zero-copy read: each EventView points into the mapped segment, valid inside the closure.
    try log.read(from: positions.lowerBound) { event in
        print(event.position, event.stream, event.type, event.data.count)
    }

    // Owned reads, point reads, time lookups.
    let first = try log.event(at: 0)
    let sinceYesterday = try log.position(atOrAfter: currentTimestamp() - 86_400_000_000)
    print(first.type, sinceYesterday)

    try log.close()  // writes the clean-shutdown marker: the next open skips recovery
}

// README.md, Swift snippet 2
func readmeSnippet2() async throws {
    var options = LogOptions(durability: .always)
    options.logger = logger
    let log = try Log.open(at: "/var/lib/orders/events", options: options)
    let group = ServiceGroup(services: [LogService(log: log), server], gracefulShutdownSignals: [.sigterm], logger: logger)
    try await group.run()
}

// README.md, Swift snippet 3
func readmeSnippet3(log: Log) throws {
    try log.appendBatch { batch in
        batch.prefetchStreams(count: orders.count) { orders[$0].streamBytes }
        for order in orders {
            try batch.append(stream: order.streamBytes, type: order.typeBytes, data: order.payloadBytes)
        }
    }
}

// README.md, Swift snippet 4
func readmeSnippet4(log: Log) throws {
    var order = Order()
    try log.readStream("order-42") { event in order.apply(event) }     // versions ascending; .backward too

    do {
        try log.append(to: "order-42", expectedVersion: order.version.map { .exact($0) } ?? .noStream, [
            NewEvent(stream: "order-42", type: "ItemAdded", data: item, metadata: EventMetadata(eventID: commandID)),
        ])
    } catch EventLogError.wrongExpectedVersion(let stream, _, let actual) {
        // Someone else appended to the stream first: reload from `actual` and decide again.
        print("\(stream) is at version \(actual.map(String.init) ?? "none")")
    }
}

// README.md, Swift snippet 5
func readmeSnippet5(log: Log) async throws {
    // A projection: resumes after its last commit, processes, commits (at least once).
    let subscription = try log.subscribe(cursor: "orders-projection", autoCommit: AutoCommit(events: 1000, interval: .milliseconds(500)))
    while running {
        try subscription.poll(maxCount: 1024, timeout: .seconds(1)) { event in projection.apply(event) }  // woken by appends
    }

    // Or as an AsyncSequence, bounded: it reads only as fast as you consume.
    for try await event in try log.liveEvents(from: .end, filter: EventFilter(streamPrefix: "order-")) { projection.apply(event) }

    // Competing consumers: each event to one worker at a time, acknowledged individually.
    let group = try log.consumerGroup("mailer", options: ConsumerGroupOptions(maxDeliveries: 5, ackTimeout: .seconds(30)))
    for delivery in try group.receive(maxCount: 10, timeout: .seconds(1)) {
        do { try send(delivery.event); try group.ack(delivery.event.position) }
        catch { try group.nack(delivery.event.position) }   // redelivered; parked after 5 deliveries
    }
    print(group.parked())   // dead letters; group.replayParked() hands them out again
}

// README.md, Swift snippet 6
func readmeSnippet6(log: Log) throws {
    try log.updateSettings(LogSettings(retainAge: .seconds(7 * 86_400), retainBytes: 10 << 30, retainCursors: ["relay"]))
    let result = try log.compact()          // now; a writer also runs it every LogOptions.maintenanceInterval (60 s)
    print(result.startPosition, result.bytesBefore - result.bytesAfter, result.heldBackBy ?? "")
}

// README.md, Swift snippet 7
func readmeSnippet7(log: Log) throws {
    try log.append([
        NewEvent(stream: "order-42", type: "OrderPlaced", data: placed),
        NewEvent(stream: "outbox", type: "SendOrderConfirmation", data: message,
                 metadata: EventMetadata(correlationID: "order-42")),
    ], expecting: ["order-42": .noStream])

    // The relay reads what it has not delivered yet and delivers it at least once.
    try log.readStream("outbox", from: lastDelivered + 1) { message in deliver(message) }
}

// README.md, Swift snippet 8
func readmeSnippet8() async throws {
    let log = try await AsyncLog.open(at: "/var/lib/orders/events", options: LogOptions(durability: .always))
    try await log.async.append(to: "order-42", expectedVersion: .noStream, [
        NewEvent(stream: "order-42", type: "OrderPlaced", data: Array(#"{"total":99.5}"#.utf8)),
    ])
    let history = try await log.async.events(inStream: "order-42")        // owned events, finite
    print(history.count)
    let group = try await log.async.consumerGroup("mailer")
    for delivery in try await group.async.receive(maxCount: 10, timeout: .seconds(1)) {
        try await group.async.ack(delivery.event.position)
    }
    try await log.async.close()
}

// README.md, Swift snippet 9
func readmeSnippet9() throws {
    var options = LogOptions()
    options.encryption = LogEncryption(keyProvider: FileKeyProvider(path: "/etc/orders/master.key"), scope: .stream)
    let log = try Log.open(at: "/var/lib/orders", options: options)
    try log.append(NewEvent(stream: "customer-42/orders", type: "OrderPlaced", data: Array("{}".utf8)))
    try log.forgetStream("customer-42/orders")  // crypto-shredding: its events now read as forgotten
    try log.close()
}

// EventLog.docc/Consumers.md, Swift snippet 1
func doccConsumersSnippet1(log: Log) throws {
    func project(_ log: Log, apply: (EventView) -> Void, running: () -> Bool) throws {
        let subscription = try log.subscribe(cursor: "orders-projection", autoCommit: AutoCommit(events: 1000, interval: .milliseconds(500)))
        while running() {
            _ = try subscription.poll(maxCount: 1024, timeout: .seconds(1)) { event in apply(event) }
        }
    }
}

// EventLog.docc/Consumers.md, Swift snippet 2
func doccConsumersSnippet2(log: Log) throws {
    func work(_ log: Log, send: (Event) throws -> Void) throws {
        let group = try log.consumerGroup("mailer", options: ConsumerGroupOptions(maxDeliveries: 5, ackTimeout: .seconds(30)))
        for delivery in try group.receive(maxCount: 10, timeout: .seconds(1)) {
            do {
                try send(delivery.event)
                try group.ack(delivery.event.position)
            } catch {
                try group.nack(delivery.event.position)
            }
        }
    }
}

// EventLog.docc/EncryptionAtRest.md, Swift snippet 1
func doccEncryptionAtRestSnippet1() throws {
    var options = LogOptions()
    options.encryption = LogEncryption(
        keyProvider: FileKeyProvider(path: "/etc/orders/master.key"), scope: .stream)
    let log = try Log.open(at: "/var/lib/orders/events", options: options)
    defer { try? log.close() }
}

// EventLog.docc/EventLog.md, Swift snippet 1
func doccEventLogSnippet1() throws {
    let log = try Log.open(at: "/var/lib/orders/events")
    try log.append([NewEvent(stream: "order-42", type: "OrderPlaced", data: Array("{}".utf8))])
    try log.readStream("order-42") { event in print(event.version, event.type) }
    try log.close()
}

// EventLog.docc/EventSourcing.md, Swift snippet 1
func doccEventSourcingSnippet1(log: Log) throws {
    struct Order {
        var version: UInt64?
        var items = 0
        mutating func apply(_ event: EventView) {
            version = event.version
            if event.type == "ItemAdded" { items += 1 }
        }
    }

    func addItem(to log: Log, order id: String, item: [UInt8]) throws {
        var order = Order()
        try log.readStream(id) { event in order.apply(event) }
        let expected: ExpectedVersion = order.version.map { .exact($0) } ?? .noStream
        do {
            try log.append(to: id, expectedVersion: expected, [NewEvent(stream: id, type: "ItemAdded", data: item)])
        } catch EventLogError.wrongExpectedVersion(_, _, let actual) {
            print("someone else appended first; the stream is at \(actual.map(String.init) ?? "nothing")")
        }
    }
}

// EventLog.docc/GettingStarted.md, Swift snippet 1
func doccGettingStartedSnippet1() throws {
    var options = LogOptions(durability: .always)
    options.compression = .lz4
    let log = try Log.open(at: "/var/lib/orders/events", options: options)
    print(log.recovery.previousShutdown)
}

// EventLog.docc/GettingStarted.md, Swift snippet 2
func doccGettingStartedSnippet2(log: Log) throws {
    let positions = try log.append([
        NewEvent(stream: "order-42", type: "OrderPlaced", data: Array(#"{"total":99.5}"#.utf8)),
        NewEvent(stream: "order-42", type: "ItemAdded", data: Array(#"{"sku":"A-1"}"#.utf8)),
    ])
    print("appended at", positions)
}

// EventLog.docc/GettingStarted.md, Swift snippet 3
func doccGettingStartedSnippet3(log: Log) throws {
    try log.read(from: 0) { event in
        print(event.position, event.stream, event.type, event.data.count)
    }
    print(try log.event(at: 0).type)
}

// EventLog.docc/Operations.md, Swift snippet 1
func doccOperationsSnippet1(log: Log) throws {
    func configure(_ log: Log) throws {
        try log.updateSettings(LogSettings(retainAge: .seconds(7 * 86_400), retainBytes: 10 << 30, retainCursors: ["relay"]))
        let result = try log.compact()
        print(result.startPosition, result.bytesBefore - result.bytesAfter)
    }
}

// EventLog.docc/TransactionalOutbox.md, Swift snippet 1
func doccTransactionalOutboxSnippet1(log: Log) throws {
    func placeOrder(_ log: Log, placed: [UInt8], confirmation: [UInt8]) throws {
        try log.append([
            NewEvent(stream: "order-42", type: "OrderPlaced", data: placed),
            NewEvent(stream: "outbox", type: "SendOrderConfirmation", data: confirmation,
                     metadata: EventMetadata(correlationID: "order-42")),
        ], expecting: ["order-42": .noStream])
    }
}

// EventLog.docc/TransactionalOutbox.md, Swift snippet 2
func doccTransactionalOutboxSnippet2(log: Log) throws {
    func relay(_ log: Log, deliver: (EventView) throws -> Void) throws {
        let subscription = try log.subscribe(
            cursor: "outbox-relay", filter: EventFilter(streamPrefix: "outbox"),
            autoCommit: AutoCommit(events: 100, interval: .milliseconds(200)))
        while try subscription.poll(maxCount: 256, timeout: .seconds(1), { event in try deliver(event) }) >= 0 {}
    }
}
