import Foundation
import Testing
@testable import EventLog
@testable import EventLogNATS
@testable import NATSClient

/// `.creds` files against a real `nats-server` in operator mode (an operator JWT, an account JWT with JetStream
/// limits and a system account's JWT preloaded in a memory resolver, user JWTs signed by the account), all made here with `NATSNKey` as nats-io/jwt
/// v2 lays them out: the server checks every signature and the user's signature of its nonce. Skipped when no
/// nats-server is installed.
@Suite(.serialized, .enabled(if: NATSServerProcess.isAvailable, NATSServerProcess.skipMessage))
struct NATSOperatorModeTests {
    /// The prefix bytes of operator and account public keys (nats-io/nkeys: base32 `O` and `A`).
    static let operatorPrefix: UInt8 = 14 << 3
    static let accountPrefix: UInt8 = 0

    /// `key`'s public key with another prefix byte (an operator's or an account's).
    static func publicKey(_ key: NATSNKey, prefix: UInt8) throws -> String {
        var bytes = [prefix] + (try #require(NATSNKey.decodeUserPublicKey(key.publicKey)))
        let crc = NATSCRC16.checksum(bytes[...])
        bytes += [UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8)]
        return NATSBase32.encode(bytes)
    }

    /// A v2 NATS JWT: `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims, the signature of both by `signer`, base64url.
    static func jwt(_ claims: [String: Any], signedBy signer: NATSNKey) throws -> String {
        let header = NATSBase64URL.encode(Array(#"{"typ":"JWT","alg":"ed25519-nkey"}"#.utf8))
        let payload = NATSBase64URL.encode(Array(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])))
        let signature = NATSBase64URL.encode(signer.sign(Array("\(header).\(payload)".utf8)))
        return "\(header).\(payload).\(signature)"
    }

    static func claims(_ id: String, issuer: String, subject: String, nats: [String: Any]) -> [String: Any] {
        ["jti": id, "iat": Int(Date().timeIntervalSince1970) - 60, "iss": issuer, "sub": subject, "name": id, "nats": nats]
    }

    /// A user JWT for `user`, issued by the account `account`.
    static func userJWT(_ user: NATSNKey, account: NATSNKey) throws -> String {
        try jwt(
            claims("user-\(user.publicKey.prefix(6))", issuer: try publicKey(account, prefix: accountPrefix), subject: user.publicKey,
                   nats: ["type": "user", "version": 2, "pub": [String: Any](), "sub": [String: Any](), "subs": -1, "data": -1, "payload": -1]),
            signedBy: account)
    }

    /// A `.creds` file as `nsc` writes it.
    static func credsFile(jwt: String, seed: String) -> String {
        """
        -----BEGIN NATS USER JWT-----
        \(jwt)
        ------END NATS USER JWT------

        ************************* IMPORTANT *************************
        NKEY Seed printed below can be used to sign and prove identity.

        -----BEGIN USER NKEY SEED-----
        \(seed)
        ------END USER NKEY SEED------

        """
    }

    @Test func aCredsFileRelaysAndAForeignOrMismatchedOneIsRefused() throws {
        let dir = TemporaryDirectory("nats-operator")
        let operatorKey = NATSNKey.generate()
        let account = NATSNKey.generate()
        let user = NATSNKey.generate()
        let operatorPublic = try Self.publicKey(operatorKey, prefix: Self.operatorPrefix)
        let accountPublic = try Self.publicKey(account, prefix: Self.accountPrefix)
        let operatorJWT = try Self.jwt(
            Self.claims("operator", issuer: operatorPublic, subject: operatorPublic, nats: ["type": "operator", "version": 2]), signedBy: operatorKey)
        let limits: [String: Any] = [
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
        ]
        let accountJWT = try Self.jwt(
            Self.claims("account", issuer: operatorPublic, subject: accountPublic, nats: ["type": "account", "version": 2, "limits": limits]),
            signedBy: operatorKey)
        // JetStream needs a system account.
        let system = NATSNKey.generate()
        let systemPublic = try Self.publicKey(system, prefix: Self.accountPrefix)
        let systemJWT = try Self.jwt(
            Self.claims("system", issuer: operatorPublic, subject: systemPublic, nats: ["type": "account", "version": 2]), signedBy: operatorKey)
        try operatorJWT.write(toFile: dir.sub("operator.jwt"), atomically: true, encoding: .utf8)
        let userJWT = try Self.userJWT(user, account: account)
        let right = NATSCredentials.userJWT(userJWT, key: user)
        let server = try NATSServerProcess(
            storeDirectory: dir.sub("js"),
            configuration: """
                operator: "\(dir.sub("operator.jwt"))"
                resolver: MEMORY
                system_account: \(systemPublic)
                resolver_preload: { \(accountPublic): "\(accountJWT)", \(systemPublic): "\(systemJWT)" }
                """,
            credentials: right)
        try server.start()
        try NATSAuthTests.makeLog(dir)

        // The command, with the .creds file (as an option, and through EVENTLOG_NATS_CREDENTIALS).
        try Self.credsFile(jwt: userJWT, seed: user.seed).write(toFile: dir.sub("relay.creds"), atomically: true, encoding: .utf8)
        let relay = ["relay", dir.sub("log"), "--nats", server.urlText, "--subject-prefix", "auth.", "--create-stream", "AUTH", "--stop-when-idle"]
        let output = try CLIProcess.run(relay + ["--cursor", "creds", "--nats-credentials", dir.sub("relay.creds")], timeout: 30)
        #expect(output.status == 0 && output.stdout.contains("relayed \(NATSAuthTests.events) events"), "\(output)")
        let fromEnvironment = try CLIProcess.run(
            relay + ["--cursor", "env"], environment: ["EVENTLOG_NATS_CREDENTIALS": dir.sub("relay.creds")], timeout: 30)
        #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
        #expect(try JetStreamContents.all(server, stream: "AUTH", expected: NATSAuthTests.events).count == NATSAuthTests.events)

        // A user of an account the server does not know, and the right JWT with another user's seed: refused at once.
        let stranger = NATSNKey.generate()
        let foreign = Self.credsFile(jwt: try Self.userJWT(stranger, account: NATSNKey.generate()), seed: stranger.seed)
        let mismatched = Self.credsFile(jwt: userJWT, seed: stranger.seed)
        for (name, text) in [("foreign", foreign), ("mismatched", mismatched)] {
            try text.write(toFile: dir.sub("\(name).creds"), atomically: true, encoding: .utf8)
            let started = Date()
            let refused = try CLIProcess.run(relay + ["--cursor", name, "--nats-credentials", dir.sub("\(name).creds")], timeout: 30)
            #expect(refused.status == 2 && refused.stderr.contains("authorization refused by the NATS server"), "\(name): \(refused)")
            #expect(Date().timeIntervalSince(started) < 10)
            #expect(!refused.stderr.contains(stranger.seed) && !refused.stderr.contains(user.seed))
            let error = #expect(throws: RelayError.self) {
                let log = try Log.open(at: dir.sub("log"))
                defer { try? log.close() }
                _ = try Relay(
                    log: log, url: server.url,
                    options: NATSAuthTests.relayOptions(cursor: name, credentials: try NATSCredentials(credsFile: text))
                ).run { false }
            }
            guard case .nats(.authorizationRefused)? = error else {
                Issue.record("\(name): not refused: \(String(describing: error))")
                continue
            }
        }
    }
}
