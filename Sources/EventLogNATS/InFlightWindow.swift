/// The relay's events published on one connection and not yet acknowledged
/// together with every event before them, oldest first: a ring of at most
/// `capacity` entries (the relay's window).
///
/// Each publish of a connection has a number, 0, 1, 2, ... in publish order,
/// which ends its reply subject; the entries' numbers are consecutive, so an
/// acknowledgement finds its entry by subtraction, without a hash table, and
/// nothing is allocated after `init`.
///
/// Not thread-safe: the relay's thread owns it.
struct InFlightWindow {
    /// The most entries held (the relay's window).
    let capacity: Int
    private var positions: [UInt64]
    private var sentAt: [UInt64]
    private var acknowledged: [Bool]
    /// The ring index of the oldest entry.
    private var head = 0
    /// Entries held.
    private(set) var count = 0
    /// The publish number of the oldest entry (of the next publish when empty).
    private(set) var firstNumber: UInt64 = 0

    /// A window for at most `capacity` events (at least 1).
    init(capacity: Int) {
        self.capacity = max(1, capacity)
        positions = Array(repeating: 0, count: self.capacity)
        sentAt = Array(repeating: 0, count: self.capacity)
        acknowledged = Array(repeating: false, count: self.capacity)
    }

    var isEmpty: Bool { count == 0 }
    /// Entries that can still be added.
    var free: Int { capacity - count }
    /// The number the next publish gets.
    var nextNumber: UInt64 { firstNumber + UInt64(count) }

    /// The oldest entry's log position and send time (`monotonicNanoseconds`), nil when empty.
    var oldest: (position: UInt64, sentAt: UInt64)? {
        count == 0 ? nil : (positions[head], sentAt[head])
    }

    /// Adds the next publish (number `nextNumber`); false, adding nothing, when the window is full.
    mutating func append(position: UInt64, sentAt time: UInt64) -> Bool {
        guard count < capacity else { return false }
        let slot = ring(count)
        positions[slot] = position
        sentAt[slot] = time
        acknowledged[slot] = false
        count += 1
        return true
    }

    /// Marks publish `number` acknowledged; false when no entry has that number (a reply to nothing in flight).
    mutating func acknowledge(_ number: UInt64) -> Bool {
        guard number >= firstNumber, number - firstNumber < UInt64(count) else { return false }
        acknowledged[ring(Int(number - firstNumber))] = true
        return true
    }

    /// Removes the acknowledged entries at the front (up to the first one not acknowledged), calling `body`
    /// with each one's position in order; returns how many it removed.
    mutating func removeAcknowledgedPrefix(_ body: (UInt64) -> Void) -> Int {
        var removed = 0
        while count > 0 && acknowledged[head] {
            body(positions[head])
            acknowledged[head] = false
            head = head + 1 == capacity ? 0 : head + 1
            count -= 1
            firstNumber += 1
            removed += 1
        }
        return removed
    }

    /// The ring index of the entry `offset` places after the oldest.
    @inline(__always)
    private func ring(_ offset: Int) -> Int {
        let index = head + offset
        return index >= capacity ? index - capacity : index
    }
}
