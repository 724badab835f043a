import NATSClient

/// The frames of one poll, kept until they are encoded into one write.
struct NATSOutboundBatch {
    private var frames: [(subject: String, headerBlock: [UInt8], payload: [UInt8], position: UInt64)] = []

    mutating func add(subject: String, headerBlock: [UInt8], payload: UnsafeRawBufferPointer, position: UInt64) {
        frames.append((subject, headerBlock, Array(payload), position))
    }

    func encode(into out: inout NATSOutbound, tracker: AckTracker, generation: Int) throws(NATSError) {
        for frame in frames {
            do {
                try frame.payload.withUnsafeBytes { raw in
                    try out.request(
                        subject: frame.subject, headerBlock: frame.headerBlock, payload: raw,
                        onReply: tracker.handler(generation: generation, position: frame.position))
                }
            } catch let error as NATSError {
                throw error
            } catch {
                throw .invalidArgument("\(error)")
            }
        }
    }
}
