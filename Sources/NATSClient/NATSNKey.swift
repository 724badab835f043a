import Crypto
import struct Foundation.Data

/// A NATS user NKey: an Ed25519 key pair made from a user seed (`SU…`), as nats-io/nkeys encodes it.
///
/// The text forms are base32 (RFC 4648 alphabet, no padding) of prefix bytes, the raw key and a CRC16
/// (XMODEM: polynomial 0x1021, initial value 0, little-endian after the key):
/// - a user seed: two prefix bytes (the seed prefix 18 << 3 with the user prefix 20 << 3 spread over both, so the
///   text starts `SU`), the 32-byte Ed25519 seed, the CRC16: 58 characters;
/// - a user public key: the prefix byte 20 << 3 (`U`), the 32-byte Ed25519 public key, the CRC16: 56 characters.
///
/// The seed is a secret: `description`, `debugDescription` and the reflection of this value show the public key
/// only, and no error thrown here contains the seed's text. Immutable and `Sendable`.
public struct NATSNKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The prefix byte of a seed (base32 `S`).
    static let seedPrefix: UInt8 = 18 << 3
    /// The prefix byte of a user (base32 `U`).
    static let userPrefix: UInt8 = 20 << 3

    private let privateKey: Curve25519.Signing.PrivateKey
    /// The user's public key as NATS writes it (`U…`, 56 characters): what a server's `nkey:` entry names.
    public let publicKey: String

    /// The key pair of a user seed's text (`SU…`; surrounding whitespace is ignored).
    ///
    /// - Throws: `NATSError.invalidCredentials` when the text is not base32, its checksum does not match, or it is
    ///   not a user seed (an account or operator seed, a public key); the error never contains the text.
    public init(seed text: String) throws(NATSError) {
        let trimmed = text.trimmingASCIIWhitespace()
        guard let raw = NATSBase32.decode(trimmed) else {
            throw .invalidCredentials("the NKey seed is not base32 (A-Z, 2-7, a whole number of bytes)")
        }
        guard raw.count == 36 else {
            throw .invalidCredentials("the NKey seed has \(raw.count) bytes, a user seed has 36 (58 characters starting SU)")
        }
        guard NATSCRC16.checksum(raw[0..<34]) == UInt16(raw[34]) | UInt16(raw[35]) << 8 else {
            throw .invalidCredentials("the NKey seed's checksum does not match (a typing error or a truncated seed?)")
        }
        let kind = (raw[0] & 0b111) << 5 | (raw[1] & 0b1111_1000) >> 3
        guard raw[0] & 0b1111_1000 == Self.seedPrefix, kind == Self.userPrefix else {
            throw .invalidCredentials("the NKey seed is not a user seed (it must start with SU)")
        }
        try self.init(rawSeed: Array(raw[2..<34]))
    }

    /// The key pair of a raw 32-byte Ed25519 seed.
    ///
    /// - Throws: `NATSError.invalidCredentials` when `rawSeed` is not 32 bytes.
    public init(rawSeed: [UInt8]) throws(NATSError) {
        do {
            privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: rawSeed)
        } catch {
            throw .invalidCredentials("an Ed25519 seed has 32 bytes, got \(rawSeed.count)")
        }
        publicKey = Self.encodeUserPublicKey(Array(privateKey.publicKey.rawRepresentation))
    }

    /// A new random user key pair (for tests and tools: its seed is `seed`).
    public static func generate() -> NATSNKey {
        NATSNKey(privateKey: Curve25519.Signing.PrivateKey())
    }

    private init(privateKey: Curve25519.Signing.PrivateKey) {
        self.privateKey = privateKey
        publicKey = Self.encodeUserPublicKey(Array(privateKey.publicKey.rawRepresentation))
    }

    /// The seed's text (`SU…`, 58 characters): a secret, for writing a test's or a tool's key file.
    public var seed: String {
        let raw = Array(privateKey.rawRepresentation)
        var bytes: [UInt8] = [Self.seedPrefix | Self.userPrefix >> 5, (Self.userPrefix & 0b1_1111) << 3] + raw
        let crc = NATSCRC16.checksum(bytes[...])
        bytes += [UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8)]
        return NATSBase32.encode(bytes)
    }

    /// The Ed25519 signature of `message` (64 bytes).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        // Signing with a valid key does not fail (BoringSSL's ED25519_sign returns 1).
        (try? Array(privateKey.signature(for: message))) ?? []
    }

    /// What CONNECT's `sig` carries for `nonce`: the signature of its UTF-8 bytes, base64url without padding.
    public func signNonce(_ nonce: String) -> String {
        NATSBase64URL.encode(sign(Array(nonce.utf8)))
    }

    /// `U…`: a raw 32-byte Ed25519 public key as a NATS user public key.
    public static func encodeUserPublicKey(_ raw: [UInt8]) -> String {
        var bytes = [userPrefix] + raw
        let crc = NATSCRC16.checksum(bytes[...])
        bytes += [UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8)]
        return NATSBase32.encode(bytes)
    }

    /// The raw 32-byte Ed25519 public key of a user public key's text, nil when it is not one (bad base32, checksum
    /// or prefix).
    public static func decodeUserPublicKey(_ text: String) -> [UInt8]? {
        guard let raw = NATSBase32.decode(text), raw.count == 35, raw[0] == userPrefix,
            NATSCRC16.checksum(raw[0..<33]) == UInt16(raw[33]) | UInt16(raw[34]) << 8
        else { return nil }
        return Array(raw[1..<33])
    }

    /// The public key only: `NATSNKey(U…)`.
    public var description: String { "NATSNKey(\(publicKey))" }
    /// The public key only, as `description`.
    public var debugDescription: String { description }
    /// The public key only: a `dump` or a debugger shows no seed.
    public var customMirror: Mirror { Mirror(self, children: ["publicKey": publicKey]) }
}

/// Base32 as NATS uses it: the RFC 4648 alphabet, no padding.
enum NATSBase32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int(buffer >> UInt32(bits) & 0x1F)])
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 { out.append(alphabet[Int(buffer << UInt32(5 - bits) & 0x1F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text`, nil for a character outside the alphabet or a length no encoding produces.
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let value: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = c - UInt8(ascii: "A")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = c - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = buffer << 5 | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        // Leftover bits are padding: fewer than 5 of them, all zero (as Go's decoder without padding requires).
        guard bits < 5, buffer == 0 else { return nil }
        return out
    }
}

/// CRC16 as nats-io/nkeys computes it (CCITT, XMODEM: polynomial 0x1021, initial value 0, no reflection).
enum NATSCRC16 {
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}

/// Base64url without padding (RFC 4648 §5), as NATS signatures and JWTs use it.
enum NATSBase64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }
}

extension String {
    /// Without leading and trailing spaces, tabs, CRs and LFs.
    func trimmingASCIIWhitespace() -> String {
        let isSpace = { (c: Character) in c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
