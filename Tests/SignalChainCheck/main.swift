// A child process for `MappedReadGuardTests.anApplicationsSIGBUSHandlerStillGetsFaultsOutsideTheLog`:
// an application that installs its own SIGBUS handler before it opens a log.
//
//   SignalChainCheck DIR
//
// 1. Installs the application's handler, which prints "application handler"
//    and exits with status 42.
// 2. Writes a log of several segments in DIR, opens it read-only, cuts its
//    first segment to 8 KiB under the mapping and reads from position 0: the
//    log's guard must turn that fault into an error ("log read failed: …").
// 3. Maps a file of its own, cuts it, and reads past the cut: that fault is
//    not the log's, so the application's handler must get it.
// Any other ending (a signal, another status) fails the test.
import EventLog
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

func say(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

var action = sigaction()
action.__sigaction_handler.sa_handler = { _ in
    let text = "application handler\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
    _exit(42)
}
sigemptyset(&action.sa_mask)
guard sigaction(SIGBUS, &action, nil) == 0 else {
    say("sigaction failed")
    exit(3)
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    say("usage: SignalChainCheck DIR")
    exit(2)
}
let directory = arguments[1]

do {
    var options = LogOptions(durability: .none)
    options.segmentBytes = 64 << 10
    let writer = try Log.open(at: directory, options: options)
    for batch in 0..<40 {
        try writer.append((0..<50).map { k in
            NewEvent(stream: "s\(k % 7)", type: "T", data: [UInt8](repeating: UInt8(truncatingIfNeeded: batch), count: 100))
        })
    }
    try writer.close()
    options.readOnly = true
    let reader = try Log.open(at: directory, options: options)
    guard let first = try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter({ $0.hasSuffix(".segment") }).sorted().first
    else {
        say("no segment")
        exit(3)
    }
    guard truncate(directory + "/" + first, 8192) == 0 else {
        say("truncate failed")
        exit(3)
    }
    do {
        try reader.read(from: 0) { _ in }
        say("log read succeeded over the cut")
        exit(3)
    } catch {
        say("log read failed: \(error)")
    }
} catch {
    say("setup failed: \(error)")
    exit(3)
}

// A file of the application's own, mapped, then cut under the mapping.
let ownPath = directory + "/application-file"
let descriptor = open(ownPath, O_RDWR | O_CREAT, 0o600)
guard descriptor >= 0, ftruncate(descriptor, 65536) == 0,
    let mapping = mmap(nil, 65536, PROT_READ, MAP_SHARED, descriptor, 0), mapping != MAP_FAILED
else {
    say("mapping failed")
    exit(3)
}
guard ftruncate(descriptor, 0) == 0 else {
    say("ftruncate failed")
    exit(3)
}
let byte = mapping.load(fromByteOffset: 32768, as: UInt8.self)  // SIGBUS: the application's handler ends the process
say("read past the cut returned \(byte)")
exit(3)
