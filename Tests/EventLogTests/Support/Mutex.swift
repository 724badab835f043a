import Synchronization
@testable import EventLog

/// The library declares a `Mutex` of its own, over a `pthread_mutex_t`
/// (Sources/EventLog/Support/Mutex.swift); `@testable import` shows it here
/// beside Synchronization's. This names the one the tests mean: the
/// library's, so that ThreadSanitizer sees the tests' own locks too.
typealias Mutex<Value> = EventLog.Mutex<Value>
