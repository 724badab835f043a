import Foundation

extension NATSCredentials {
    /// The user JWT and NKey of a `.creds` file's text (as `nsc` writes it): the JWT between the armor lines
    /// `-----BEGIN NATS USER JWT-----` and `------END NATS USER JWT------`, then the user seed between
    /// `-----BEGIN USER NKEY SEED-----` and `------END USER NKEY SEED------`. As in nats-io/nkeys, an armor line is
    /// three or more dashes, anything, three or more dashes; the first armored block is the JWT, the second the seed;
    /// other lines (the warning text, blank lines) are ignored. LF or CRLF line ends.
    ///
    /// - Throws: `NATSError.invalidCredentials` when a block is missing or is not one line between its armor lines,
    ///   when the JWT is not three base64url parts, or when the seed is not a user seed. The error never contains the
    ///   file's text.
    public init(credsFile text: String) throws(NATSError) {
        var blocks: [String] = []
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { String($0).trimmingASCIIWhitespace() }[...]
        while let line = lines.popFirst() {
            guard Self.isArmor(line) else { continue }
            // An opening armor line: one line of content, then a closing armor line.
            guard let content = lines.popFirst(), !content.isEmpty, !Self.isArmor(content),
                let closing = lines.popFirst(), Self.isArmor(closing)
            else {
                throw .invalidCredentials("the credentials file's block \(blocks.count + 1) is not one line between two armor lines (-----BEGIN …----- and ------END …------)")
            }
            blocks.append(content)
        }
        guard blocks.count >= 2 else {
            throw .invalidCredentials("the credentials file holds \(blocks.count) armored block\(blocks.count == 1 ? "" : "s"), expected the user JWT and the user NKey seed")
        }
        let jwt = blocks[0]
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        let base64URL = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(base64URL.contains) }) else {
            throw .invalidCredentials("the credentials file's first block is not a JWT (three base64url parts joined by dots)")
        }
        let key: NATSNKey
        do {
            key = try NATSNKey(seed: blocks[1])
        } catch {
            throw .invalidCredentials("the credentials file's second block: \(error.reason)")
        }
        self = .userJWT(jwt, key: key)
    }

    /// The credentials of the `.creds` file at `path` (`init(credsFile:)`).
    ///
    /// - Throws: `NATSError.invalidCredentials` naming the path when it cannot be read or does not parse (never its
    ///   contents).
    public init(credsFileAtPath path: String) throws(NATSError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .invalidCredentials("cannot read the credentials file \(path): \((error as NSError).localizedDescription)")
        }
        do {
            try self.init(credsFile: text)
        } catch {
            throw .invalidCredentials("\(path): \(error.reason)")
        }
    }

    /// Three or more dashes, anything, three or more dashes.
    static func isArmor(_ line: String) -> Bool {
        line.hasPrefix("---") && line.hasSuffix("---") && line.utf8.count >= 6
    }
}
