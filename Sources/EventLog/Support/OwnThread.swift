#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A thread of the library's own (a pthread: not a Dispatch worker, not the
/// cooperative pool), for work that blocks or spins beside its caller:
/// compaction passes at a lower priority, a scan's read-ahead, the LZ4
/// helper. The one place the library creates threads this way.
///
/// Concurrency: what the caller wrote before `start` is visible to `body`;
/// what `body` wrote is visible to whoever joins the thread (`pthread_join`).
enum OwnThread {
    /// Starts a thread running `body`; nil when none can be made (the
    /// process's thread limit), and `body` is then not run. Each thread
    /// started must be joined once.
    static func start(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
        let box = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        guard created == 0 else {
            box.release()
            return nil
        }
        return thread
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
}
