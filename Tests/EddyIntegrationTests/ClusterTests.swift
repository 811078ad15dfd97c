import EddyCore
import EddyDevKit
import EddyRedis
import EddyStore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The worker, backfill, verify and the read paths on a 3-master Redis
/// Cluster (`redis+cluster://`), with crashes and a reshard mid-run; every
/// test ends comparing each key with `eddy replay`.
@Suite(.serialized) struct ClusterTests {
    @Test func twoWorkersOneKilledOnClusterIsExact() throws {
        let rig = try Rig(events: 100_000, users: 20_000, seed: 21, cluster: true)
        let producer = rig.startProducing(rate: 8_000)
        let group = "g-cluster-kill"
        let a = try rig.worker("a", group: group)
        let b = try rig.worker("b", group: group)
        #expect(try rig.waitForCommitted(group: group, atLeast: 25_000, timeout: 120), "\(a.log.suffix(2000))\n\(b.log.suffix(2000))")
        a.signal(SIGKILL)
        _ = a.wait()
        #expect(try rig.committedTotal(group: group) < 80_000, "the kill hit mid-run")
        let a2 = try rig.worker("a2", group: group)
        #expect(producer.wait(), "\(producer.failure ?? "")")
        #expect(try rig.kafka.waitUntilCommitted(group: group, timeout: 180), "\(b.log.suffix(3000))\n\(a2.log.suffix(3000))")
        for w in [b, a2] { w.signal(SIGTERM) }
        #expect(b.wait(seconds: 15) == 0, "\(b.log.suffix(3000))")
        #expect(a2.wait(seconds: 15) == 0, "\(a2.log.suffix(3000))")
        #expect(Rig.counter(b.log, "entities written") > 0 && Rig.counter(a2.log, "consumed") > 0)
        // Keys live on every master.
        for server in rig.cluster!.servers {
            #expect(try RedisConnection(url: server.url).command("DBSIZE").integer ?? 0 > 3_000)
        }
        try rig.expectExact()
    }

    @Test func slotsReshardedMidRunAreExact() throws {
        let rig = try Rig(events: 80_000, users: 10_000, seed: 22, cluster: true)
        let cluster = rig.cluster!
        let producer = rig.startProducing(rate: 8_000)
        let group = "g-cluster-reshard"
        let worker = try rig.worker("worker", group: group)
        #expect(try rig.waitForCommitted(group: group, atLeast: 15_000, timeout: 120), "\(worker.log.suffix(3000))")
        // 400 slots move from master 0 to master 1, then 400 from master 2
        // to master 0, keys and all, while the worker reads and writes them.
        let first = RedisClusterProcess.slotRange(of: 0, masters: 3).lowerBound
        let third = RedisClusterProcess.slotRange(of: 2, masters: 3).lowerBound
        try cluster.migrate(slots: first...(first + 399), from: 0, to: 1)
        #expect(try rig.committedTotal(group: group) < 70_000, "the reshard overlapped the run")
        try cluster.migrate(slots: third...(third + 399), from: 2, to: 0)
        #expect(try cluster.owner(ofSlot: first) == 1 && cluster.owner(ofSlot: third) == 0)
        #expect(producer.wait(), "\(producer.failure ?? "")")
        #expect(try rig.kafka.waitUntilCommitted(group: group, timeout: 180), "\(worker.log.suffix(3000))")
        worker.signal(SIGTERM)
        #expect(worker.wait(seconds: 10) == 0, "\(worker.log.suffix(3000))")
        // No error surfaced: redirections were followed inside the client.
        let log = worker.log
        #expect(Rig.counter(log, "redis errors") == 0, "\(log.suffix(3000))")
        #expect(!log.contains("failed"), "\(log.suffix(3000))")
        try rig.expectExact()
    }

    /// Backfills the same Kafka events into a single Redis and into the
    /// cluster, then reads both every way: `eddy get`, `FeatureClient`,
    /// `eddy serve` and `eddy verify` agree.
    @Test func readsOnClusterEqualSingleServer() throws {
        let rig = try Rig(events: 30_000, users: 3_000, seed: 23, cluster: true)
        #expect(rig.startProducing(rate: 0).wait())
        let cluster = rig.cluster!
        let k = ["--topology", rig.topologyPath, "--from-kafka", "--brokers", rig.kafka.brokers]
        for url in [rig.redis.url.description, cluster.urlString] {
            let r = try Harness.run(["replay"] + k + ["--emit", "redis", "--redis", url], in: rig.dir)
            #expect(r.status == 0 && r.stderr.contains("3000 keys written"), "\(r.stderr)")
        }
        #expect(try cluster.keyCount() == 3_000)
        let v = try Harness.run(["verify"] + k + ["--redis", cluster.urlString, "--no-progress"], in: rig.dir)
        #expect(v.status == 0 && v.stderr.contains("keys checked 3000, equal 3000, different 0, missing in Redis 0, extra in Redis 0"),
                "\(v.stderr)")

        let at: Int64 = 1_767_229_200_000
        let keys = (0..<3_000).map { String(format: "u%07d", $0) }
        let topology = try Harness.topology(path: rig.topologyPath)
        let single = try FeatureClient(client: RedisClient(.single(rig.redis.url)), topology: topology).jsonLines(keys: keys, at: at)
        let clustered = try FeatureClient(client: RedisClient(.cluster(cluster.url)), topology: topology).jsonLines(keys: keys, at: at)
        #expect(single.count == 3_000 && single == clustered)
        #expect(single.filter { !String(decoding: $0, as: UTF8.self).contains("\"found\":false") }.count > 2_000)

        let some = Array(keys.prefix(40)) + ["nobody"]
        let getSingle = try Harness.run(["get", "--topology", rig.topologyPath, "--redis", rig.redis.url.description,
                                         "--at", "\(at)"] + some, in: rig.dir)
        let getCluster = try Harness.run(["get", "--topology", rig.topologyPath, "--redis", cluster.urlString,
                                          "--at", "\(at)"] + some, in: rig.dir)
        #expect(getSingle.status == 0 && getCluster.status == 0, "\(getCluster.stderr)")
        #expect(getSingle.stderr == getCluster.stderr && getSingle.stderr.split(separator: "\n").count == 41)

        // A master that lost the library (a new or flushed master) gets it again.
        _ = try RedisConnection(url: cluster.servers[1].url).command("FUNCTION", "FLUSH").checked()
        let port = try #require(FreePort.find())
        let serve = try Background(["serve", "--topology", rig.topologyPath, "--redis", cluster.urlString,
                                    "--listen", "127.0.0.1:\(port)"], in: rig.dir, name: "serve")
        var ready = false
        for _ in 0..<200 where !ready {
            ready = (try? Self.get("http://127.0.0.1:\(port)/readyz"))?.status == 200
            if !ready { usleep(50_000) }
        }
        #expect(ready, "\(serve.log)")
        for (i, key) in some.enumerated() {
            let (status, body) = try Self.get("http://127.0.0.1:\(port)/v1/features/clickstream/\(key)?at=\(at)")
            #expect(status == (key == "nobody" ? 404 : 200), "\(key): \(status) \(body)")
            #expect(body == String(decoding: single[min(i, keys.count - 1)], as: UTF8.self) || key == "nobody", "\(key): \(body)")
        }
        serve.signal(SIGTERM)
        _ = serve.wait(seconds: 10)
    }

    /// A blocking HTTP GET: status and body.
    static func get(_ url: String) throws -> (status: Int, body: String) {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, String)?
        nonisolated(unsafe) var failure: (any Error)?
        URLSession.shared.dataTask(with: URL(string: url)!) { data, response, error in
            if let error { failure = error }
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data ?? Data(), as: UTF8.self))
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }
}
