import EddyCore
import EddyDevKit
import EddyRedis
import EddyStore
import Testing

/// The one entity path against a real redis-server: `EntityWriter`'s fence,
/// expiry rule and counts, `EntityLoader` reading back what it wrote, and
/// `StoredEntity`'s reading of the state blob.
@Suite("EntityWriter, EntityLoader and StoredEntity")
struct EntityStoreTests {
    static let partition = Array("clickstream:3".utf8)

    /// An engine with 20 keys and its live keys' slots.
    static func clickstream() throws -> (Topology, FeatureEngine, [Int32]) {
        let t = try exampleTopology("clickstream")
        let e = engine(t, Generators.clickstream(events: 300, keys: 20, seed: 7))
        let slots = (0..<Int32(e.store.slotLimit)).filter { e.store.isLive($0) && e.keyTime($0) != nil }
        return (t, e, slots)
    }

    /// A batch of `slots` under `prefix`, all at `offset` of `partition`.
    static func batch(_ e: FeatureEngine, _ slots: [Int32], prefix: String, offset: Int64, rearm: Bool) -> EntityBatch {
        let batch = EntityBatch()
        var fields = EntityFields(engine: e)
        for s in slots {
            batch.append(slot: s, prefix: Array(prefix.utf8), fields: &fields, partition: partition, offset: offset,
                         rearmTTL: rearm)
        }
        return batch
    }

    /// An `HGETALL` reply as a dictionary (a hash table's order is not insertion order).
    static func fields(_ reply: RedisReply) -> [String: [UInt8]] {
        let items = reply.array ?? []
        var out: [String: [UInt8]] = [:]
        for i in stride(from: 0, to: items.count - 1, by: 2) { out[items[i].string ?? ""] = items[i + 1].bytes }
        return out
    }

    static func target(_ server: RedisServerProcess) -> RedisTarget { .single(server.url) }

    @Test("a write lands only above the stored offset; counts say written and fenced")
    func fence() throws {
        let (_, e, slots) = try Self.clickstream()
        try withRedis { server, redis throws in
            let writer = EntityWriter(target: Self.target(server), ttl: TTLPolicy(ttlMs: 0))
            var counts = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 100, rearm: false))
            #expect(counts.written == slots.count && counts.fenced == 0 && counts.failed == 0)
            // Again at the same offset, and older: all fenced off.
            counts = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 100, rearm: false))
            #expect(counts.written == 0 && counts.fenced == slots.count)
            counts = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 50, rearm: false))
            #expect(counts.written == 0 && counts.fenced == slots.count)
            let key = Array("t:".utf8) + Array(e.store.keyBytes(slots[0]))
            #expect(try redis.command("HGET", key, "_o:clickstream:3").string == "100")
            // One stale key among new ones: only it is fenced.
            _ = try redis.command("HSET", key, "_o:clickstream:3", "1000")
            counts = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 101, rearm: false))
            #expect(counts.written == slots.count - 1 && counts.fenced == 1)
            #expect(try redis.command("HGET", key, "_o:clickstream:3").string == "1000")
            let other = Array("t:".utf8) + Array(e.store.keyBytes(slots[1]))
            #expect(try redis.command("HGET", other, "_o:clickstream:3").string == "101")
            #expect(try redis.command("PTTL", other).integer == -1, "ttl 0: no expiry")
        }
    }

    @Test("expiry: ttl + ttl/64 on a re-arming write; kept otherwise; none when fenced off")
    func expiry() throws {
        let (_, e, slots) = try Self.clickstream()
        try withRedis { server, redis throws in
            let ttl = TTLPolicy(ttlMs: 64_000)
            let writer = EntityWriter(target: Self.target(server), ttl: ttl)
            let one = [slots[0]]
            let key = Array("t:".utf8) + Array(e.store.keyBytes(slots[0]))
            _ = try writer.write(Self.batch(e, one, prefix: "t:", offset: 1, rearm: true))
            let armed = try #require(try redis.command("PTTL", key).integer)
            #expect(armed > 64_000 && armed <= ttl.expiryMs)
            // Without the re-arm flag an existing expiry is left as it is.
            _ = try redis.command("PEXPIRE", key, "5000")
            #expect(try writer.write(Self.batch(e, one, prefix: "t:", offset: 2, rearm: false)).written == 1)
            #expect((try redis.command("PTTL", key).integer ?? 0) <= 5000)
            // A fenced-off write does not re-arm.
            #expect(try writer.write(Self.batch(e, one, prefix: "t:", offset: 2, rearm: true)).fenced == 1)
            #expect((try redis.command("PTTL", key).integer ?? 0) <= 5000)
        }
    }

    @Test("at-least-once writes ignore the fence but write the same fields")
    func unfenced() throws {
        let (_, e, slots) = try Self.clickstream()
        try withRedis { server, redis throws in
            let writer = EntityWriter(target: Self.target(server), ttl: TTLPolicy(ttlMs: 64_000))
            _ = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 100, rearm: false))
            let fencedHash = try redis.command("HGETALL", "t:" + String(decoding: e.store.keyBytes(slots[0]), as: UTF8.self))
            _ = try redis.command("FLUSHALL")
            _ = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 100, rearm: false))
            writer.fenced = false
            let counts = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 5, rearm: true))
            #expect(counts.written == slots.count && counts.fenced == 0)
            let key = "t:" + String(decoding: e.store.keyBytes(slots[0]), as: UTF8.self)
            #expect(try redis.command("HGET", key, "_o:clickstream:3").string == "5")
            #expect((try redis.command("PTTL", key).integer ?? 0) > 64_000)
            _ = try redis.command("HSET", key, "_o:clickstream:3", "100")
            #expect(Self.fields(try redis.command("HGETALL", key)) == Self.fields(fencedHash))
        }
    }

    @Test("the loader reads back what the writer wrote; StoredEntity checks it")
    func loadWhatWasWritten() throws {
        let (t, e, slots) = try Self.clickstream()
        try withRedis { server, redis throws in
            let writer = EntityWriter(target: Self.target(server), ttl: TTLPolicy(ttlMs: 0))
            _ = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 42, rearm: false))
            let loader = EntityLoader(target: Self.target(server), prefix: Array("t:".utf8),
                                      fields: [EntityLayout.keyTimeField])
            let keys = slots.map { Array(e.store.keyBytes($0)) } + [Array("nobody".utf8)]
            let loaded = try loader.load(count: keys.count) { i, b in
                loader.request(keys[i], fence: "clickstream:3", into: &b)
            }
            let fingerprint = Array(EntityLayout.fingerprint(t).utf8)
            for (i, s) in slots.enumerated() {
                let entity = loaded[i]
                let blob = Array(UnsafeRawBufferPointer(start: e.store.blob(s), count: e.store.length(s)))
                #expect(entity.state == blob)
                #expect(entity.fingerprint == fingerprint)
                #expect(entity.fence == 42)
                #expect(entity.fields == [Array(String(e.keyTime(s)!).utf8)])
                #expect(entity.isCompatible(fingerprint: fingerprint, key: keys[i]))
                #expect(!entity.isCompatible(fingerprint: Array("0000".utf8), key: keys[i]))
                #expect(!entity.isCompatible(fingerprint: fingerprint, key: keys[(i + 1) % slots.count]))
                blob.withUnsafeBytes { #expect(StoredEntity.keyTime(ofState: $0) == e.keyTime(s)) }
            }
            let absent = loaded[slots.count]
            #expect(absent.state == nil && absent.fingerprint == nil && absent.fence == nil && absent.fields == [nil])
            #expect(!absent.isCompatible(fingerprint: fingerprint, key: keys[slots.count]))
            // Another partition's fence is not this one's.
            let other = try loader.load(count: 1) { _, b in loader.request(keys[0], fence: "clickstream:4", into: &b) }
            #expect(other[0].fence == nil && other[0].state != nil)
        }
    }

    @Test("the state blob's header: key time, key, short blobs")
    func blobHeader() throws {
        let (_, e, slots) = try Self.clickstream()
        let s = slots[0]
        let blob = UnsafeRawBufferPointer(start: e.store.blob(s), count: e.store.length(s))
        #expect(StoredEntity.keyTime(ofState: blob) == e.keyTime(s))
        #expect(StoredEntity.state(blob, isOf: e.store.keyBytes(s)))
        #expect(!StoredEntity.state(blob, isOf: e.store.keyBytes(slots[1])))
        #expect(StoredEntity.keyTime(ofState: UnsafeRawBufferPointer(rebasing: blob[0..<1])) == nil)
        #expect(StoredEntity.keyTime(ofState: UnsafeRawBufferPointer(rebasing: blob[0..<(2 + e.store.keyBytes(s).count + 7)])) == nil)
        // A key without events: no key time.
        let empty = Array("newkey".utf8).withUnsafeBytes { k in e.insertEmpty(k, hash: hashKey(k)) }
        let emptyBlob = UnsafeRawBufferPointer(start: e.store.blob(empty), count: e.store.length(empty))
        #expect(StoredEntity.keyTime(ofState: emptyBlob) == nil)
        #expect(StoredEntity.state(emptyBlob, isOf: e.store.keyBytes(empty)))
    }

    @Test("a write that cannot reach Redis is retried per the policy, then throws")
    func retriesThenThrows() throws {
        let (_, e, slots) = try Self.clickstream()
        let server = try RedisServerProcess()
        let url = server.url
        server.stop()
        var policy = EntityWriter.untilWritten
        policy.maxAttempts = 3
        policy.initialDelay = .milliseconds(1)
        let writer = EntityWriter(target: .single(url), ttl: TTLPolicy(ttlMs: 0), retry: policy)
        var retries: [Int] = []
        #expect(throws: (any Error).self) {
            _ = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 1, rearm: false)) { _, attempt, _ in
                retries.append(attempt)
            }
        }
        #expect(retries == [1, 2])
        // The store's waits: 100, 200, 400, 800 ms, then 1.6 s.
        for (retry, ms) in [(1, 100), (2, 200), (4, 800), (5, 1600), (9, 1600)] {
            let wait = EntityWriter.untilWritten.backoff(beforeRetry: retry)
            #expect(wait > .milliseconds(ms) - .microseconds(1) && wait < .milliseconds(ms) + .microseconds(1), "retry \(retry): \(wait)")
        }
    }

    @Test("on a Redis Cluster: keys grouped by slot, same counts")
    func cluster() throws {
        let (_, e, slots) = try Self.clickstream()
        let cluster = try RedisClusterProcess(masters: 3)
        let writer = EntityWriter(target: .cluster(cluster.url), ttl: TTLPolicy(ttlMs: 64_000))
        var counts = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 7, rearm: true))
        #expect(counts.written == slots.count && counts.fenced == 0 && counts.failed == 0)
        counts = try writer.write(Self.batch(e, slots, prefix: "t:", offset: 7, rearm: true))
        #expect(counts.written == 0 && counts.fenced == slots.count)
        let loader = EntityLoader(target: .cluster(cluster.url), prefix: Array("t:".utf8))
        let loaded = try loader.load(count: slots.count) { i, b in
            loader.request(e.store.keyBytes(slots[i]), fence: "clickstream:3", into: &b)
        }
        #expect(loaded.allSatisfy { $0.fence == 7 && $0.state != nil })
    }
}
