// The user's side of the README's snippets: the names they use that are the application's, not EventLog's.
// Hand-written (the snippets themselves are generated from README.md by scripts/readme-snippets.py).
import EventLog
import Foundation
import Logging
import ServiceLifecycle

/// An aggregate rebuilt from its stream.
struct Order {
    var version: UInt64?
    mutating func apply(_ event: EventView) { version = event.version }
}

/// An order as the application holds it, its fields already encoded.
struct OrderInput {
    var streamBytes: UnsafeRawBufferPointer
    var typeBytes: UnsafeRawBufferPointer
    var payloadBytes: UnsafeRawBufferPointer
}

/// A read model.
struct Projection: Sendable {
    func apply(_ event: EventView) {}
    func apply(_ event: Event) {}
}

/// The HTTP server the service runs beside the log.
struct Server: Service {
    func run() async throws {}
}

var orders: [OrderInput] { [] }
var item: [UInt8] { Array(#"{"sku":"A-1"}"#.utf8) }
var commandID: UUID { UUID() }
var running: Bool { false }
var projection: Projection { Projection() }
var logger: Logger { Logger(label: "orders") }
var server: any Service { Server() }
var placed: [UInt8] { Array(#"{"total":99.5}"#.utf8) }
var message: [UInt8] { Array(#"{"to":"customer-7"}"#.utf8) }
var lastDelivered: UInt64 { 0 }
func send(_ event: Event) throws {}
func deliver(_ message: EventView) {}
