import EddyDevKit
import Foundation
import Testing

/// `eddy serve --tls-cert --tls-key`: HTTPS with a CA and certificates the test makes with the
/// openssl CLI, read with curl; start errors naming the file and the fix; a plaintext client
/// against the TLS port; head limits answered 414 and 431 in order after earlier requests.
@Suite(.serialized) struct ServeTLSTests {
    /// `curl ARGS URL`: (exit status, body, HTTP status, stderr).
    static func curl(_ args: [String]) throws -> (exit: Int32, body: String, status: Int, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        return (p.terminationStatus, lines.dropLast().joined(separator: "\n"), status, errText)
    }

    /// Polls `url` with curl until it answers 200.
    static func waitReady(_ args: [String], _ process: Background) -> Bool {
        for _ in 0..<150 {
            if let r = try? curl(args), r.status == 200 { return true }
            if !process.isRunning { return false }
            usleep(100_000)
        }
        return false
    }

    @Test("HTTPS: features, POST and health over TLS with the test CA; no CA or plaintext fails; tokens work over TLS")
    func serveOverTLS() throws {
        let dir = try Harness.tempDir()
        let certs = try TestCertificates(directory: dir.appendingPathComponent("tls").path)
        let redis = try RedisServerProcess()
        let tokenFile = dir.appendingPathComponent("tokens").path
        try "secret-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", redis.url.description, "--tls-cert", certs.serverCertFile,
                                    "--tls-key", certs.serverKeyFile, "--auth-token-file", tokenFile, "--auth-open-health"],
                                   in: dir, name: "serve")
        let base = "https://127.0.0.1:\(port)"
        let ca = ["--cacert", certs.caFile]
        #expect(Self.waitReady(ca + [base + "/readyz"], serve), "\(serve.log)")
        #expect(serve.log.contains("on https://127.0.0.1:\(port)"), "\(serve.log)")
        let auth = ["-H", "Authorization: Bearer secret-token"]

        // A single-key read (the event-loop fast path, twice: the first may go through a lane).
        for _ in 0..<2 {
            let one = try Self.curl(ca + auth + [base + "/v1/features/clickstream/nobody"])
            #expect(one.exit == 0 && one.status == 404 && one.body == "{\"key\":\"nobody\",\"found\":false}", "\(one)")
        }
        let post = try Self.curl(ca + auth + ["-X", "POST", "--data", "[\"a\",\"b\"]", base + "/v1/features/clickstream"])
        #expect(post.status == 200 && post.body == "[{\"key\":\"a\",\"found\":false},{\"key\":\"b\",\"found\":false}]", "\(post)")
        #expect(try Self.curl(ca + [base + "/v1/features/clickstream/nobody"]).status == 401)
        // localhost is in the certificate's names too.
        #expect(try Self.curl(ca + ["https://localhost:\(port)/healthz"]).status == 200)

        // Without the CA curl refuses the certificate.
        let untrusted = try Self.curl([base + "/healthz"])
        #expect(untrusted.exit != 0 && untrusted.stderr.contains("certificate"), "\(untrusted)")
        // A plaintext client gets no HTTP answer from the TLS port.
        let plain = ServeAuthTests.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(!plain.contains("HTTP/1.1"), "\(plain.prefix(80))")
        let plainCurl = try Self.curl(["http://127.0.0.1:\(port)/healthz"])
        #expect(plainCurl.exit != 0 && plainCurl.status == 0, "\(plainCurl)")
        // And the server still answers TLS clients afterwards.
        #expect(try Self.curl(ca + [base + "/healthz"]).status == 200)

        serve.signal(SIGTERM)
        #expect(serve.wait(seconds: 10) == 0, "\(serve.log)")
    }

    @Test("a missing, unreadable-as-PEM, mismatched or expired certificate or key fails at start naming the file and the fix")
    func startErrors() throws {
        let dir = try Harness.tempDir()
        let certs = try TestCertificates(directory: dir.appendingPathComponent("tls").path)
        func serve(_ tls: [String]) throws -> (status: Int32, stderr: String) {
            try Harness.run(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:0", "--redis", "redis://127.0.0.1:1"] + tls,
                            in: dir)
        }
        let missing = try serve(["--tls-cert", "/nonexistent/server.crt", "--tls-key", certs.serverKeyFile])
        #expect(missing.status != 0 && missing.stderr.contains("--tls-cert /nonexistent/server.crt: no such file; give --tls-cert a PEM certificate chain"),
                "\(missing.stderr)")
        let missingKey = try serve(["--tls-cert", certs.serverCertFile, "--tls-key", "/nonexistent/server.key"])
        #expect(missingKey.status != 0 && missingKey.stderr.contains("--tls-key /nonexistent/server.key: no such file"), "\(missingKey.stderr)")
        let notCert = try serve(["--tls-cert", certs.serverKeyFile, "--tls-key", certs.serverKeyFile])
        #expect(notCert.status != 0 && notCert.stderr.contains("--tls-cert \(certs.serverKeyFile) holds no PEM certificate"), "\(notCert.stderr)")
        let notKey = try serve(["--tls-cert", certs.serverCertFile, "--tls-key", certs.caFile])
        #expect(notKey.status != 0 && notKey.stderr.contains("--tls-key \(certs.caFile) holds no PEM private key"), "\(notKey.stderr)")
        let mismatch = try serve(["--tls-cert", certs.serverCertFile, "--tls-key", certs.clientKeyFile])
        #expect(mismatch.status != 0 && mismatch.stderr.contains("--tls-key \(certs.clientKeyFile) is not the private key of the certificate in --tls-cert \(certs.serverCertFile)"),
                "\(mismatch.stderr)")
        let expired = try serve(["--tls-cert", certs.expiredCertFile, "--tls-key", certs.serverKeyFile])
        #expect(expired.status != 0 && expired.stderr.contains("the certificate expired at") && expired.stderr.contains("renew it"),
                "\(expired.stderr)")
        let alone = try serve(["--tls-cert", certs.serverCertFile])
        #expect(alone.status != 0 && alone.stderr.contains("--tls-cert needs --tls-key"), "\(alone.stderr)")
        // The worker's port takes the same options, and the same checks.
        let worker = try Harness.run(["run", "clickstream", "--brokers", "127.0.0.1:1", "--redis", "redis://127.0.0.1:1",
                                      "--http", "127.0.0.1:0", "--tls-cert", "/nonexistent/w.crt", "--tls-key", certs.serverKeyFile], in: dir)
        #expect(worker.status != 0 && worker.stderr.contains("--tls-cert /nonexistent/w.crt: no such file"), "\(worker.stderr)")
        let noHTTP = try Harness.run(["run", "clickstream", "--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile], in: dir)
        #expect(noHTTP.status != 0 && noHTTP.stderr.contains("give --http HOST:PORT too"), "\(noHTTP.stderr)")
    }

    /// The statuses of every response in `text`, in order.
    static func statuses(_ text: String) -> [Int] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    @Test("head limits: request line over 8 KiB is 414; a header line over 8 KiB, a head over 16 KiB, over 100 fields or past the decoder's 64 KiB is 431; earlier pipelined requests are answered first")
    func headLimits() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", redis.url.description], in: dir, name: "serve")
        #expect(Self.waitReady(["http://127.0.0.1:\(port)/readyz"], serve), "\(serve.log)")
        // Warm the fast path (its library check) so the pipelined reads below take it.
        _ = try Self.curl(["http://127.0.0.1:\(port)/v1/features/clickstream/nokey"])

        let longTarget = "GET /v1/features/clickstream/\(String(repeating: "k", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n"
        let uri = ServeAuthTests.raw(port, Array(longTarget.utf8))
        #expect(uri.hasPrefix("HTTP/1.1 414 URI Too Long") && uri.lowercased().contains("connection: close") && uri.contains("request line"),
                "\(uri.prefix(200))")
        // Just under the limit is served (404: no such entity).
        let fits = "GET /v1/features/clickstream/\(String(repeating: "k", count: 8000)) HTTP/1.1\r\nHost: x\r\n\r\n"
        #expect(ServeAuthTests.raw(port, Array((fits + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").utf8))
            .hasPrefix("HTTP/1.1 404"))

        let bigField = ServeAuthTests.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 9000))\r\n\r\n".utf8))
        #expect(bigField.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large") && bigField.lowercased().contains("x-big"), "\(bigField.prefix(200))")
        let twenty = (0..<20).map { "X-\($0): \(String(repeating: "a", count: 1000))\r\n" }.joined()
        let bigHead = ServeAuthTests.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\(twenty)\r\n".utf8))
        #expect(bigHead.hasPrefix("HTTP/1.1 431") && bigHead.contains("request head is"), "\(bigHead.prefix(200))")
        let many = (0..<150).map { "X-\($0): a\r\n" }.joined()
        let manyFields = ServeAuthTests.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\(many)\r\n".utf8))
        #expect(manyFields.hasPrefix("HTTP/1.1 431") && manyFields.contains("header fields"), "\(manyFields.prefix(200))")
        let huge = ServeAuthTests.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: \(String(repeating: "a", count: 70_000))\r\n\r\n".utf8))
        #expect(huge.hasPrefix("HTTP/1.1 431"), "\(huge.prefix(200))")

        // Pipelined: every request before the refused one is answered, in order, then the refusal.
        let health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        let read = "GET /v1/features/clickstream/nokey HTTP/1.1\r\nHost: x\r\n\r\n"
        let afterHealth = ServeAuthTests.raw(port, Array((health + health + health + longTarget + health).utf8))
        #expect(Self.statuses(afterHealth) == [200, 200, 200, 414], "\(afterHealth)")
        let afterReads = ServeAuthTests.raw(port, Array((read + read + read + "GET /healthz HTTP/1.1\r\n\(many)\r\n" + read).utf8))
        #expect(Self.statuses(afterReads) == [404, 404, 404, 431], "\(afterReads)")
        let post = "POST /v1/features/clickstream HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[\"a\"]"
        let afterPost = ServeAuthTests.raw(port, Array((read + post + read + longTarget).utf8))
        #expect(Self.statuses(afterPost) == [404, 200, 404, 414], "\(afterPost)")

        #expect(try Self.curl(["http://127.0.0.1:\(port)/healthz"]).status == 200)
        serve.signal(SIGTERM)
        #expect(serve.wait(seconds: 10) == 0, "\(serve.log)")
    }
}
