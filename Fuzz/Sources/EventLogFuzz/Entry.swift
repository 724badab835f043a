@testable import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// libFuzzer's entry point. The target is named by the environment variable
/// `EVENTLOG_FUZZ_TARGET` (scripts/fuzz.sh sets it): one binary serves every
/// target, so the sanitizer build is done once.
///
/// Each target feeds the bytes to a decoder and ignores its typed error: a
/// crash, a trap, a hang (libFuzzer's `-timeout`) or an out-of-bounds read
/// (Address Sanitizer) is the failure.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    selectedTarget.run(bytes)
    return 0
}

/// The target named by `EVENTLOG_FUZZ_TARGET`; the process exits naming the
/// targets when it is missing or unknown.
let selectedTarget: FuzzTarget = {
    guard let raw = getenv("EVENTLOG_FUZZ_TARGET"), let target = FuzzTarget(rawValue: String(cString: raw)) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: " ")
        Diagnostics.print("EVENTLOG_FUZZ_TARGET must name one of: \(names)")
        exit(2)
    }
    return target
}()

/// Messages to standard error (`stderr` itself is a global var Swift 6 refuses).
enum Diagnostics {
    static func print(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
