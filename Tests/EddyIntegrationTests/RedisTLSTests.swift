import EddyCore
import EddyDevKit
import EddyRedis
import Foundation
import Testing

/// Redis over TLS (`rediss://`, `rediss+cluster://`) against `redis-server --tls-port`, with a CA
/// the test makes with the openssl CLI: the client itself, every command that talks to Redis, a
/// Cluster with `tls-cluster yes`, and the certificate failures a user meets.
@Suite(.serialized) struct RedisTLSTests {
    static func certificates() throws -> TestCertificates {
        try TestCertificates(directory: Harness.tempDir().appendingPathComponent("tls").path)
    }

    @Test("pipelines, multi-megabyte values and replies go through TLS unchanged")
    func connectionOverTLS() throws {
        let certs = try Self.certificates()
        let server = try RedisServerProcess(options: certs.redisOptions())
        let tls = try #require(server.tlsURL(certs.clientTLS))
        let connection = try RedisConnection(url: tls)
        #expect(try connection.command("PING") == .status("PONG"))
        // A value far larger than one TLS record (16 KiB) and than the reader's buffer.
        let big = String(repeating: "0123456789abcdef", count: 200_000)
        try connection.command("SET", "big", big).checked()
        #expect(try connection.command("GET", "big").string == big)
        // A long pipeline: written in many records, answered in many reads.
        for i in 0..<20_000 { try connection.append("HSET", "h:\(i % 100)", "f\(i)", i) }
        let summary = try connection.drain(count: 20_000)
        #expect(summary.replyCount == 20_000 && summary.errorCount == 0)
        let plain = try RedisConnection(url: server.url)
        #expect(try plain.command("HLEN", "h:7").integer == 200)
        #expect(try plain.command("HGET", "h:7", "f19907").string == "19907")
        // The server sees a TLS client.
        let clients = try plain.command("CLIENT", "LIST").string ?? ""
        #expect(clients.split(separator: "\n").count == 2)
    }

    @Test("a wrong CA, an expired certificate, a name mismatch and a missing client certificate fail naming the host; insecure skips the check")
    func certificateFailures() throws {
        let certs = try Self.certificates()
        let server = try RedisServerProcess(options: certs.redisOptions())
        let port = try #require(server.tlsPort)
        func failure(_ tls: RedisTLS, host: String = "127.0.0.1", port: Int) -> String {
            do {
                // With TLS 1.3 the server checks a client certificate after the handshake: the
                // refusal arrives with the first reply.
                let c = try RedisConnection(url: RedisURL(endpoint: .tcp(host: host, port: port), tls: tls))
                try c.command("PING").checked()
                return "connected"
            } catch {
                return error.description
            }
        }
        let wrongCA = failure(RedisTLS(caFile: certs.otherCAFile), port: port)
        #expect(wrongCA.contains("127.0.0.1") && wrongCA.contains("certificate"), "\(wrongCA)")
        let mismatch = failure(RedisTLS(caFile: certs.caFile, serverName: "db.example.com"), port: port)
        #expect(mismatch.contains("db.example.com") && mismatch.contains("hostname mismatch"), "\(mismatch)")
        #expect(failure(RedisTLS(caFile: certs.caFile), host: "localhost", port: port) == "connected")
        #expect(failure(RedisTLS(caFile: certs.otherCAFile, insecure: true), port: port) == "connected")
        let plaintextPort = failure(RedisTLS(caFile: certs.caFile), port: server.port)
        #expect(plaintextPort.contains("TLS"), "\(plaintextPort)")

        let expiredServer = try RedisServerProcess(options: certs.redisOptions(certFile: certs.expiredCertFile))
        let expired = failure(RedisTLS(caFile: certs.caFile), port: try #require(expiredServer.tlsPort))
        #expect(expired.contains("127.0.0.1") && expired.contains("expired"), "\(expired)")

        let mutual = try RedisServerProcess(options: certs.redisOptions(requireClientCertificates: true))
        let mutualPort = try #require(mutual.tlsPort)
        #expect(failure(RedisTLS(caFile: certs.caFile), port: mutualPort) != "connected")
        #expect(failure(RedisTLS(caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile),
                        port: mutualPort) == "connected")

        // The CLI: the error names the host; insecure warns.
        let dir = try Harness.tempDir()
        let cli = try Harness.run(["get", "--topology", "clickstream", "--redis",
                                   "rediss://127.0.0.1:\(port)?ca=\(certs.otherCAFile)", "u1"], in: dir)
        #expect(cli.status != 0 && cli.stderr.contains("TLS handshake with 127.0.0.1 failed"), "\(cli.stderr)")
        let insecure = try Harness.run(["get", "--topology", "clickstream", "--redis", "rediss://127.0.0.1:\(port)", "u1"], in: dir,
                                       environment: ["EDDY_REDIS_TLS_INSECURE": "true"])
        #expect(insecure.status == 0 && insecure.stderr.contains("does not verify the server's certificate"), "\(insecure.stderr)")
    }

    @Test("run, get, serve, verify and drift over rediss://; the worker's state equals the replay")
    func everyCommandOverTLS() throws {
        let certs = try Self.certificates()
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess(options: certs.redisOptions())
        let kafka = try KafkaFixture()
        let tlsPort = try #require(redis.tlsPort)
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "20000", "--users", "1000", "--seed", "12", "--out", events], in: dir)
        let produced = try Harness.run(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers,
                                        "--input", events], in: dir)
        #expect(produced.status == 0, "\(produced.stderr)")
        let rediss = "rediss://127.0.0.1:\(tlsPort)"
        let env = ["EDDY_REDIS_TLS_CA": certs.caFile]
        let worker = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", rediss, "--group", "g-tls",
                                     "--stats-interval", "1"], in: dir, name: "worker", environment: env)
        #expect(try kafka.waitUntilCommitted(group: "g-tls", timeout: 120), "worker log:\n\(worker.log)")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(2000))")
        let (keys, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir)
        #expect(keys == 1000 && mismatches.isEmpty, "\(mismatches.prefix(3))")
        // Every connection the worker made was TLS: the plaintext port saw only this test.
        let info = try RedisConnection(url: redis.url).command("INFO", "stats").string ?? ""
        #expect(info.contains("total_connections_received"))

        let get = try Harness.run(["get", "--topology", "clickstream", "--redis", "\(rediss)?ca=\(certs.caFile)", "u0000001"], in: dir)
        #expect(get.status == 0 && get.stderr.contains("\"key\":\"u0000001\"") && get.stderr.contains("key_time"), "\(get.stderr)")
        let verify = try Harness.run(["verify", "--topology", "clickstream", "--input", events, "--redis", rediss, "--no-progress"],
                                     in: dir, environment: env)
        #expect(verify.status == 0, "\(verify.stderr)")
        let drift = try Harness.run(["drift", "--topology", "clickstream", "--redis", rediss, "--save-baseline",
                                     dir.appendingPathComponent("b.json").path], in: dir, environment: env)
        #expect(drift.status == 0, "\(drift.stderr)")

        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)", "--redis", rediss],
                                   in: dir, name: "serve", environment: env)
        var answer: (status: Int, body: String) = (0, "")
        for _ in 0..<100 {
            if let r = try? ClusterTests.get("http://127.0.0.1:\(port)/v1/features/clickstream/u0000001"), r.status != 0 {
                answer = r
                break
            }
            usleep(100_000)
        }
        #expect(answer.status == 200 && answer.body.contains("key_time"), "\(answer) \(serve.log.suffix(2000))")
        let ready = try? ClusterTests.get("http://127.0.0.1:\(port)/readyz")
        #expect(ready?.status == 200, "\(String(describing: ready))")
        serve.signal(SIGTERM)
        _ = serve.wait(seconds: 10)
    }

    @Test("a Redis Cluster with tls-cluster yes through rediss+cluster://: worker state equals the replay")
    func clusterOverTLS() throws {
        let certs = try Self.certificates()
        var options = certs.redisOptions()
        options["tls-port"] = nil  // one per node (RedisClusterProcess)
        options["tls-cluster"] = "yes"
        options["tls-replication"] = "yes"
        let cluster = try RedisClusterProcess(masters: 3, options: options)
        let tlsURL = try #require(cluster.tlsURL(certs.clientTLS))
        let dir = try Harness.tempDir()
        let kafka = try KafkaFixture()
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "20000", "--users", "1000", "--seed", "13", "--out", events], in: dir)
        let produced = try Harness.run(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers,
                                        "--input", events], in: dir)
        #expect(produced.status == 0, "\(produced.stderr)")
        let text = RedisTarget.cluster(tlsURL).urlTextWithCredentials
        #expect(text.hasPrefix("rediss+cluster://"))
        let worker = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", text, "--group", "g-tlsc",
                                     "--stats-interval", "1"], in: dir, name: "worker")
        #expect(try kafka.waitUntilCommitted(group: "g-tlsc", timeout: 120), "worker log:\n\(worker.log)")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(2000))")
        // Read back over TLS too: the client follows CLUSTER SLOTS's TLS ports.
        let (keys, mismatches) = try compareRedisWithReplay(events: events, target: .cluster(tlsURL), dir: dir)
        #expect(keys == 1000 && mismatches.isEmpty, "\(mismatches.prefix(3))")
        let get = try Harness.run(["get", "--topology", "clickstream", "--redis", text, "u0000001"], in: dir)
        #expect(get.status == 0 && get.stderr.contains("key_time"), "\(get.stderr)")
    }
}
