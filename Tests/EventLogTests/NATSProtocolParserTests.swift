import NIOCore
import Testing
@testable import EventLog
@testable import NATSClient

/// The NATS protocol parser on its own: every operation, any fragmentation,
/// headers and status lines, and typed errors for bad or oversized input.
@Suite struct NATSProtocolParserTests {
    static let stream = Array((
        "INFO {\"server_id\":\"S1\",\"version\":\"2.9.10\",\"max_payload\":1048576,\"headers\":true,\"jetstream\":true}\r\n"
        + "PING\r\nPONG\r\n+OK\r\n-ERR 'Unknown Protocol Operation'\r\n"
        + "MSG orders.1 7 5\r\nhello\r\n"
        + "MSG orders.2 7 _INBOX.x.9 0\r\n\r\n"
        + "HMSG orders.3 8 $JS.ACK.ORDERS.d.1.3.3.1700000000000000000.0 38 43\r\nNATS/1.0\r\nNats-Msg-Id: a-1\r\nX:  y \r\n\r\nworld\r\n"
        + "HMSG _INBOX.p.1 9 32 32\r\nNATS/1.0 408 Request Timeout\r\n\r\n\r\n"
        + "msg lower 1 2\r\nok\r\n"
    ).utf8)

    /// Parses `bytes` fed in pieces cut at `cuts`.
    static func parse(_ bytes: [UInt8], cuts: [Int], maxPayload: Int = 1 << 20) throws -> [NATSServerOperation] {
        var parser = NATSProtocolParser(maxPayload: maxPayload)
        var operations: [NATSServerOperation] = []
        var start = 0
        for cut in cuts.sorted() + [bytes.count] where cut >= start {
            parser.append(contentsOf: bytes[start..<cut])
            start = cut
            while let op = try parser.next() { operations.append(op) }
        }
        #expect(parser.bufferedBytes == 0)
        return operations
    }

    static func summary(_ ops: [NATSServerOperation]) -> [String] {
        ops.map { op in
            switch op {
            case .info(let json): return "INFO \(try! NATSServerInfo.decode(json).maxPayload)"
            case .ping: return "PING"
            case .pong: return "PONG"
            case .ok: return "+OK"
            case .error(let text): return "-ERR \(text)"
            case .message(let m):
                var s = "MSG \(m.subject) \(m.sid) \(m.replyTo ?? "-") \(String(decoding: m.payload, as: UTF8.self))"
                if let h = m.headers { s += " [\(h.status.map(String.init) ?? "") \(h.statusDescription) \(h.fields.map { "\($0.name)=\($0.value)" })]" }
                return s
            }
        }
    }

    static let expected = [
        "INFO 1048576", "PING", "PONG", "+OK", "-ERR Unknown Protocol Operation",
        "MSG orders.1 7 - hello", "MSG orders.2 7 _INBOX.x.9 ",
        #"MSG orders.3 8 $JS.ACK.ORDERS.d.1.3.3.1700000000000000000.0 world [  ["Nats-Msg-Id=a-1", "X=y"]]"#,
        "MSG _INBOX.p.1 9 -  [408 Request Timeout []]",
        "MSG lower 1 - ok",
    ]

    @Test func wholeStream() throws {
        #expect(Self.summary(try Self.parse(Self.stream, cuts: [])) == Self.expected)
    }

    @Test func everySingleCutPoint() throws {
        for cut in 0...Self.stream.count {
            #expect(Self.summary(try Self.parse(Self.stream, cuts: [cut])) == Self.expected, "cut at \(cut)")
        }
    }

    @Test func byteByByteAndRandomFragments() throws {
        #expect(Self.summary(try Self.parse(Self.stream, cuts: Array(0...Self.stream.count))) == Self.expected)
        var random = SplitMix64(seed: 12)
        for _ in 0..<200 {
            let cuts = (0..<Int(random.next() % 8)).map { _ in Int(random.next() % UInt64(Self.stream.count)) }
            #expect(Self.summary(try Self.parse(Self.stream, cuts: cuts)) == Self.expected, "cuts \(cuts)")
        }
    }

    @Test func payloadLargerThanMaxPayloadIsRefusedBeforeItArrives() {
        var parser = NATSProtocolParser(maxPayload: 100)
        parser.append(contentsOf: "MSG a 1 101\r\n".utf8)
        #expect(throws: NATSError.payloadTooLarge(bytes: 101, limit: 100)) { try parser.next() }
        var ok = NATSProtocolParser(maxPayload: 100)
        ok.append(contentsOf: ("MSG a 1 100\r\n" + String(repeating: "x", count: 100) + "\r\n").utf8)
        #expect(throws: Never.self) { try ok.next() }
        var headers = NATSProtocolParser(maxPayload: 30)
        headers.append(contentsOf: "HMSG a 1 12 31\r\n".utf8)
        #expect(throws: NATSError.payloadTooLarge(bytes: 31, limit: 30)) { try headers.next() }
    }

    @Test func controlLineWithoutEndIsBounded() throws {
        var parser = NATSProtocolParser()
        parser.append(contentsOf: Array(repeating: UInt8(ascii: "M"), count: NATSProtocolParser.maxControlLineBytes))
        #expect(try parser.next() == nil)
        parser.append(contentsOf: Array(repeating: UInt8(ascii: "M"), count: 10))
        #expect(throws: NATSError.controlLineTooLong(limit: NATSProtocolParser.maxControlLineBytes)) { try parser.next() }
    }

    @Test(arguments: [
        "BOGUS 1 2\r\n",  // unknown operation
        "MSG a b 5\r\nhello\r\n",  // sid not a number
        "MSG a 1 x\r\n",  // count not a number
        "MSG a 1\r\n",  // too few arguments
        "MSG a 1 b c 5\r\n",  // too many
        "MSG a 1 3\r\nhello\r\n",  // count wrong: no CRLF after the payload
        "HMSG a 1 9 5\r\n",  // header bytes above the total
        "HMSG a 1 10 10\r\nNATS/2.0\r\n\r\n",  // not NATS/1.0
        "HMSG a 1 13 13\r\nNATS/1.0\r\nX\r\n\r\n",  // no blank line, line without a colon
        "HMSG a 1 15 15\r\nNATS/1.0 4x\r\n\r\n\r\n",  // status not a number
        "PING\n",  // LF alone
        "INFO nope\r\n",
        "MSG a 1 99999999999999999999999\r\n",  // count overflows
        "\u{0}MSG a 1 0\r\n\r\n",  // a NUL byte before the verb
        "MSGS a 1 0\r\n\r\n",  // a verb that starts like one
        "HMSG a 1 r 2 4 4\r\nx\r\n",  // six fields: more than HMSG's five
        "\r\n",  // an empty line
    ])
    func badInputIsATypedError(_ input: String) {
        var parser = NATSProtocolParser()
        parser.append(contentsOf: input.utf8)
        // Each input is complete: parsing it must throw, neither succeed nor wait for more bytes.
        #expect(throws: NATSError.self, "\(input.debugDescription)") {
            while try parser.next() != nil {}
        }
    }

    @Test func badInfoJSONIsATypedError() throws {
        #expect(throws: NATSError.self) { try NATSServerInfo.decode(Array("{\"max_payload\":\"x\"}".utf8)) }
        #expect(throws: NATSError.self) { try NATSServerInfo.decode(Array("{\"max_payload\":0}".utf8)) }
        #expect(try NATSServerInfo.decode(Array("{}".utf8)).maxPayload == 1 << 20)
    }

    @Test func headersRoundTrip() throws {
        var headers = NATSHeaders()
        headers.append("Nats-Msg-Id", "abc")
        headers.append("EventLog-Type", "Order Placed")
        headers.append("nats-msg-id", "second")
        let block = try headers.encoded()
        let parsed = try NATSHeaders.parse(block)
        #expect(parsed == headers)
        #expect(parsed["NATS-MSG-ID"] == "abc")
        #expect(throws: NATSError.self) { try NATSHeaders(fields: [("Bad Name", "v")]).encoded() }
        #expect(throws: NATSError.self) { try NATSHeaders(fields: [("N", "a\r\nb")]).encoded() }
        #expect(throws: NATSError.self) { try NATSHeaders(fields: [("N:x", "v")]).encoded() }
    }

    @Test func encoderWritesWhatTheParserReads() throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        var headers = NATSHeaders()
        headers.append("K", "v")
        try NATSProtocolEncoder.publish(into: &buffer, subject: "a.b", replyTo: "_INBOX.1", headers: headers, payload: Array("data".utf8))
        let text = String(buffer: buffer)
        #expect(text == "HPUB a.b _INBOX.1 18 22\r\nNATS/1.0\r\nK: v\r\n\r\ndata\r\n")
        // The same frame with the server's verb reads back as the message.
        var parser = NATSProtocolParser()
        parser.append(contentsOf: ("HMSG a.b 3 _INBOX.1 18 22\r\n" + text.split(separator: "\r\n", maxSplits: 1)[1]).utf8)
        guard case .message(let m) = try parser.next() else { Issue.record("no message"); return }
        #expect(m.payload == Array("data".utf8) && m.headers?["k"] == "v" && m.replyTo == "_INBOX.1")
        #expect(throws: NATSError.self) { try NATSProtocolEncoder.publish(into: &buffer, subject: "a b", payload: []) }
        #expect(throws: NATSError.self) { try NATSProtocolEncoder.publish(into: &buffer, subject: "", payload: []) }
    }

    @Test func verbsIgnoreCase() throws {
        var parser = NATSProtocolParser()
        parser.append(contentsOf: "PiNg\r\npong\r\n+ok\r\n-Err 'x'\r\nHmsg a 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n".utf8)
        var operations: [NATSServerOperation] = []
        while let op = try parser.next() { operations.append(op) }
        #expect(Self.summary(operations) == ["PING", "PONG", "+OK", "-ERR x", "MSG a 2 - hi [  []]"])
    }

    /// The publisher's form (subject, reply prefix and number as bytes) writes the same frame as the `String` form.
    @Test func bytePublishWritesWhatTheStringPublishWrites() throws {
        var headers = NATSHeaders()
        headers.append("Nats-Msg-Id", "m-1")
        let block = try headers.encoded()
        let payload = Array("payload".utf8)
        for number in [0, 7, 10, 99, 1_000_000, UInt64.max] as [UInt64] {
            var viaString = ByteBufferAllocator().buffer(capacity: 64)
            try NATSProtocolEncoder.publish(into: &viaString, subject: "o.s", replyTo: "_INBOX.r.\(number)", headers: headers, payload: payload)
            var viaBytes = ByteBufferAllocator().buffer(capacity: 64)
            try Array("o.s".utf8).withUnsafeBytes { subject in
                try Array("_INBOX.r.".utf8).withUnsafeBytes { reply in
                    try block.withUnsafeBytes { header in
                        try payload.withUnsafeBytes { data in
                            try NATSProtocolEncoder.publish(
                                into: &viaBytes, subject: subject, replyPrefix: reply, replyNumber: number, headers: header, payload: data)
                        }
                    }
                }
            }
            #expect(String(buffer: viaBytes) == String(buffer: viaString), "reply number \(number)")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        for (subject, reply) in [("a b", "r."), ("", "r."), ("a", "r \t."), ("a", "")] {
            #expect(throws: NATSError.self, "\(subject.debugDescription) \(reply.debugDescription)") {
                try Array(subject.utf8).withUnsafeBytes { s in
                    try Array(reply.utf8).withUnsafeBytes { r in
                        try NATSProtocolEncoder.publish(
                            into: &buffer, subject: s, replyPrefix: r, replyNumber: 1, headers: UnsafeRawBufferPointer(start: nil, count: 0),
                            payload: UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                }
            }
        }
        #expect(buffer.readableBytes == 0, "nothing is written for a refused subject")
    }

    @Test func publishAcksParse() throws {
        func reply(_ json: String, status: String? = nil) -> NATSMessage {
            NATSMessage(subject: "_INBOX.a.1", sid: 1, headers: status.map { try! NATSHeaders.parse(Array("NATS/1.0 \($0)\r\n\r\n".utf8)) }, payload: Array(json.utf8))
        }
        #expect(try JetStreamPublishAck.parse(reply(#"{"stream":"ORDERS","seq":42}"#)) == JetStreamPublishAck(stream: "ORDERS", sequence: 42, duplicate: false))
        #expect(try JetStreamPublishAck.parse(reply(#"{"stream":"ORDERS","seq":42,"duplicate":true}"#)).duplicate)
        #expect(try JetStreamPublishAck.parse(reply(#"{"stream":"OR\"D","seq":7, "domain":"x"}"#)).sequence == 7)
        // The shape nats-server writes (a space after the comma) takes the fast path, without Foundation's decoder.
        #expect(JetStreamPublishAck.fastParse(Array(#"{"stream":"ORDERS", "seq":1234}"#.utf8)) == JetStreamPublishAck(stream: "ORDERS", sequence: 1234, duplicate: false))
        #expect(JetStreamPublishAck.fastParse(Array(#"{"stream":"ORDERS", "seq":5, "duplicate":true}"#.utf8)) == JetStreamPublishAck(stream: "ORDERS", sequence: 5, duplicate: true))
        #expect(JetStreamPublishAck.fastParse(Array(#"{"stream":"ORDERS","seq":5}"#.utf8))?.sequence == 5)
        for odd in [#"{"stream":"A", "seq":1, "domain":"d"}"#, #"{"stream":"A", "seq":}"#, #"{"stream":"A\"B", "seq":1}"#, #"{"stream":"A", "seq":1} "#] {
            #expect(JetStreamPublishAck.fastParse(Array(odd.utf8)) == nil, "\(odd)")
        }
        #expect(throws: NATSError.jetStream(code: 503, errorCode: 10077, description: "maximum messages exceeded")) {
            try JetStreamPublishAck.parse(reply(#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#))
        }
        #expect(throws: NATSError.noResponders(subject: "_INBOX.a.1")) { try JetStreamPublishAck.parse(reply("", status: "503")) }
        #expect(throws: NATSError.self) { try JetStreamPublishAck.parse(reply(#"{"stream":"S"}"#)) }
        #expect(throws: NATSError.self) { try JetStreamPublishAck.parse(reply("not json")) }
    }

    @Test func jetStreamAckSubjects() throws {
        let v1 = try JetStreamMessage(NATSMessage(subject: "s", sid: 1, replyTo: "$JS.ACK.ORDERS.d.2.17.5.1700000000000000000.3"))
        #expect(v1.stream == "ORDERS" && v1.streamSequence == 17 && v1.deliveryCount == 2)
        let v2 = try JetStreamMessage(NATSMessage(subject: "s", sid: 1, replyTo: "$JS.ACK.dom.acc.ORDERS.d.1.18.6.1700000000000000000.0.tok"))
        #expect(v2.stream == "ORDERS" && v2.streamSequence == 18)
        #expect(throws: NATSError.self) { try JetStreamMessage(NATSMessage(subject: "s", sid: 1, replyTo: "$JS.ACK.a.b")) }
        #expect(throws: NATSError.self) { try JetStreamMessage(NATSMessage(subject: "s", sid: 1, replyTo: "$JS.ACK.S.d.x.17.5.1.3")) }
        #expect(throws: NATSError.self) { try JetStreamMessage(NATSMessage(subject: "s", sid: 1)) }
    }

    @Test func urls() throws {
        #expect(try NATSURL(parsing: "nats://127.0.0.1:4333") == NATSURL(host: "127.0.0.1", port: 4333))
        #expect(try NATSURL(parsing: "localhost") == NATSURL(host: "localhost", port: 4222))
        for bad in ["", "nats://", "nats://h:0", "nats://h:x", "nats://u@h:1", "http://h:1"] {
            #expect(throws: NATSError.self, "\(bad)") { try NATSURL(parsing: bad) }
        }
    }
}
