import EddyDevKit
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `eddy serve` facing untrusted clients: bearer tokens on every route (the event-loop fast
/// path too), several at once, re-read on SIGHUP, health probes optionally open; request
/// limits; slow clients (slowloris) timed out while others are answered.
@Suite(.serialized) struct ServeAuthTests {
    /// A blocking HTTP request with headers: status, body and response headers.
    static func request(_ url: String, method: String = "GET", token: String? = nil, body: String? = nil)
        throws -> (status: Int, body: String, headers: [String: String])
    {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body { request.httpBody = Data(body.utf8) }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, String, [String: String])?
        nonisolated(unsafe) var failure: (any Error)?
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error { failure = error }
            let http = response as? HTTPURLResponse
            var headers: [String: String] = [:]
            for (k, v) in http?.allHeaderFields ?? [:] { headers["\(k)".lowercased()] = "\(v)" }
            result = (http?.statusCode ?? 0, String(decoding: data ?? Data(), as: UTF8.self), headers)
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }

    @Test("401 without an accepted token on every route; several tokens; SIGHUP rotates them; open health probes")
    func bearerTokens() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let tokenFile = dir.appendingPathComponent("tokens").path
        try "# serving tokens\ntoken-A\n\n  token-B  \n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", redis.url.description, "--auth-token-file", tokenFile, "--auth-open-health"],
                                   in: dir, name: "serve")
        let base = "http://127.0.0.1:\(port)"
        var ready = false
        for _ in 0..<100 {
            if let r = try? Self.request(base + "/healthz"), r.status == 200 { ready = true; break }
            usleep(100_000)
        }
        #expect(ready, "\(serve.log)")
        let one = base + "/v1/features/clickstream/nobody"
        // Warm the fast path (its library check) with an authorized read first.
        #expect(try Self.request(one, token: "token-A").status == 404)
        for _ in 0..<3 {
            let denied = try Self.request(one)
            #expect(denied.status == 401 && denied.headers["www-authenticate"] == "Bearer", "\(denied)")
            #expect(try Self.request(one, token: "token-C").status == 401)
            #expect(try Self.request(one, token: "token-A").status == 404)
            #expect(try Self.request(one, token: "token-B").status == 404)
        }
        #expect(try Self.request(one, token: "token-").status == 401)
        #expect(try Self.request(one, token: "token-AA").status == 401)
        let post = base + "/v1/features/clickstream"
        #expect(try Self.request(post, method: "POST", body: "[\"a\"]").status == 401)
        #expect(try Self.request(post, method: "POST", token: "token-B", body: "[\"a\"]").status == 200)
        #expect(try Self.request(base + "/metrics").status == 401)
        #expect(try Self.request(base + "/metrics", token: "token-A").status == 200)
        #expect(try Self.request(base + "/readyz").status == 200)

        // Rotate: A out, C in.
        try "token-B\ntoken-C\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        serve.signal(SIGHUP)
        var rotated = false
        for _ in 0..<50 {
            if try Self.request(one, token: "token-C").status == 404 { rotated = true; break }
            usleep(100_000)
        }
        #expect(rotated, "\(serve.log)")
        #expect(try Self.request(one, token: "token-A").status == 401)
        #expect(try Self.request(one, token: "token-B").status == 404)
        // A broken file keeps the tokens in use.
        try "".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        serve.signal(SIGHUP)
        usleep(500_000)
        #expect(try Self.request(one, token: "token-C").status == 404)
        #expect(serve.isRunning && serve.log.contains("stay in use"), "\(serve.log)")
        serve.signal(SIGTERM)
        #expect(serve.wait(seconds: 10) == 0)
        #expect(!serve.log.contains("token-B") && !serve.log.contains("token-C"))
    }

    /// Writes `bytes` on a new connection and returns what comes back before the server closes
    /// it (or `timeout` passes).
    static func raw(_ port: Int, _ bytes: [UInt8], timeout: Double = 5) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "connect failed" }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test("limits answer 4xx: a header line over 8 KiB and a head over 16 KiB (431), a 2 MiB body, too many keys; a slow client is closed while others are answered")
    func limitsAndSlowClients() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", redis.url.description, "--request-head-timeout", "2"], in: dir, name: "serve")
        var ready = false
        for _ in 0..<100 {
            if let r = try? Self.request("http://127.0.0.1:\(port)/healthz"), r.status == 200 { ready = true; break }
            usleep(100_000)
        }
        #expect(ready, "\(serve.log)")
        let bigField = Self.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 9000))\r\n\r\n".utf8))
        #expect(bigField.hasPrefix("HTTP/1.1 431"), "\(bigField.prefix(80))")
        let manyFields = (0..<20).map { "X-\($0): \(String(repeating: "a", count: 1000))\r\n" }.joined()
        let bigHead = Self.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\(manyFields)\r\n".utf8))
        #expect(bigHead.hasPrefix("HTTP/1.1 431"), "\(bigHead.prefix(80))")
        let body = String(repeating: " ", count: 2 << 20)
        let bigBody = Self.raw(port, Array("POST /v1/features/clickstream HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        #expect(bigBody.hasPrefix("HTTP/1.1 413"), "\(bigBody.prefix(80))")
        let keys = "[" + (0...10_000).map { "\"k\($0)\"" }.joined(separator: ",") + "]"
        let tooMany = try Self.request("http://127.0.0.1:\(port)/v1/features/clickstream", method: "POST", body: keys)
        #expect(tooMany.status == 400 && tooMany.body.contains("10000"), "\(tooMany.status) \(tooMany.body)")

        // Slowloris: a head trickled a byte at a time never completes; the server closes the
        // connection after the head timeout, and answers everyone else meanwhile.
        nonisolated(unsafe) var slowAnswer = ""
        let slow = Thread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            let head = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "z"), count: 100)
            for byte in head {
                var b = byte
                if send(fd, &b, 1, Int32(MSG_NOSIGNAL)) != 1 { break }
                usleep(100_000)
            }
            var buffer = [UInt8](repeating: 0, count: 256)
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let n = recv(fd, &buffer, buffer.count, 0)
            slowAnswer = n == 0 ? "closed" : n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : "nothing within 5 s"
            close(fd)
        }
        slow.start()
        let started = Date()
        var answered = 0
        while Date().timeIntervalSince(started) < 1.5 {
            if (try? Self.request("http://127.0.0.1:\(port)/healthz"))?.status == 200 { answered += 1 }
            usleep(50_000)
        }
        #expect(answered >= 10, "only \(answered) requests answered while a slow client trickled")
        while !slow.isFinished { usleep(50_000) }
        #expect(slowAnswer == "closed", "\(slowAnswer)")
        serve.signal(SIGTERM)
        #expect(serve.wait(seconds: 10) == 0)
    }
}
