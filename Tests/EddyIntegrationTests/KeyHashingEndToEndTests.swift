import EddyCore
import EddyDevKit
import EddyRedis
import EddyStore
import Foundation
import Testing

/// Personal data as keys (`key: {field: email, hash: sha256, salt: "${EDDY_KEY_SALT}"}`): replay
/// writes HMACs unless `--raw-keys`; the worker stores HMACs only (no raw email anywhere in
/// Redis); `eddy get` and HTTPS reads by email find the features. The worker's `--http` port
/// runs with TLS and bearer tokens, as `eddy serve`'s.
@Suite(.serialized) struct KeyHashingEndToEndTests {
    static let salt = "test-salt-0123456789abcdef"
    static let env = ["EDDY_KEY_SALT": salt]
    static let emails = ["ada@example.com", "grace@example.com", "Alan.Turing@example.com"]
    static var hashing: KeyHashing { KeyHashing(salt: Array(salt.utf8)) }

    /// The clickstream topology keyed by a hashed email.
    static func topologyFile(in dir: URL) throws -> String {
        let text = try String(contentsOf: Harness.root.appendingPathComponent("Topologies/clickstream.yaml"), encoding: .utf8)
        let hashed = text.replacingOccurrences(of: "key: user_id", with: "key: {field: email, hash: sha256, salt: \"${EDDY_KEY_SALT}\"}")
        #expect(hashed != text)
        let path = dir.appendingPathComponent("clickstream-hashed.yaml").path
        try hashed.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// 60 events over the three emails.
    static func events(in dir: URL) throws -> String {
        var lines: [String] = []
        for i in 0..<60 {
            let email = emails[i % 3]
            let event = i % 4 == 0 ? "click" : "view"
            lines.append("{\"email\":\"\(email)\",\"ts\":\(1_767_225_600_000 + i * 1000),\"event\":\"\(event)\",\"item_id\":\"i\(i % 7)\"}")
        }
        let path = dir.appendingPathComponent("events.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func keys(ofLines text: String) -> [String] {
        text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["key"] as? String
        }
    }

    @Test("replay writes HMAC keys in final lines, rows and label rows; --raw-keys writes the emails")
    func replayKeys() throws {
        let dir = try Harness.tempDir()
        let topology = try Self.topologyFile(in: dir)
        let events = try Self.events(in: dir)
        let expected = Set(Self.emails.map { Self.hashing.entityKey($0) })
        for emit in ["final", "rows"] {
            let out = dir.appendingPathComponent("\(emit).jsonl").path
            let r = try Harness.run(["replay", "--topology", topology, "--input", events, "--emit", emit, "--out", out],
                                    in: dir, environment: Self.env)
            #expect(r.status == 0, "\(r.stderr)")
            let text = try String(contentsOfFile: out, encoding: .utf8)
            #expect(Set(Self.keys(ofLines: text)) == expected, "\(emit): \(text.prefix(300))")
            #expect(!text.contains("@example.com"))
            let raw = dir.appendingPathComponent("\(emit)-raw.jsonl").path
            let rr = try Harness.run(["replay", "--topology", topology, "--input", events, "--emit", emit, "--out", raw, "--raw-keys"],
                                     in: dir, environment: Self.env)
            #expect(rr.status == 0, "\(rr.stderr)")
            let rawText = try String(contentsOfFile: raw, encoding: .utf8)
            #expect(Set(Self.keys(ofLines: rawText)) == Set(Self.emails), "\(emit) --raw-keys: \(rawText.prefix(300))")
            // The same features either way.
            #expect(rawText.split(separator: "\n").count == text.split(separator: "\n").count)
        }
        // Labels give raw keys; rows carry the HMAC unless --raw-keys.
        let labels = dir.appendingPathComponent("labels.jsonl").path
        try "{\"key\":\"ada@example.com\",\"ts\":1767225700000,\"label\":1}\n{\"label\":0,\"key\":\"grace@example.com\",\"ts\":1767225700000}\n"
            .write(toFile: labels, atomically: true, encoding: .utf8)
        for (flags, keys) in [([String](), Self.emails.prefix(2).map { Self.hashing.entityKey($0) }), (["--raw-keys"], Array(Self.emails.prefix(2)))] {
            let out = dir.appendingPathComponent("train-\(flags.count).jsonl").path
            let r = try Harness.run(["replay", "--topology", topology, "--input", events, "--labels", labels, "--out", out] + flags,
                                    in: dir, environment: Self.env)
            #expect(r.status == 0, "\(r.stderr)")
            let text = try String(contentsOfFile: out, encoding: .utf8)
            #expect(Self.keys(ofLines: text) == keys, "\(flags): \(text)")
            // The label rows found the keys' features (views were applied before T).
            #expect(text.split(separator: "\n").allSatisfy { $0.contains("\"last_items\":[\"i") }, "\(text)")
        }
        // --raw-keys on a topology without key.hash is refused.
        let plain = try Harness.run(["replay", "--topology", "clickstream", "--input", events, "--raw-keys"], in: dir)
        #expect(plain.status != 0 && plain.stderr.contains("does not hash its keys"), "\(plain.stderr)")
        // Without the salt the topology does not load, naming the variable.
        let unset = try Harness.run(["replay", "--topology", topology, "--input", events], in: dir, environment: ["EDDY_KEY_SALT": ""])
        #expect(unset.status != 0 && unset.stderr.contains("unknown variable 'EDDY_KEY_SALT' in key.salt"), "\(unset.stderr)")
    }

    @Test("the worker stores only HMACs; eddy get and HTTPS reads by email find the features; the worker's --http has TLS and tokens")
    func workerAndReaders() throws {
        let dir = try Harness.tempDir()
        let topology = try Self.topologyFile(in: dir)
        let events = try Self.events(in: dir)
        let certs = try TestCertificates(directory: dir.appendingPathComponent("tls").path)
        let tokenFile = dir.appendingPathComponent("tokens").path
        try "worker-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let redis = try RedisServerProcess()
        // One partition: with three keys, more would leave partitions that are never committed.
        let kafka = try KafkaFixture(partitions: 1)
        let produced = try Harness.run(["dev", "produce", "--topology", topology, "--brokers", kafka.brokers, "--input", events],
                                       in: dir, environment: Self.env)
        #expect(produced.status == 0, "\(produced.stderr)")
        let workerPort = try #require(FreePort.find())
        let worker = try Background(["run", topology, "--brokers", kafka.brokers, "--redis", redis.url.description, "--group", "g-hash",
                                     "--http", "127.0.0.1:\(workerPort)", "--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile,
                                     "--auth-token-file", tokenFile],
                                    in: dir, name: "worker", environment: Self.env)
        #expect(try kafka.waitUntilCommitted(group: "g-hash", timeout: 60), "\(worker.log)")

        // The worker's port: HTTPS, a token on every route.
        let ca = ["--cacert", certs.caFile]
        let metrics = try ServeTLSTests.curl(ca + ["-H", "Authorization: Bearer worker-token", "https://127.0.0.1:\(workerPort)/metrics"])
        #expect(metrics.status == 200 && metrics.body.contains("eddy_worker_events_applied_total"), "\(metrics.status) \(metrics.stderr)")
        #expect(try ServeTLSTests.curl(ca + ["https://127.0.0.1:\(workerPort)/metrics"]).status == 401)
        #expect(try ServeTLSTests.curl(ca + ["https://127.0.0.1:\(workerPort)/healthz"]).status == 401)

        // Redis holds the three HMACs and no email, in keys or values.
        let conn = try RedisConnection(url: redis.url)
        let all = try conn.command("KEYS", "*").array?.compactMap(\.string) ?? []
        #expect(!all.isEmpty && !all.contains { $0.contains("example.com") }, "\(all)")
        // (The worker's partition epochs live under the prefix too: `PartitionEpochs`.)
        let stored = try conn.command("KEYS", "clickstream:*").array?.compactMap(\.string)
            .filter { !PartitionEpochs.isEpochKey(Array($0.utf8), entityPrefix: "clickstream:") } ?? []
        #expect(Set(stored) == Set(Self.emails.map { "clickstream:" + Self.hashing.entityKey($0) }), "\(stored)")
        for key in stored {
            let values = try conn.command("HGETALL", key).array?.compactMap(\.bytes) ?? []
            #expect(!values.contains { String(decoding: $0, as: UTF8.self).contains("example.com") }, "\(key)")
        }

        // eddy get by email.
        let got = try Harness.run(["get", "--topology", topology, "--redis", redis.url.description, "ada@example.com", "nobody@example.com"],
                                  in: dir, environment: Self.env)
        #expect(got.status == 0, "\(got.stderr)")
        let lines = got.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 2, "\(got.stderr)")
        #expect(lines.first?.contains("\"key\":\"\(Self.hashing.entityKey("ada@example.com"))\"") == true
                && lines.first?.contains("\"session_events\":20") == true, "\(lines)")
        #expect(lines.last == "{\"key\":\"nobody@example.com\",\"found\":false}", "\(lines)")

        // eddy serve over HTTPS, by email: the fast path, a lane (POST) and a percent-encoded key.
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", topology, "--listen", "127.0.0.1:\(port)", "--redis", redis.url.description,
                                    "--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile],
                                   in: dir, name: "serve", environment: Self.env)
        let base = "https://127.0.0.1:\(port)"
        #expect(ServeTLSTests.waitReady(ca + [base + "/readyz"], serve), "\(serve.log)")
        for path in ["grace@example.com", "grace@example.com", "grace%40example.com"] {
            let r = try ServeTLSTests.curl(ca + [base + "/v1/features/clickstream/" + path])
            #expect(r.status == 200 && r.body.contains(Self.hashing.entityKey("grace@example.com")) && r.body.contains("\"session_events\":20"),
                    "\(path): \(r)")
        }
        let post = try ServeTLSTests.curl(ca + ["-X", "POST", "--data", "[\"Alan.Turing@example.com\",\"alan.turing@example.com\"]",
                                                base + "/v1/features/clickstream"])
        #expect(post.status == 200 && post.body.contains(Self.hashing.entityKey("Alan.Turing@example.com"))
                && post.body.hasSuffix(",{\"key\":\"alan.turing@example.com\",\"found\":false}]"), "\(post)")
        serve.signal(SIGTERM)
        worker.signal(SIGTERM)
        #expect(serve.wait(seconds: 10) == 0, "\(serve.log)")
        #expect(worker.wait(seconds: 30) == 0, "\(worker.log)")
    }
}
