import EddyDevKit
import Foundation
import Testing

/// The `/ui` console of `eddy serve`, loaded in headless Chromium (`--dump-dom`: the DOM after
/// the page loaded) with a real worker, Redis and the mock broker behind it; and its sign-in
/// when bearer tokens are required.
@Suite(.serialized) struct ConsoleBrowserTests {
    /// Debian's `chromium` (`.ci/install-deps` installs it), or nil.
    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs Chromium headless with `args` then `url`; returns its standard output.
    static func browser(_ args: [String], _ url: String, profile: URL) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium!)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                       "--user-data-dir=\(profile.path)"] + args + [url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        // A browser that hangs is stopped after a minute (the checks then fail on an empty DOM).
        let pid = p.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        return String(decoding: data, as: UTF8.self)
    }

    static func dumpDOM(_ url: String, profile: URL) throws -> String {
        try browser(["--dump-dom"], url, profile: profile)
    }

    /// `s` split on `separator`, the parts after each occurrence.
    static func count(_ s: String, _ needle: String) -> Int { s.components(separatedBy: needle).count - 1 }

    @Test("each view in headless Chromium: feature names, an entity's values, histogram bars, a lag series; a planted <script> key stays text")
    func viewsInChromium() throws {
        guard Self.chromium != nil else {
            print("ConsoleBrowserTests: SKIPPED: no chromium on this machine (apt-get install chromium; .ci/install-deps installs it)")
            return
        }
        let dir = try Harness.tempDir()
        let profile = dir.appendingPathComponent("chromium-profile")
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "20000", "--users", "300", "--seed", "7", "--out", events], in: dir)
        // A key with HTML in it.
        let planted = "<script>document.title='pwned'</script><b>x"
        let plantedLine = "{\"user_id\":\"<script>document.title='pwned'</script><b>x\",\"ts\":1767225600000,\"event\":\"view\",\"item_id\":\"<img src=x onerror=alert(1)>\",\"page\":\"/p\"}\n"
        let handle = try #require(FileHandle(forWritingAtPath: events))
        handle.seekToEndOfFile()
        handle.write(Data(plantedLine.utf8))
        try handle.close()
        let produced = try Harness.run(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers, "--input", events], in: dir)
        #expect(produced.status == 0, "\(produced.stderr)")
        let workerPort = try #require(FreePort.find())
        let worker = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", redis.url.description,
                                     "--group", "g-console", "--http", "127.0.0.1:\(workerPort)"], in: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: "g-console", timeout: 120), "\(worker.log)")

        // A baseline of the same data, as `eddy drift` saves it.
        let baselinePath = dir.appendingPathComponent("baseline.json").path
        let drift = try Harness.run(["drift", "--topology", "clickstream", "--redis", redis.url.description,
                                     "--save-baseline", baselinePath], in: dir)
        #expect(drift.status == 0, "\(drift.stderr)")
        // A known entity, read at its key time with `eddy get`.
        let get = try Harness.run(["get", "--topology", "clickstream", "--redis", redis.url.description, "u0000042"], in: dir)
        let line = try #require(get.stderr.split(separator: "\n").first { $0.hasPrefix("{") })
        let known = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let keyTime = try #require((known["key_time"] as? NSNumber)?.int64Value)
        let atK = try Harness.run(["get", "--topology", "clickstream", "--redis", redis.url.description, "--at", String(keyTime), "u0000042"], in: dir)
        let lineK = try #require(atK.stderr.split(separator: "\n").first { $0.hasPrefix("{") })
        let knownAtK = try #require(try JSONSerialization.jsonObject(with: Data(lineK.utf8)) as? [String: Any])

        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", redis.url.description,
                                    "--worker-metrics", "http://127.0.0.1:\(workerPort)/metrics", "--scrape-interval", "0.5",
                                    "--drift-baseline", baselinePath], in: dir, name: "serve")
        var ready = false
        for _ in 0..<100 {
            if (try? HTTPGet.body(host: "127.0.0.1", port: port, path: "/healthz")) != nil { ready = true; break }
            usleep(100_000)
        }
        #expect(ready, "\(serve.log)")
        let base = "http://127.0.0.1:\(port)"

        // Topologies: every feature's name.
        let topologies = try Self.dumpDOM(base + "/ui/topologies", profile: profile)
        for name in ["last_items", "session", "clicks_1h", "spend_24h", "eddy_clickstream_features", "clickstream:"] {
            #expect(topologies.contains(name), "\(name) missing from the Topologies view:\n\(topologies.prefix(3000))")
        }

        // Entity at its key time: the values `eddy get --at K` printed.
        let entity = try Self.dumpDOM(base + "/ui/entity?topology=clickstream&key=u0000042&at=\(keyTime)", profile: profile)
        for column in ["clicks_1h", "spend_24h", "session_events"] {
            let value = try #require(knownAtK[column] as? NSNumber)
            #expect(entity.contains("data-column=\"\(column)\">\(value.stringValue)</td>"),
                    "\(column) = \(value) not shown:\n\(entity.prefix(4000))")
        }
        for item in knownAtK["last_items"] as? [String] ?? [] { #expect(entity.contains(">\(item)</li>")) }
        #expect(Self.count(entity, "class=\"series\"") >= 2, "window charts")
        #expect(entity.contains("class=\"timeline\""))
        #expect(entity.contains("_o:clickstream:") && entity.contains("class=\"state-size\""))
        #expect(entity.contains("href=\"/v1/features/clickstream/u0000042?at=\(keyTime)\""))

        // The planted key: shown as text, never run.
        let escaped = HTMLQuery.percentEscape(planted)
        let plantedPage = try Self.dumpDOM(base + "/ui/entity?topology=clickstream&key=\(escaped)", profile: profile)
        #expect(plantedPage.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;b&gt;x"), "\(plantedPage.prefix(3000))")
        #expect(!plantedPage.contains("<script>") && !plantedPage.contains("pwned</title>"))
        #expect(plantedPage.contains("&lt;img src=x onerror=alert(1)&gt;"), "the stored list item is escaped too")
        #expect(!plantedPage.contains("<img"))

        // Distributions: one histogram per numeric feature, as many bars as the baseline's bins.
        let baseline = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: baselinePath))) as? [String: Any])
        let features = try #require(baseline["features"] as? [String: [String: Any]])
        let distributions = try Self.dumpDOM(base + "/ui/distributions?topology=clickstream", profile: profile)
        #expect(!features.isEmpty)
        for (name, d) in features {
            let counts = d["counts"] as? [Int] ?? []
            let nulls = d["nulls"] as? Int ?? 0
            let nonEmpty = counts.indices.filter { counts[$0] > 0 }
            let expected = (nonEmpty.last.map { $0 - nonEmpty.first! + 1 } ?? 0) + (nulls > 0 ? 1 : 0)
            guard let start = distributions.range(of: "data-feature=\"\(name)\"") else {
                Issue.record("no histogram for \(name)"); continue
            }
            let card = distributions[start.upperBound...].prefix { _ in true }
            let end = card.range(of: "data-feature=\"")?.lowerBound ?? card.endIndex
            let section = String(card[..<end])
            #expect(Self.count(section, "class=\"bar cur\"") == expected, "\(name): bars")
            #expect(Self.count(section, "class=\"bar base\"") == expected, "\(name): baseline bars")
        }
        #expect(distributions.contains("class=\"psi\""))

        // Workers: a lag series per assigned partition, not empty, after a few scrapes.
        var workers = ""
        for _ in 0..<20 {
            workers = try Self.dumpDOM(base + "/ui/workers", profile: profile)
            if workers.contains("data-name=\"clickstream/0\" data-points=\"") && Self.count(workers, "class=\"series\"") > 8 { break }
            usleep(500_000)
        }
        let lag = try #require(workers.range(of: "data-name=\"clickstream/0\" data-points=\""), "\(workers.prefix(4000))")
        let points = Int(workers[lag.upperBound...].prefix { $0.isNumber }) ?? 0
        #expect(points >= 1)
        #expect(workers.contains("events/s") && workers.contains("flush latency"))

        // Screenshots (PNG).
        let shot = dir.appendingPathComponent("topologies.png").path
        _ = try Self.browser(["--screenshot=\(shot)", "--window-size=1280,900", "--hide-scrollbars"], base + "/ui/topologies", profile: profile)
        let png = (try? Data(contentsOf: URL(fileURLWithPath: shot))) ?? Data()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "no PNG written")

        serve.signal(SIGTERM)
        #expect(serve.wait(seconds: 10) == 0, "\(serve.log)")
        worker.signal(SIGTERM)
        _ = worker.wait(seconds: 10)
    }

    @Test("with bearer tokens: /ui redirects to /ui/login; the form sets an HttpOnly, SameSite=Strict cookie that opens /ui but not the API")
    func consoleLogin() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let tokenFile = dir.appendingPathComponent("tokens").path
        try "token-A;x\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", redis.url.description, "--auth-token-file", tokenFile], in: dir, name: "serve")
        func raw(_ text: String) -> String { ServeAuthTests.raw(port, Array(text.utf8)) }
        var up = false
        for _ in 0..<100 {
            if raw("GET /ui/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 200") { up = true; break }
            usleep(100_000)
        }
        #expect(up, "\(serve.log)")
        let anonymous = raw("GET /ui/topologies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(anonymous.hasPrefix("HTTP/1.1 303") && anonymous.lowercased().contains("location: /ui/login"), "\(anonymous)")
        #expect(raw("GET /ui/topologies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-A;x\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        let wrong = "token=nope"
        let refused = raw("POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(wrong.utf8.count)\r\nConnection: close\r\n\r\n\(wrong)")
        #expect(refused.hasPrefix("HTTP/1.1 401") && !refused.lowercased().contains("set-cookie"), "\(refused)")
        let form = "token=token-A%3Bx"
        let login = raw("POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\nConnection: close\r\n\r\n\(form)")
        #expect(login.hasPrefix("HTTP/1.1 303"), "\(login)")
        let cookieLine = try #require(login.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") }, "\(login)")
        #expect(cookieLine.contains("HttpOnly") && cookieLine.contains("SameSite=Strict") && cookieLine.contains("Path=/ui"))
        #expect(!cookieLine.contains("Secure"))
        let behindTLS = raw("POST /ui/login HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\nConnection: close\r\n\r\n\(form)")
        #expect(behindTLS.contains("SameSite=Strict; Secure"), "\(behindTLS)")
        let cookie = String(cookieLine.dropFirst("set-cookie:".count).split(separator: ";")[0]).trimmingCharacters(in: .whitespaces)
        #expect(cookie == "eddy_console=token-A%3Bx")
        let withCookie = raw("GET /ui/topologies HTTP/1.1\r\nHost: x\r\nCookie: other=1; \(cookie)\r\nConnection: close\r\n\r\n")
        #expect(withCookie.hasPrefix("HTTP/1.1 200") && withCookie.contains("clicks_1h"), "\(withCookie.prefix(300))")
        #expect(raw("GET /ui/topologies HTTP/1.1\r\nHost: x\r\nCookie: eddy_console=token-B\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 303"))
        // The cookie is the console's only: the API still needs the header.
        #expect(raw("GET /metrics HTTP/1.1\r\nHost: x\r\nCookie: \(cookie)\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 401"))
        serve.signal(SIGTERM)
        #expect(serve.wait(seconds: 10) == 0)
    }
}

/// Percent-escaping for the test's URLs (everything but unreserved characters).
enum HTMLQuery {
    static func percentEscape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? s
    }
}
