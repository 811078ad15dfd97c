import EddyCore
import EddyDevKit
import EddyRedis
import EddyStore
import Foundation
import Testing

/// Least privilege and secrets, end to end: each role (`RedisRole`) runs with
/// exactly the ACL `eddy acl` prints and fails clearly without it; passwords
/// given by URL, environment or file, and Kafka secrets in a topology, never
/// appear in any output.
@Suite(.serialized) struct SecurityTests {
    static let prefix = "clickstream:"

    /// Creates the user `name` on `redis` with `role`'s rules for the clickstream
    /// prefix, minus `dropping` (rules left out, to show they are needed) and with
    /// `replacingKeys` as its key pattern when given.
    func createUser(_ name: String, password: String, role: RedisRole, on redis: RedisServerProcess,
                    dropping: Set<String> = [], replacingKeys: String? = nil) throws {
        var words = role.setUserCommand(user: name, password: password, keyPrefix: Self.prefix)
        words.removeAll { dropping.contains($0) }
        if let replacingKeys { words = words.map { $0.hasPrefix("~") ? replacingKeys : $0 } }
        let admin = try RedisConnection(url: redis.url)
        try admin.command(building: { b in for w in words { b.add(w) } }).checked()
        admin.close()
    }

    func write(_ text: String, to name: String, in dir: URL) -> String {
        let path = dir.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @Test("each role works with exactly its ACL: worker (env credentials), serve (password file, URL, its console), audit")
    func everyRoleWorksWithItsACL() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        try createUser("w", password: "pw-worker", role: .worker, on: redis)
        try createUser("s", password: "pw-serve", role: .serve, on: redis)
        try createUser("a", password: "pw-audit", role: .audit, on: redis)
        let events = dir.appendingPathComponent("events.jsonl").path
        try Harness.run(["dev", "generate", "--count", "20000", "--users", "1000", "--seed", "11", "--out", events], in: dir)
        let produced = try Harness.run(["dev", "produce", "--topology", "clickstream", "--brokers", kafka.brokers,
                                        "--input", events], in: dir)
        #expect(produced.status == 0, "\(produced.stderr)")
        let plain = "redis://127.0.0.1:\(redis.port)"

        // The worker: user and password from the environment.
        let worker = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", plain, "--group", "g-acl",
                                     "--stats-interval", "1"], in: dir, name: "worker",
                                    environment: ["EDDY_REDIS_USERNAME": "w", "EDDY_REDIS_PASSWORD": "pw-worker"])
        #expect(try kafka.waitUntilCommitted(group: "g-acl", timeout: 120), "worker log:\n\(worker.log)")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(2000))")
        let (keys, mismatches) = try compareRedisWithReplay(events: events, redis: redis.url, dir: dir)
        #expect(keys == 1000 && mismatches.isEmpty, "\(mismatches.prefix(3))")
        #expect(!worker.log.contains("pw-worker"))

        // `eddy get` as the serving user, its password from a file.
        let passwordFile = write("pw-serve\n", to: "serve.pass", in: dir)
        let get = try Harness.run(["get", "--topology", "clickstream", "--redis", plain, "--redis-password-file", passwordFile,
                                   "u0000001"], in: dir, environment: ["EDDY_REDIS_USERNAME": "s"])
        #expect(get.status == 0 && get.stderr.contains("\"key\":\"u0000001\"") && get.stderr.contains("key_time"),
                "\(get.stderr)")

        // `eddy serve` as the serving user, credentials in the URL.
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", "clickstream", "--listen", "127.0.0.1:\(port)",
                                    "--redis", "redis://s:pw-serve@127.0.0.1:\(redis.port)"], in: dir, name: "serve")
        var answer: (status: Int, body: String) = (0, "")
        for _ in 0..<100 {
            if let r = try? ClusterTests.get("http://127.0.0.1:\(port)/v1/features/clickstream/u0000001"), r.status != 0 {
                answer = r
                break
            }
            usleep(100_000)
        }
        #expect(answer.status == 200 && answer.body.contains("key_time"), "\(answer) \(serve.log.suffix(2000))")
        // Its console with the same user: the stored hash (HGETALL) and the sample (SCAN).
        let entityPage = try ClusterTests.get("http://127.0.0.1:\(port)/ui/entity?topology=clickstream&key=u0000001")
        #expect(entityPage.status == 200 && entityPage.body.contains("_o:clickstream:"), "\(entityPage.body.prefix(2000))")
        let distributions = try ClusterTests.get("http://127.0.0.1:\(port)/ui/distributions?topology=clickstream")
        #expect(distributions.status == 200 && distributions.body.contains("class=\"bar cur\""), "\(distributions.body.prefix(2000))")
        serve.signal(SIGTERM)
        _ = serve.wait(seconds: 10)
        #expect(!serve.log.contains("pw-serve"))

        // `eddy verify` and `eddy drift` as the audit user.
        let verify = try Harness.run(["verify", "--topology", "clickstream", "--input", events, "--redis", plain,
                                      "--no-progress"], in: dir,
                                     environment: ["EDDY_REDIS_USERNAME": "a", "EDDY_REDIS_PASSWORD": "pw-audit"])
        #expect(verify.status == 0, "\(verify.stderr)")
        let baseline = dir.appendingPathComponent("baseline.json").path
        let drift = try Harness.run(["drift", "--topology", "clickstream", "--redis", plain, "--save-baseline", baseline], in: dir,
                                    environment: ["EDDY_REDIS_USERNAME": "a", "EDDY_REDIS_PASSWORD": "pw-audit"])
        #expect(drift.status == 0, "\(drift.stderr)")
    }

    @Test("without its ACL a role fails at once with a message naming the user, the refusal and the fix")
    func missingRightsFailClearly() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        let kafka = try KafkaFixture()
        let plain = "redis://127.0.0.1:\(redis.port)"
        // A worker that may not load its Function.
        try createUser("w-nofn", password: "pw-1", role: .worker, on: redis, dropping: ["+function|load"])
        let worker = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", plain, "--group", "g-x"],
                                    in: dir, name: "worker",
                                    environment: ["EDDY_REDIS_USERNAME": "w-nofn", "EDDY_REDIS_PASSWORD": "pw-1"])
        let status = worker.wait(seconds: 30)
        #expect(status != nil && status != 0, "\(worker.log)")
        #expect(worker.log.contains("refused user 'w-nofn'") && worker.log.contains("NOPERM")
                && worker.log.contains("Redis ACLs"), "\(worker.log)")
        #expect(!worker.log.contains("pw-1"))

        // A full worker loads the Function; a reader confined to other keys is refused.
        try createUser("w", password: "pw-worker", role: .worker, on: redis)
        let admin = try RedisConnection(url: redis.url)
        try admin.command("HSET", "clickstream:u1", "_K", "1").checked()
        try createUser("s-other", password: "pw-2", role: .serve, on: redis, replacingKeys: "~other:*")
        let full = try Background(["run", "clickstream", "--brokers", kafka.brokers, "--redis", "redis://w:pw-worker@127.0.0.1:\(redis.port)",
                                   "--group", "g-y"], in: dir, name: "worker2")
        for _ in 0..<100 where try admin.command("FUNCTION", "LIST").array?.isEmpty ?? true { usleep(100_000) }
        full.signal(SIGTERM)
        _ = full.wait(seconds: 10)
        let other = try Harness.run(["get", "--topology", "clickstream", "--redis", plain, "u1"], in: dir,
                                    environment: ["EDDY_REDIS_USERNAME": "s-other", "EDDY_REDIS_PASSWORD": "pw-2"])
        #expect(other.status != 0 && other.stderr.contains("NOPERM"), "\(other.stderr)")

        // A serving user where no worker loaded the Function: told to start one.
        try admin.command("FUNCTION", "FLUSH").checked()
        try createUser("s", password: "pw-serve", role: .serve, on: redis)
        let unloaded = try Harness.run(["get", "--topology", "clickstream", "--redis", plain, "u1"], in: dir,
                                       environment: ["EDDY_REDIS_USERNAME": "s", "EDDY_REDIS_PASSWORD": "pw-serve"])
        #expect(unloaded.status != 0 && unloaded.stderr.contains("Start a worker of this topology"), "\(unloaded.stderr)")

        // A wrong password: the error says so and does not echo it.
        let wrong = try Harness.run(["get", "--topology", "clickstream", "--redis", "redis://s:not-the-pw@127.0.0.1:\(redis.port)",
                                     "u1"], in: dir)
        #expect(wrong.status != 0 && wrong.stderr.lowercased().contains("auth"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("not-the-pw"), "\(wrong.stderr)")
        // A user name without a password is a configuration error, not a default-user login.
        let noPassword = try Harness.run(["get", "--topology", "clickstream", "--redis", plain, "u1"], in: dir,
                                         environment: ["EDDY_REDIS_USERNAME": "s", "EDDY_REDIS_PASSWORD": ""])
        #expect(noPassword.status != 0 && noPassword.stderr.contains("EDDY_REDIS_PASSWORD"), "\(noPassword.stderr)")
    }

    @Test("Kafka and Redis secrets stay out of eddy check's plan and a failed start's output; librdkafka's reason is shown")
    func secretsAreNeverPrinted() throws {
        let dir = try Harness.tempDir()
        let redis = try RedisServerProcess()
        try createUser("eddy-admin", password: "Redis-s3cret-value", role: .worker, on: redis)
        let kafkaSecret = "Kafka-s3cret-value"
        let base = try String(contentsOf: Harness.root.appendingPathComponent("Topologies/clickstream.yaml"), encoding: .utf8)
        func variant(_ properties: String) -> String {
            base.replacingOccurrences(of: "  format: json\n", with: "  format: json\n  properties:\n\(properties)")
                .replacingOccurrences(of: "${EDDY_REDIS_URL:-redis://127.0.0.1:6379}",
                                      with: "redis://eddy-admin:${REDIS_SECRET}@127.0.0.1:\(redis.port)")
        }
        let env = ["KAFKA_SECRET": kafkaSecret, "REDIS_SECRET": "Redis-s3cret-value", "EDDY_BROKERS": "127.0.0.1:1",
                   "EDDY_REDIS_URL": ""]
        let cases: [(name: String, properties: String, reason: String)] = [
            ("mechanism", """
                    security.protocol: SASL_SSL
                    sasl.mechanism: NOPE
                    sasl.username: eddy
                    sasl.password: ${KAFKA_SECRET}
                    ssl.key.password: ${KAFKA_SECRET}

                """, "NOPE"),
            ("ca", """
                    security.protocol: SSL
                    ssl.ca.location: /nonexistent/ca.pem
                    ssl.key.password: ${KAFKA_SECRET}

                """, "ssl.ca.location"),
        ]
        for c in cases {
            let path = write(variant(c.properties), to: "\(c.name).yaml", in: dir)
            let check = try Harness.run(["check", path], in: dir, environment: env)
            #expect(check.status == 0, "\(check.stderr)")
            #expect(check.stderr.contains("sasl.password=***") || c.name != "mechanism", "\(check.stderr)")
            #expect(check.stderr.contains("eddy-admin:***@"), "\(check.stderr)")
            let run = try Harness.run(["run", path, "--group", "g-\(c.name)"], in: dir, environment: env)
            #expect(run.status != 0 && run.stderr.contains(c.reason), "\(c.name): \(run.stderr)")
            for output in [check.stderr, run.stderr] {
                #expect(!output.contains(kafkaSecret) && !output.contains("Redis-s3cret-value"), "\(c.name): \(output)")
            }
        }
        // A malformed URL is quoted without its password.
        let bad = try Harness.run(["get", "--topology", "clickstream", "--redis", "redis://u:Redis-s3cret-value@host:notaport", "k"],
                                  in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("u:***@host"), "\(bad.stderr)")
        #expect(!bad.stderr.contains("Redis-s3cret-value"))
    }

    @Test("the README's ACL block is what `eddy acl clickstream` prints")
    func readmeShowsTheACLs() throws {
        let dir = try Harness.tempDir()
        let printed = try Harness.run(["acl", "clickstream"], in: dir)
        #expect(printed.status == 0)
        let readme = try String(contentsOf: Harness.root.appendingPathComponent("README.md"), encoding: .utf8)
        let documented = readme.split(separator: "\n").filter { $0.hasPrefix("ACL SETUSER") }.joined(separator: "\n")
        #expect(printed.stderr.trimmingCharacters(in: .whitespacesAndNewlines) == documented)
    }
}
