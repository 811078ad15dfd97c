import EddyRedis
import Foundation

/// A throwaway certificate authority and certificates made with the `openssl`
/// CLI, for TLS tests and benchmarks against `redis-server --tls-port`:
/// a server certificate for 127.0.0.1 and localhost, an expired one, a client
/// certificate (mutual TLS) and a second, unrelated CA (a "wrong CA").
public struct TestCertificates: Sendable {
    public let directory: String
    public var caFile: String { directory + "/ca.crt" }
    public var otherCAFile: String { directory + "/other-ca.crt" }
    public var serverCertFile: String { directory + "/server.crt" }
    public var serverKeyFile: String { directory + "/server.key" }
    public var expiredCertFile: String { directory + "/expired.crt" }
    public var clientCertFile: String { directory + "/client.crt" }
    public var clientKeyFile: String { directory + "/client.key" }

    /// Makes every file in `directory` (created if needed). Throws with openssl's output on failure.
    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let san = directory + "/san.cnf"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: san, atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
             "-subj", "/CN=Eddy Test CA"],
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.crt",
             "-days", "30", "-subj", "/CN=Some Other CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt",
             "-days", "30", "-extfile", "san.cnf"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "expired.crt",
             "-days", "-1", "-extfile", "san.cnf"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=eddy-client"],
            ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt",
             "-days", "30"],
        ]
        for step in steps {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["openssl"] + step
            p.currentDirectoryURL = URL(fileURLWithPath: directory)
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw TestCertificatesError("openssl \(step.joined(separator: " ")) failed: \(text)")
            }
        }
    }

    /// `redis-server` options for a TLS port (a free one) with `certFile` (the valid server
    /// certificate unless given), asking clients for certificates when `requireClientCertificates`.
    public func redisOptions(certFile: String? = nil, requireClientCertificates: Bool = false) -> [String: String] {
        var options = ["tls-cert-file": certFile ?? serverCertFile, "tls-key-file": serverKeyFile,
                       "tls-ca-cert-file": caFile, "tls-auth-clients": requireClientCertificates ? "yes" : "no"]
        if let port = FreePort.find() { options["tls-port"] = String(port) }
        return options
    }

    /// Client settings that trust this CA.
    public var clientTLS: RedisTLS { RedisTLS(caFile: caFile) }
}

public struct TestCertificatesError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
