import Foundation
import Testing
@testable import EventLogCLI
@testable import NATSClient

/// NATS credentials without a server: the NKey encoding against a real key pair of nats-io/nkeys' tests, the `.creds`
/// file, the `--nats-auth-file` format, the environment's variables and their conflicts, and that no description,
/// reflection or error shows a secret.
@Suite struct NATSCredentialsTests {
    /// A user seed and the JWT it goes with, from nats-io/nkeys' `creds_utils_test.go`: the JWT's `sub` claim is the
    /// seed's public key (decoded from the JWT's payload, below), which checks the encoding against one made by
    /// nats-io's own code.
    static let realSeed = "SUAOTBNEUHZDFJT3EUMELT7MQTP24JF3XVCXQNDSCU74G5IU6VAJBKH5LI"
    static let realJWT =
        "eyJ0eXAiOiJqd3QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJHVDROVU5NRUY3Wk1XQ1JCWFZWVURLUVQ2WllQWjc3VzRKUlFYRDNMMjRIS1VKRUNRSDdRIiwiaWF0IjoxNTkwNzgxNTkzLCJpc3MiOiJBQURXTFRISUNWNFNVQUdGNkVLTlZFVzVCQlA3WVJESUJHV0dHSFo1SkJET1FZQTdHVUZNNkFRVSIsIm5hbWUiOiJPUEVSQVRPUiIsInN1YiI6IlVERTZXVEdMVFRQQ1JKUkpDS0JKUkdWTlpUTElWUjdMRUVFTFI0Q1lXV1dCS0pTN1hZSUtYRFVVIiwibmF0cyI6eyJwdWIiOnt9LCJzdWIiOnt9LCJ0eXBlIjoidXNlciIsInZlcnNpb24iOjJ9fQ.c_XQT04wEoVVNDRjPHeKwe17BOrSpQTcftwIbB7KoNEIz6peZCJDc4-J3emVepHofUOWy7IAo9TlLwYhuGHWAQ"
    static let realCreds = """
        -----BEGIN NATS USER JWT-----
        \(realJWT)
        ------END NATS USER JWT------

        ************************* IMPORTANT *************************
        NKEY Seed printed below can be used to sign and prove identity.
        NKEYs are sensitive and should be treated as secrets.

        -----BEGIN USER NKEY SEED-----
        \(realSeed)
        ------END USER NKEY SEED------

        *************************************************************

        """

    /// The `sub` claim of the real JWT, read from its payload (not written here by hand).
    static func subjectOfRealJWT() throws -> String {
        let payload = String(realJWT.split(separator: ".")[1])
        var base64 = payload.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        let data = try #require(Data(base64Encoded: base64))
        let claims = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(claims["sub"] as? String)
    }

    @Test func aRealSeedGivesThePublicKeyItsJWTNames() throws {
        let subject = try Self.subjectOfRealJWT()
        #expect(subject.hasPrefix("U") && subject.count == 56)
        let key = try NATSNKey(seed: Self.realSeed)
        #expect(key.publicKey == subject)
        #expect(key.seed == Self.realSeed)
        #expect(try NATSNKey(seed: "  \(Self.realSeed)\n").publicKey == subject)
        #expect(NATSNKey.decodeUserPublicKey(subject)?.count == 32)
        #expect(NATSNKey.decodeUserPublicKey(String(subject.dropLast()) + (subject.hasSuffix("A") ? "B" : "A")) == nil)
        #expect(NATSNKey.encodeUserPublicKey(try #require(NATSNKey.decodeUserPublicKey(subject))) == subject)
    }

    @Test func base32AndCRC16MatchTheirStandards() {
        // RFC 4648 section 10, without padding.
        for (plain, encoded) in [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")] {
            #expect(NATSBase32.encode(Array(plain.utf8)) == encoded)
            #expect(NATSBase32.decode(encoded) == Array(plain.utf8))
        }
        #expect(NATSBase32.decode("MZXW6YTBO") == nil)  // a length no encoding gives
        #expect(NATSBase32.decode("mzxw6") == nil)
        // CRC-16/XMODEM's check value.
        #expect(NATSCRC16.checksum(Array("123456789".utf8)[...]) == 0x31C3)
        #expect(NATSBase64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test func generatedKeysRoundTripAndSignWithTheirPublicKey() throws {
        var publicKeys = Set<String>()
        for _ in 0..<8 {
            let key = NATSNKey.generate()
            #expect(key.seed.count == 58 && key.seed.hasPrefix("SU"))
            #expect(key.publicKey.count == 56 && key.publicKey.hasPrefix("U"))
            #expect(try NATSNKey(seed: key.seed).publicKey == key.publicKey)
            #expect(key.sign(Array("nonce".utf8)).count == 64)
            #expect(!key.signNonce("nonce").contains("=") && key.signNonce("nonce").count == 86)
            publicKeys.insert(key.publicKey)
        }
        #expect(publicKeys.count == 8)
    }

    @Test func malformedSeedsAreRefusedWithoutShowingThem() throws {
        let seed = Self.realSeed
        var chars = Array(seed)
        chars[20] = chars[20] == "A" ? "B" : "A"
        let typo = String(chars)
        // An account seed (prefix byte of an account, 0) with a correct checksum.
        var accountBytes: [UInt8] = [NATSNKey.seedPrefix | 0, 0] + [UInt8](repeating: 7, count: 32)
        let crc = NATSCRC16.checksum(accountBytes[...])
        accountBytes += [UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8)]
        let accountSeed = NATSBase32.encode(accountBytes)
        #expect(accountSeed.hasPrefix("SA"))
        let publicKey = try NATSNKey(seed: seed).publicKey
        for (text, reason) in [
            (typo, "checksum"), (accountSeed, "not a user seed"), (publicKey, "bytes"), (seed.lowercased(), "base32"),
            (String(seed.dropLast(2)), "bytes"), (String(seed.dropLast(7)), "base32"),
        ] {
            let error = #expect(throws: NATSError.self) { try NATSNKey(seed: text) }
            guard case .invalidCredentials(let why)? = error else {
                Issue.record("\(String(describing: error))")
                continue
            }
            #expect(why.contains(reason), "\(why)")
            #expect(!"\(error!)".contains(text) && !"\(error!)".contains(String(text.prefix(12))))
        }
    }

    @Test func aCredsFileGivesItsJWTAndKey() throws {
        for text in [Self.realCreds, Self.realCreds.replacingOccurrences(of: "\n", with: "\r\n")] {
            let credentials = try NATSCredentials(credsFile: text)
            guard case .userJWT(let jwt, let key) = credentials.kind else {
                Issue.record("not a user JWT: \(credentials)")
                continue
            }
            #expect(jwt == Self.realJWT)
            #expect(key.publicKey == (try Self.subjectOfRealJWT()))
            var options = NATSConnectOptions(name: "t")
            credentials.apply(to: &options, nonce: "abc")
            #expect(options.jwt == Self.realJWT && options.sig == key.signNonce("abc") && options.nkey == nil)
        }
    }

    @Test func malformedCredsFilesAreRefusedWithoutShowingTheSeed() throws {
        let noSeed = Self.realCreds.components(separatedBy: "-----BEGIN USER NKEY SEED-----")[0]
        let twoLines = Self.realCreds.replacingOccurrences(of: Self.realSeed + "\n", with: Self.realSeed + "\nextra\n")
        let badSeed = Self.realCreds.replacingOccurrences(of: Self.realSeed, with: String(Self.realSeed.dropLast()) + "A")
        let notJWT = Self.realCreds.replacingOccurrences(of: Self.realJWT, with: "not-a-jwt")
        for (text, reason) in [
            (noSeed, "1 armored block"), (twoLines, "block 2"), (badSeed, "second block"), (notJWT, "not a JWT"), ("", "0 armored blocks"),
        ] {
            let error = #expect(throws: NATSError.self) { try NATSCredentials(credsFile: text) }
            #expect("\(error.map { "\($0)" } ?? "")".contains(reason), "\(String(describing: error))")
            #expect(!"\(error.map { "\($0)" } ?? "")".contains(String(Self.realSeed.prefix(12))))
        }
        let dir = TemporaryDirectory("nats-creds")
        let missing = #expect(throws: NATSError.self) { try NATSCredentials(credsFileAtPath: dir.sub("missing.creds")) }
        #expect("\(missing.map { "\($0)" } ?? "")".contains(dir.sub("missing.creds")))
    }

    @Test func noDescriptionOrReflectionShowsASecret() throws {
        let key = try NATSNKey(seed: Self.realSeed)
        let cases: [(NATSCredentials, [String])] = [
            (.userPassword(user: "alice", password: "pw-Secret-42"), ["pw-Secret-42"]),
            (.token("tok-Secret-42"), ["tok-Secret-42"]),
            (.nkey(key), [Self.realSeed]),
            (.userJWT(Self.realJWT, key: key), [Self.realSeed, Self.realJWT]),
        ]
        for (credentials, secrets) in cases {
            var dumped = ""
            dump(credentials, to: &dumped)
            var dumpedKey = ""
            dump(key, to: &dumpedKey)
            var options = NATSConnectOptions(name: "t")
            credentials.apply(to: &options, nonce: "n")
            let json = String(decoding: options.json(), as: UTF8.self)
            for text in ["\(credentials)", String(reflecting: credentials), dumped, "\(key)", String(reflecting: key), dumpedKey, "\(options)"] {
                for secret in secrets { #expect(!text.contains(secret), "\(text)") }
            }
            // ...while CONNECT itself carries the password and the token.
            if case .userPassword = credentials.kind { #expect(json.contains(#""user":"alice""#) && json.contains(#""pass":"pw-Secret-42""#)) }
            if case .token = credentials.kind { #expect(json.contains(#""auth_token":"tok-Secret-42""#)) }
            if case .nkey = credentials.kind { #expect(json.contains(#""nkey":"\#(key.publicKey)""#) && json.contains(#""sig":""#)) }
        }
        #expect("\(NATSCredentials.userPassword(user: "alice", password: "x"))".contains("alice"))
    }

    @Test func aURLWithCredentialsIsRefusedWithoutShowingThem() {
        let error = #expect(throws: NATSError.self) { try NATSURL(parsing: "nats://alice:pw-Secret-42@127.0.0.1:4222") }
        let text = error.map { "\($0)" } ?? ""
        #expect(!text.contains("pw-Secret-42") && !text.contains("alice") && text.contains("@127.0.0.1:4222"), "\(text)")
    }

    // MARK: The command line's sources

    @Test func theAuthFileGivesOneKindOfCredentials() throws {
        let user = try NATSAuthFile.parse("# for the relay\n\n user = alice \npassword=pw=with=equals\n", path: "f")
        guard case .userPassword(let name, let password) = user.kind else { throw CLIProcessError(description: "\(user)") }
        #expect(name == "alice" && password == "pw=with=equals")
        let token = try NATSAuthFile.parse("token=tok-1\r\n", path: "f")
        guard case .token("tok-1") = token.kind else { throw CLIProcessError(description: "\(token)") }
        let nkey = try NATSAuthFile.parse("nkey-seed=\(Self.realSeed)\n", path: "f")
        guard case .nkey(let key) = nkey.kind else { throw CLIProcessError(description: "\(nkey)") }
        #expect(key.publicKey == (try Self.subjectOfRealJWT()))
    }

    @Test(arguments: [
        ("user=alice\nSecret-Value-1\n", "line 2: not a key=value line"),
        ("user=alice\npasword=Secret-Value-1\n", "line 2: unknown key"),
        ("Secret=Value-1\n", "line 1: unknown key"),
        ("token=Secret-Value-1\ntoken=Secret-Value-1\n", "line 2: token given twice"),
        ("token=\n", "line 1: token is empty"),
        ("user=alice\n", "line 1: user without password"),
        ("password=Secret-Value-1\n", "line 1: password without user"),
        ("token=Secret-Value-1\nuser=a\npassword=b\n", "more than one kind of credentials (user/password, token)"),
        ("# nothing\n", "no credentials in it"),
        ("nkey-seed=Secret-Value-1\n", "line 1: nkey-seed: invalid NATS credentials: the NKey seed is not base32"),
    ])
    func malformedAuthFilesNameTheLineNotTheValue(text: String, expected: String) {
        let error = #expect(throws: CommandFailure.self) { try NATSAuthFile.parse(text, path: "/etc/relay.auth") }
        let message = error?.message ?? ""
        #expect(message.hasPrefix("--nats-auth-file /etc/relay.auth") && message.contains(expected), "\(message)")
        #expect(!message.contains("Secret") && error?.exitCode == 2, "\(message)")
    }

    @Test func theEnvironmentGivesCredentialsUnlessTheyConflict() throws {
        typealias V = NATSAuthenticationOptions.Variable
        let none = try NATSAuthenticationOptions.fromEnvironment(["PATH": "/bin", V.token: ""])
        #expect(none.isNone)
        let user = try NATSAuthenticationOptions.fromEnvironment([V.user: "alice", V.password: "pw"])
        guard case .userPassword("alice", "pw") = user.kind else { throw CLIProcessError(description: "\(user)") }
        let nkey = try NATSAuthenticationOptions.fromEnvironment([V.nkeySeed: Self.realSeed])
        guard case .nkey = nkey.kind else { throw CLIProcessError(description: "\(nkey)") }
        for (environment, expected) in [
            ([V.token: "Secret-1", V.nkeySeed: "Secret-2"], "conflicting NATS credentials in the environment: EVENTLOG_NATS_TOKEN, EVENTLOG_NATS_NKEY_SEED"),
            ([V.user: "alice", V.password: "Secret-1", V.credentials: "/x.creds"], "EVENTLOG_NATS_USER/EVENTLOG_NATS_PASSWORD, EVENTLOG_NATS_CREDENTIALS"),
            ([V.user: "alice"], "EVENTLOG_NATS_USER is set without EVENTLOG_NATS_PASSWORD"),
            ([V.password: "Secret-1"], "EVENTLOG_NATS_PASSWORD is set without EVENTLOG_NATS_USER"),
            ([V.nkeySeed: "Secret-1"], "EVENTLOG_NATS_NKEY_SEED: invalid NATS credentials"),
            ([V.credentials: "/nonexistent/Secret.creds"], "EVENTLOG_NATS_CREDENTIALS: invalid NATS credentials: cannot read"),
        ] {
            let error = #expect(throws: CommandFailure.self) { try NATSAuthenticationOptions.fromEnvironment(environment) }
            let message = error?.message ?? ""
            #expect(message.contains(expected), "\(message)")
            #expect(!message.contains("Secret-"), "\(message)")
        }
    }

    @Test func anOptionWinsOverTheEnvironmentAndTheTwoOptionsExcludeEachOther() throws {
        let dir = TemporaryDirectory("nats-auth-options")
        try "token=from-file\n".write(toFile: dir.sub("auth"), atomically: true, encoding: .utf8)
        try Self.realCreds.write(toFile: dir.sub("user.creds"), atomically: true, encoding: .utf8)
        let environment = [NATSAuthenticationOptions.Variable.token: "from-env"]
        let fromFile = try NATSAuthenticationOptions.parse(["--nats-auth-file", dir.sub("auth")]).credentials(environment: environment)
        guard case .token("from-file") = fromFile.kind else { throw CLIProcessError(description: "\(fromFile)") }
        let fromCreds = try NATSAuthenticationOptions.parse(["--nats-credentials", dir.sub("user.creds")]).credentials(environment: environment)
        guard case .userJWT = fromCreds.kind else { throw CLIProcessError(description: "\(fromCreds)") }
        let fromEnvironment = try NATSAuthenticationOptions.parse([]).credentials(environment: environment)
        guard case .token("from-env") = fromEnvironment.kind else { throw CLIProcessError(description: "\(fromEnvironment)") }
        let both = try NATSAuthenticationOptions.parse(["--nats-auth-file", dir.sub("auth"), "--nats-credentials", dir.sub("user.creds")])
        let error = #expect(throws: CommandFailure.self) { try both.credentials(environment: [:]) }
        #expect(error?.message.contains("--nats-auth-file and --nats-credentials exclude each other") == true)
    }
}
