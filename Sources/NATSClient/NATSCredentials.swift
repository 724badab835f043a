/// How a connection proves who it is to a NATS server: nothing, a user and password, a token, a user NKey, or a user
/// JWT with its NKey (a `.creds` file, for a server in operator mode).
///
/// The secrets (a password, a token, an NKey seed) go into CONNECT only: `description`, `debugDescription` and the
/// reflection of this value (`dump`, a debugger) show the kind and the user name or public key, never a secret, and
/// no `NATSError` carries one. A value; `Sendable`.
public struct NATSCredentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    enum Kind: Sendable {
        case none
        case userPassword(user: String, password: String)
        case token(String)
        case nkey(NATSNKey)
        case userJWT(jwt: String, key: NATSNKey)
    }

    let kind: Kind

    init(kind: Kind) { self.kind = kind }

    /// No authentication (the server must allow anonymous clients).
    public static let none = NATSCredentials(kind: .none)

    /// A user name and password (CONNECT `user` and `pass`; the server's `authorization { user, password }` or
    /// `users` list).
    public static func userPassword(user: String, password: String) -> NATSCredentials {
        NATSCredentials(kind: .userPassword(user: user, password: password))
    }

    /// A token (CONNECT `auth_token`; the server's `authorization { token }`).
    public static func token(_ token: String) -> NATSCredentials { NATSCredentials(kind: .token(token)) }

    /// A user NKey: CONNECT carries its public key (`nkey`) and its signature of the server's nonce (`sig`).
    public static func nkey(_ key: NATSNKey) -> NATSCredentials { NATSCredentials(kind: .nkey(key)) }

    /// A user JWT signed by its account, and the user's NKey: CONNECT carries the JWT (`jwt`) and the key's signature
    /// of the server's nonce (`sig`). What a `.creds` file holds (`init(credsFile:)`).
    public static func userJWT(_ jwt: String, key: NATSNKey) -> NATSCredentials {
        NATSCredentials(kind: .userJWT(jwt: jwt, key: key))
    }

    /// True for `.none`.
    public var isNone: Bool {
        if case .none = kind { return true }
        return false
    }

    /// CONNECT's authentication fields for a server whose INFO carried `nonce` (nil: none; an NKey signs the empty
    /// string then, and the server, which expects no signature, ignores it).
    func apply(to options: inout NATSConnectOptions, nonce: String?) {
        switch kind {
        case .none: break
        case .userPassword(let user, let password):
            options.user = user
            options.pass = password
        case .token(let token): options.authToken = token
        case .nkey(let key):
            options.nkey = key.publicKey
            options.sig = key.signNonce(nonce ?? "")
        case .userJWT(let jwt, let key):
            options.jwt = jwt
            options.sig = key.signNonce(nonce ?? "")
        }
    }

    /// The kind, and the user name or public key; never a password, token or seed.
    public var description: String {
        switch kind {
        case .none: return "no credentials"
        case .userPassword(let user, _): return "user \(user.debugDescription) with a password"
        case .token: return "a token"
        case .nkey(let key): return "the user NKey \(key.publicKey)"
        case .userJWT(_, let key): return "a user JWT for \(key.publicKey)"
        }
    }

    /// As `description`: no secret.
    public var debugDescription: String { "NATSCredentials(\(description))" }

    /// As `description`: a `dump` or a debugger shows no secret.
    public var customMirror: Mirror { Mirror(self, children: ["kind": description]) }
}
