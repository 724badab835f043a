import Foundation
import NATSClient

/// The file of `--nats-auth-file`: `key=value` lines giving one kind of NATS credentials, `user=` and `password=`,
/// or `token=`, or `nkey-seed=`. Blank lines and lines starting with `#` are skipped; spaces and tabs around keys and
/// values are trimmed; each key at most once; an unknown key, a line without `=` or an empty value is an error.
/// Errors name the file and the line, never the line's text (it may be a secret).
enum NATSAuthFile {
    static let keys = ["user", "password", "token", "nkey-seed"]

    /// The credentials of the file at `path`.
    ///
    /// - Throws: `CommandFailure` (exit 2) when it cannot be read or does not parse.
    static func read(path: String) throws(CommandFailure) -> NATSCredentials {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CommandFailure("cannot read \(NATSAuthenticationOptions.authFileOption) \(path): \((error as NSError).localizedDescription)")
        }
        return try parse(text, path: path)
    }

    /// The credentials of a file's `text`; `path` names it in errors.
    static func parse(_ text: String, path: String) throws(CommandFailure) -> NATSCredentials {
        func failure(_ line: Int?, _ why: String) -> CommandFailure {
            CommandFailure("\(NATSAuthenticationOptions.authFileOption) \(path)\(line.map { " line \($0)" } ?? ""): \(why)")
        }
        var values: [String: (value: String, line: Int)] = [:]
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let line = String(raw).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw failure(number, "not a key=value line (keys: \(keys.joined(separator: ", ")))")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            // The key is not echoed either: a line without its key may start with a secret that holds a `=`.
            guard keys.contains(key) else { throw failure(number, "unknown key (keys: \(keys.joined(separator: ", ")))") }
            guard values[key] == nil else { throw failure(number, "\(key) given twice") }
            guard !value.isEmpty else { throw failure(number, "\(key) is empty") }
            values[key] = (value, number)
        }
        let user = values["user"]
        let password = values["password"]
        let kinds = [user != nil || password != nil ? "user/password" : nil, values["token"].map { _ in "token" },
                     values["nkey-seed"].map { _ in "nkey-seed" }].compactMap { $0 }
        guard kinds.count <= 1 else { throw failure(nil, "more than one kind of credentials (\(kinds.joined(separator: ", "))): give one") }
        if let user, let password { return .userPassword(user: user.value, password: password.value) }
        if let user { throw failure(user.line, "user without password") }
        if let password { throw failure(password.line, "password without user") }
        if let token = values["token"] { return .token(token.value) }
        if let seed = values["nkey-seed"] {
            do {
                return .nkey(try NATSNKey(seed: seed.value))
            } catch {
                throw failure(seed.line, "nkey-seed: \(error)")
            }
        }
        throw failure(nil, "no credentials in it (keys: \(keys.joined(separator: ", ")))")
    }
}
