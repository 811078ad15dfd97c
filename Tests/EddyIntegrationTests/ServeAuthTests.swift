import EddyDevKit
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `eddy serve --auth-token-file`: bearer tokens on every route (the event-loop fast path
/// too), several at once, re-read on SIGHUP, health probes optionally open.
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
}
