import Testing
@testable import EventLog
@testable import EventLogNATS

/// The relay's bookkeeping without a server: the in-flight window (a ring
/// indexed by publish number) against a plain model, at every boundary, and
/// the publish number read back from an acknowledgement's subject.
@Suite struct NATSRelayWindowTests {
    @Test(arguments: [1, 2, 3, 8])
    func fillsToCapacityAndRefusesMore(capacity: Int) {
        var window = InFlightWindow(capacity: capacity)
        #expect(window.isEmpty && window.free == capacity && window.oldest == nil && window.nextNumber == 0)
        for i in 0..<capacity {
            let added = window.append(position: UInt64(10 + i), sentAt: UInt64(100 + i))
            #expect(added)
        }
        #expect(window.free == 0 && window.count == capacity && window.nextNumber == UInt64(capacity))
        let addedPastCapacity = window.append(position: 99, sentAt: 999)
        #expect(!addedPastCapacity, "a full window takes nothing more")
        #expect(window.count == capacity)
        #expect(window.oldest?.position == 10 && window.oldest?.sentAt == 100)
    }

    @Test func removesOnlyTheAcknowledgedPrefixInOrder() {
        var window = InFlightWindow(capacity: 4)
        for position in [5, 6, 9, 12] as [UInt64] {
            let added = window.append(position: position, sentAt: 1)
            #expect(added)
        }
        // Acknowledged out of order: 2 and 1 arrive before 0; 3 stays.
        #expect(window.acknowledge(2) && window.acknowledge(1))
        var removed: [UInt64] = []
        #expect(window.removeAcknowledgedPrefix { removed.append($0) } == 0, "publish 0 is not acknowledged yet")
        let known = window.acknowledge(0)
        #expect(known)
        #expect(window.removeAcknowledgedPrefix { removed.append($0) } == 3)
        #expect(removed == [5, 6, 9])
        #expect(window.firstNumber == 3 && window.count == 1 && window.oldest?.position == 12)
        // Numbers outside the window: already removed, or never published.
        #expect(!window.acknowledge(0) && !window.acknowledge(2) && !window.acknowledge(4) && !window.acknowledge(.max))
        #expect(window.removeAcknowledgedPrefix { removed.append($0) } == 0)
    }

    @Test func aWindowOfZeroHoldsOne() {
        var window = InFlightWindow(capacity: 0)
        #expect(window.capacity == 1)
        #expect(window.append(position: 0, sentAt: 0) && !window.append(position: 1, sentAt: 0))
    }

    /// Seeded random appends and acknowledgements (in any order, some repeated, some unknown) against a model
    /// of a dictionary from publish number to position: the same positions come out, in publish order.
    @Test(arguments: [1, 2, 5, 64])
    func matchesAModel(capacity: Int) {
        var random = SplitMix64(seed: UInt64(capacity) &* 7919)
        var window = InFlightWindow(capacity: capacity)
        var modelPositions: [UInt64: UInt64] = [:]
        var modelAcknowledged = Set<UInt64>()
        var modelFirst: UInt64 = 0
        var modelNext: UInt64 = 0
        var position: UInt64 = 0
        var removed: [UInt64] = []
        var modelRemoved: [UInt64] = []
        for _ in 0..<5000 {
            switch random.next() % 3 {
            case 0:
                position += 1 + random.next() % 3
                let fits = modelNext - modelFirst < UInt64(capacity)
                #expect(window.append(position: position, sentAt: position) == fits)
                if fits {
                    modelPositions[modelNext] = position
                    modelNext += 1
                }
            case 1:
                // A number around the window: sometimes before it, sometimes past it.
                let number = modelFirst &+ random.next() % UInt64(capacity + 2) &- 1
                let known = modelPositions[number] != nil
                #expect(window.acknowledge(number) == known)
                if known { modelAcknowledged.insert(number) }
            default:
                _ = window.removeAcknowledgedPrefix { removed.append($0) }
                while modelAcknowledged.contains(modelFirst) {
                    modelRemoved.append(modelPositions.removeValue(forKey: modelFirst)!)
                    modelAcknowledged.remove(modelFirst)
                    modelFirst += 1
                }
            }
            #expect(window.count == Int(modelNext - modelFirst))
            #expect(window.firstNumber == modelFirst)
            #expect(window.oldest?.position == modelPositions[modelFirst])
        }
        #expect(removed == modelRemoved)
        #expect(removed.count > 100, "the sweep removed too little to mean much: \(removed.count)")
    }

    /// The relay writes each header name from a static string: each must spell its public name.
    @Test func writtenHeaderNamesSpellThePublicNames() {
        #expect(EventHeaders.FieldNames.all.count == 13)
        for (name, written) in EventHeaders.FieldNames.all {
            #expect(written.description == name)
        }
    }

    @Test func publishNumbersReadBackFromAcknowledgementSubjects() {
        let prefix = "_INBOX.abc."
        #expect(AckTracker.number(prefix + "0", after: prefix.utf8.count) == 0)
        #expect(AckTracker.number(prefix + "18446744073709551", after: prefix.utf8.count) == 18_446_744_073_709_551)
        #expect(AckTracker.number(prefix, after: prefix.utf8.count) == nil)
        #expect(AckTracker.number(prefix + "12x", after: prefix.utf8.count) == nil)
        #expect(AckTracker.number(prefix + "1.2", after: prefix.utf8.count) == nil)
        #expect(AckTracker.number(prefix + "12345678901234567890", after: prefix.utf8.count) == nil, "20 digits")
    }
}
