import CEddySupport

/// Personal data as keys (`key: {field: email, hash: sha256, salt: ${EDDY_KEY_SALT}}`): the
/// entity key is the lowercase hex HMAC-SHA256 of the raw key with the salt as the HMAC key,
/// so Redis, the state and every output hold no raw identifier. Readers (`eddy get`, HTTP)
/// hash the key they are given the same way, so callers still ask by the raw key.
///
/// The salt is a secret: never printed (``description`` hides it).
public struct KeyHashing: Sendable, Equatable, CustomStringConvertible {
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256
    }

    public var algorithm: Algorithm
    public var salt: [UInt8]

    /// A shorter salt is refused by the topology loader: it could be guessed.
    public static let minimumSaltBytes = 16

    /// Hex digits of a hashed key.
    public static let hexLength = 64

    public init(algorithm: Algorithm = .sha256, salt: [UInt8]) {
        self.algorithm = algorithm
        self.salt = salt
    }

    public var description: String { "hmac-\(algorithm.rawValue) (salt ***)" }

    /// The entity key of `raw` (64 hex digits).
    public func entityKey(_ raw: some StringProtocol) -> String {
        let hasher = KeyHasher(self)
        var out = [UInt8](repeating: 0, count: Self.hexLength)
        var text = String(raw)
        text.withUTF8 { bytes in
            out.withUnsafeMutableBufferPointer { _ = hasher.hash(UnsafeRawBufferPointer(bytes), into: $0.baseAddress!) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One HMAC context with the salt set (OpenSSL's EVP_MAC), reused for every key hashed; one per
/// thread (a decoder's).
public final class KeyHasher {
    private let context: OpaquePointer

    public init(_ hashing: KeyHashing) {
        guard let c = hashing.salt.withUnsafeBytes({ eddy_key_hmac_new($0.baseAddress, UInt(hashing.salt.count)) }) else {
            fatalError("OpenSSL has no HMAC-SHA256 (libcrypto)")
        }
        context = c
    }

    deinit { eddy_key_hmac_free(context) }

    /// Writes the 64 hex digits of `key`'s HMAC to `out`.
    @inline(__always)
    public func hash(_ key: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Bool {
        eddy_key_hmac_hex(context, key.baseAddress, UInt(key.count), out) == 1
    }
}
