import Foundation
import NIOSSL

/// TLS on the HTTP port (`--tls-cert`, `--tls-key`): a PEM certificate chain and its private
/// key, loaded and checked once at start so that a wrong file fails there, naming the file and
/// the fix, rather than at the first handshake. The handshakes themselves are swift-nio-ssl's
/// (BoringSSL), through HummingbirdTLS.
public struct ServerTLS: Sendable {
    public let certificatePath: String
    public let keyPath: String
    /// The server configuration (TLS 1.2 and 1.3, swift-nio-ssl's default ciphers).
    public let configuration: TLSConfiguration

    /// Reads and checks both files: each must be readable PEM, the certificate not expired,
    /// and the key must be the certificate's.
    public init(certificatePath: String, keyPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        let fix = "give --tls-cert a PEM certificate chain (server certificate first) and --tls-key its PEM private key"
        let chain = try Self.certificates(certificatePath, fix: fix)
        let key = try Self.privateKey(keyPath, fix: fix)
        if chain[0].notValidAfter < time(nil) {
            throw ServerTLSError("--tls-cert \(certificatePath): the certificate expired at \(Self.date(chain[0].notValidAfter)); renew it")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        do {
            // Builds an SSL_CTX: this is where BoringSSL checks that the key matches the certificate.
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerTLSError("--tls-key \(keyPath) is not the private key of the certificate in --tls-cert \(certificatePath) (\(error)); \(fix)")
        }
        self.configuration = configuration
    }

    static func certificates(_ path: String, fix: String) throws -> [NIOSSLCertificate] {
        let bytes = try read(path, option: "--tls-cert", fix: fix)
        guard let chain = try? NIOSSLCertificate.fromPEMBytes(bytes), !chain.isEmpty else {
            throw ServerTLSError("--tls-cert \(path) holds no PEM certificate (-----BEGIN CERTIFICATE-----); \(fix)")
        }
        return chain
    }

    static func privateKey(_ path: String, fix: String) throws -> NIOSSLPrivateKey {
        let bytes = try read(path, option: "--tls-key", fix: fix)
        guard let key = try? NIOSSLPrivateKey(bytes: bytes, format: .pem) else {
            let encrypted = String(decoding: bytes, as: UTF8.self).contains("ENCRYPTED")
            throw ServerTLSError(encrypted
                ? "--tls-key \(path) is encrypted; give an unencrypted key (openssl pkey -in \(path) -out KEY), readable only by eddy's user"
                : "--tls-key \(path) holds no PEM private key (-----BEGIN PRIVATE KEY-----); \(fix)")
        }
        return key
    }

    static func read(_ path: String, option: String, fix: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ServerTLSError("\(option) \(path): no such file; \(fix)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ServerTLSError("\(option) \(path) cannot be read (permissions?); make it readable by the user eddy runs as")
        }
        return Array(data)
    }

    static func date(_ t: time_t) -> String {
        Date(timeIntervalSince1970: TimeInterval(t)).ISO8601Format()
    }
}

public struct ServerTLSError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
