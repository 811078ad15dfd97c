import EddyDevKit
import EddyRedis
import Foundation
import Testing

/// The console scraping a worker whose `/metrics` wants a bearer token
/// (`eddy run --http … --auth-token-file`): `eddy serve
/// --worker-metrics-token-file` sends it; without it the Workers view says
/// the scrape got 401 and why.
@Suite(.serialized) struct ConsoleScrapeTokenTests {
    @Test func tokenProtectedWorkerIsScrapedWithTheTokenFile() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "5000", "--users", "200", "--seed", "5", "--out", events], in: dir)
        let produced = try Harness.run(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers, "--input", events], in: dir)
        #expect(produced.status == 0, "\(produced.stderr)")
        let tokenFile = dir.appendingPathComponent("tokens").path
        try "# the workers' metrics token\n\nmetrics-token-5f0c1d2e3a4b\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let workerPort = try #require(FreePort.find())
        let worker = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", redis.url.description,
                                     "--group", "g-scrape", "--http", "127.0.0.1:\(workerPort)", "--auth-token-file", tokenFile],
                                    in: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: "g-scrape", timeout: 120), "\(worker.log)")

        func serve(_ name: String, token: Bool) throws -> (Background, Int) {
            let port = try #require(FreePort.find())
            let p = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", redis.url.description,
                                    "--worker-metrics", "http://127.0.0.1:\(workerPort)/metrics", "--scrape-interval", "0.3"]
                                   + (token ? ["--worker-metrics-token-file", tokenFile] : []), in: dir, name: name)
            return (p, port)
        }
        let (withToken, portA) = try serve("serve-token", token: true)
        let (without, portB) = try serve("serve-plain", token: false)
        /// The Workers view once it shows a scrape's outcome.
        func workersPage(_ port: Int, until done: (String) -> Bool) -> String {
            var page = ""
            for _ in 0..<100 {
                page = (try? HTTPGet.body(host: "127.0.0.1", port: port, path: "/ui/workers", connectAttempts: 20)) ?? ""
                if done(page) { break }
                usleep(100_000)
            }
            return page
        }
        let good = workersPage(portA) { $0.contains("class=\"counts\"") }
        #expect(good.contains("class=\"counts\"") && !good.contains("last scrape failed"), "\(good.suffix(2000))\n\(withToken.log)")
        #expect(good.contains("Redis errors"), "the worker's counters are listed")
        let refused = workersPage(portB) { $0.contains("last scrape failed") }
        #expect(refused.contains("HTTP 401") && refused.contains("--worker-metrics-token-file"), "\(refused.suffix(2000))")
        #expect(!refused.contains("metrics-token-5f0c1d2e3a4b") && !good.contains("metrics-token-5f0c1d2e3a4b"), "the token is never shown")

        // A token file with no token is refused at start, naming the option.
        let empty = dir.appendingPathComponent("empty-tokens").path
        try "# nothing yet\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let port = try #require(FreePort.find())
        let bad = try Harness.run(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)", "--redis", redis.url.description,
                                   "--worker-metrics", "http://127.0.0.1:\(workerPort)/metrics", "--worker-metrics-token-file", empty], in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("--worker-metrics-token-file") && bad.stderr.contains("holds no token"), "\(bad.stderr)")

        for p in [withToken, without, worker] { p.signal(SIGTERM) }
        for p in [withToken, without, worker] { #expect(p.wait(seconds: 10) == 0, "\(p.log.suffix(2000))") }
    }
}
