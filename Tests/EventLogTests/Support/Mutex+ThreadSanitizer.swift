// ThreadSanitizer builds only (scripts/tsan.sh passes -DEVENTLOG_TSAN).
#if EVENTLOG_TSAN
import Synchronization
@testable import EventLog

/// Under ThreadSanitizer the library declares a `Mutex` of its own, over a
/// lock TSan can see (Sources/EventLog/Support/Mutex+ThreadSanitizer.swift);
/// `@testable import` shows it here beside Synchronization's. This names
/// the one the tests mean: the library's, so that TSan sees the tests' own
/// locks too.
typealias Mutex<Value> = EventLog.Mutex<Value>
#endif
