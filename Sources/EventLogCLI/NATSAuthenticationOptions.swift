import ArgumentParser
import Foundation
import NATSClient

/// `--nats-auth-file` and `--nats-credentials` of `relay` and `inbox`, and the `EVENTLOG_NATS_*` environment
/// variables: where the NATS credentials come from. Secrets are read from files or the environment only, never from
/// the command line (which `ps` shows to every user of the machine), and never printed: errors name the file, line
/// or variable, not the value.
struct NATSAuthenticationOptions: ParsableArguments {
    static let authFileOption = "--nats-auth-file"
    static let credentialsOption = "--nats-credentials"

    /// The environment variables read, in the order their conflicts are reported.
    enum Variable {
        static let user = "EVENTLOG_NATS_USER"
        static let password = "EVENTLOG_NATS_PASSWORD"
        static let token = "EVENTLOG_NATS_TOKEN"
        static let nkeySeed = "EVENTLOG_NATS_NKEY_SEED"
        static let credentials = "EVENTLOG_NATS_CREDENTIALS"
    }

    /// The help's paragraph on authentication (both commands).
    static let help = """
        Authentication: --nats-auth-file FILE reads a file of key=value lines (blank lines and lines \
        starting with # are skipped, spaces around keys and values trimmed) holding either user= and \
        password=, or token=, or nkey-seed= (a user NKey seed, SU…: the server's nonce is signed with it). \
        --nats-credentials FILE reads a .creds file (a user JWT and its NKey seed, for a server in operator \
        mode). Without either option, the environment is read: \(Variable.user) and \(Variable.password), \
        or \(Variable.token), or \(Variable.nkeySeed), or \(Variable.credentials) (the path of a .creds \
        file). An option wins over the environment (the variables are then ignored); both options together, \
        or two kinds of credentials in the environment, are a usage error (exit 2). Secrets are never taken \
        from the command line (ps shows it to every user): --nats with user:password@ is refused. Credentials \
        the server refuses end the command at once with exit 2 (they are not retried). TLS is not supported \
        by this build: a server that requires it is refused at once (exit 2).
        """

    @Option(
        name: .customLong("nats-auth-file"),
        help: ArgumentHelp("NATS credentials: user= and password=, or token=, or nkey-seed= lines.", valueName: "file"))
    var authFile: String?

    @Option(
        name: .customLong("nats-credentials"),
        help: ArgumentHelp("A NATS .creds file (user JWT and NKey seed).", valueName: "file"))
    var credentialsFile: String?

    /// A usage error for a `--nats` URL with user information, with advice; nil for any other text.
    static func refuseCredentialsInURL(_ url: String) -> ValidationError? {
        guard url.contains("@") else { return nil }
        return ValidationError(
            "--nats: credentials in the URL are refused (the command line shows in ps): put them in \(authFileOption) FILE, or in \(Variable.user) and \(Variable.password)"
        )
    }

    /// The credentials the options, else the environment, give (`.none` when neither gives any).
    ///
    /// - Throws: `CommandFailure` (exit 2) for both options at once, conflicting or incomplete variables, a file that
    ///   cannot be read or does not parse; its message names the option, file, line or variable, never a secret.
    func credentials(environment: [String: String] = ProcessInfo.processInfo.environment) throws(CommandFailure) -> NATSCredentials {
        switch (authFile, credentialsFile) {
        case (.some, .some):
            throw CommandFailure("\(Self.authFileOption) and \(Self.credentialsOption) exclude each other: give one")
        case (.some(let path), nil):
            return try NATSAuthFile.read(path: path)
        case (nil, .some(let path)):
            return try Self.credsFile(path, source: Self.credentialsOption)
        case (nil, nil):
            return try Self.fromEnvironment(environment)
        }
    }

    /// The credentials of the `EVENTLOG_NATS_*` variables (an empty variable counts as unset).
    static func fromEnvironment(_ environment: [String: String]) throws(CommandFailure) -> NATSCredentials {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let user = value(Variable.user)
        let password = value(Variable.password)
        var kinds: [String] = []
        if user != nil || password != nil { kinds.append("\(Variable.user)/\(Variable.password)") }
        if value(Variable.token) != nil { kinds.append(Variable.token) }
        if value(Variable.nkeySeed) != nil { kinds.append(Variable.nkeySeed) }
        if value(Variable.credentials) != nil { kinds.append(Variable.credentials) }
        guard kinds.count <= 1 else {
            throw CommandFailure("conflicting NATS credentials in the environment: \(kinds.joined(separator: ", ")): set one kind")
        }
        if let user, let password { return .userPassword(user: user, password: password) }
        if user != nil { throw CommandFailure("\(Variable.user) is set without \(Variable.password)") }
        if password != nil { throw CommandFailure("\(Variable.password) is set without \(Variable.user)") }
        if let token = value(Variable.token) { return .token(token) }
        if let seed = value(Variable.nkeySeed) {
            do {
                return .nkey(try NATSNKey(seed: seed))
            } catch {
                throw CommandFailure("\(Variable.nkeySeed): \(error)")
            }
        }
        if let path = value(Variable.credentials) { return try credsFile(path, source: Variable.credentials) }
        return .none
    }

    /// The `.creds` file at `path`, named by `source` (an option or a variable) in errors.
    static func credsFile(_ path: String, source: String) throws(CommandFailure) -> NATSCredentials {
        do {
            return try NATSCredentials(credsFileAtPath: path)
        } catch {
            throw CommandFailure("\(source): \(error)")
        }
    }
}
