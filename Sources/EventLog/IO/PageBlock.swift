#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A block of writable memory for a large buffer, freed when released: at
/// least `mappedThreshold` bytes come straight from the kernel (a private
/// anonymous mapping, `mmap`), smaller blocks from malloc.
///
/// Why not malloc for large buffers: the kernel's pages of a mapping count
/// as resident only once touched (an active segment's index, sized for the
/// most its file can need, touches a quarter of it), and `munmap` hands them
/// all back at once. Memory freed to glibc's malloc stays with the process
/// (in the arena of the thread that allocated it, and each thread that
/// allocates gets its own) until a later allocation of that thread reuses
/// it, and freeing a block malloc had mapped raises the size above which it
/// maps the next ones, so after a few such frees every large buffer is
/// carved from an arena and its memory kept after it is freed.
///
/// Never zeroed for the caller (the kernel's pages are zero, malloc's are
/// not). When the mapping fails, malloc is asked instead. One of the few
/// audited types that hold a raw pointer.
final class PageBlock: @unchecked Sendable {
    /// Blocks of this many bytes or more are mapped.
    static let mappedThreshold = 64 << 10

    let base: UnsafeMutableRawPointer
    let byteCount: Int
    /// True when `base` is a mapping of `byteCount` bytes (else malloc's).
    let isMapped: Bool

    /// A block of at least one byte and at least `byteCount` bytes, aligned
    /// to 16 bytes (a mapping to the page).
    init(byteCount: Int) {
        let count = max(byteCount, 1)
        self.byteCount = count
        if count >= Self.mappedThreshold,
           let pointer = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
           pointer != MAP_FAILED {
            base = pointer
            isMapped = true
        } else {
            base = .allocate(byteCount: count, alignment: 16)
            isMapped = false
        }
    }

    deinit {
        if isMapped { munmap(base, byteCount) } else { base.deallocate() }
    }
}

/// A growable array of plain values in a `PageBlock`, for large transient
/// buffers (a stream index file's entries while it is encoded): reserved
/// once at the size expected, so its pages go back to the kernel when it is
/// released instead of staying in malloc's arena. Grows (to twice its size,
/// by copying) only when more come than were reserved.
final class PageArray<Value: BitwiseCopyable>: @unchecked Sendable {
    private var block: PageBlock
    private(set) var count = 0
    private var capacity: Int

    init(reserving capacity: Int) {
        self.capacity = max(capacity, 1)
        block = PageBlock(byteCount: self.capacity * MemoryLayout<Value>.stride)
    }

    @inline(__always) private var elements: UnsafeMutablePointer<Value> {
        block.base.assumingMemoryBound(to: Value.self)
    }

    @inline(__always) func append(_ value: Value) {
        if count == capacity { grow() }
        (elements + count).initialize(to: value)
        count += 1
    }

    private func grow() {
        let larger = PageBlock(byteCount: capacity * 2 * MemoryLayout<Value>.stride)
        larger.base.copyMemory(from: block.base, byteCount: count * MemoryLayout<Value>.stride)
        block = larger
        capacity *= 2
    }

    /// The elements appended so far, valid while `body` runs.
    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Value>) throws -> R) rethrows -> R {
        try withExtendedLifetime(block) { try body(UnsafeBufferPointer(start: elements, count: count)) }
    }
}
