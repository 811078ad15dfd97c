import EddyCore
import EddyDevKit
import EddyRedis
import EddyStore
import Testing

/// The per-partition epoch fence (`PartitionEpochs`) against a real Redis,
/// with the group's answers played by `Ownership`.
@Suite("Partition epochs: the worker's fence on a single Redis server")
struct PartitionEpochTests {
    /// The group's answers: whether this member is still in its generation,
    /// and which partitions its consumer has begun revoking.
    final class Ownership: PartitionOwnership {
        var inGeneration = true
        var revoking: Set<[UInt8]> = []
        var confirmations = 0
        func wasRevoked(_ name: [UInt8]) -> Bool { revoking.contains(name) }
        func confirm(_ names: [[UInt8]]) throws -> Bool {
            confirmations += 1
            return inGeneration
        }
    }

    static let p3 = Array("clickstream:3".utf8)

    static func writer(_ server: RedisServerProcess, _ ownership: Ownership) -> EntityWriter {
        let w = EntityWriter(target: .single(server.url), ttl: TTLPolicy(ttlMs: 0))
        w.partitionEpochs = PartitionEpochs(entityPrefix: "t:")
        w.ownership = ownership
        return w
    }

    static func batch(_ key: String, _ state: String, offset: Int64, partition: [UInt8] = p3) -> EntityBatch {
        let b = EntityBatch()
        b.append(redisKey: Array(("t:" + key).utf8), fields: [(Array("_state".utf8), Array(state.utf8))],
                 partition: partition, offset: offset, rearmTTL: false)
        return b
    }

    @Test("the first write takes and confirms an epoch; writes are plain HSETs with the offset field")
    func firstWriteTakesAnEpoch() throws {
        try withRedis { server, redis throws in
            let group = Ownership()
            let a = Self.writer(server, group)
            let counts = try a.write(Self.batch("u1", "s1", offset: 10))
            #expect(counts.written == 1 && counts.fenced == 0)
            #expect(group.confirmations == 1)
            #expect(try redis.command("GET", "t:_fence:clickstream:3").string == "1")
            #expect(try redis.command("HGET", "t:u1", "_state").string == "s1")
            #expect(try redis.command("HGET", "t:u1", "_o:clickstream:3").string == "10")
            // Held: the next writes take nothing new.
            _ = try a.write(Self.batch("u1", "s2", offset: 11))
            #expect(group.confirmations == 1)
            #expect(try redis.command("HGET", "t:u1", "_state").string == "s2")
            let calls = try redis.command("INFO", "commandstats").string ?? ""
            #expect(!calls.contains("cmdstat_evalsha"), "no script call: \(calls)")
        }
    }

    @Test("a successor's epoch fences the old owner, which then loses the partition when the group refuses it")
    func staleOwnerLosesThePartition() throws {
        try withRedis { server, redis throws in
            let groupA = Ownership(), groupB = Ownership()
            let a = Self.writer(server, groupA), b = Self.writer(server, groupB)
            #expect(try a.write(Self.batch("u1", "a1", offset: 10)).written == 1)
            // b is assigned the partition: its first write takes epoch 2.
            #expect(try b.write(Self.batch("u1", "b1", offset: 20)).written == 1)
            #expect(try redis.command("GET", "t:_fence:clickstream:3").string == "2")
            // a was expelled from the group meanwhile: its write finds epoch 2,
            // takes 3, the group refuses its confirmation: lost, nothing written.
            groupA.inGeneration = false
            let stale = try a.write(Self.batch("u1", "a-stale", offset: 12))
            #expect(stale.written == 0 && stale.fenced == 1)
            #expect(a.isLost(partition: Self.p3))
            #expect(try redis.command("HGET", "t:u1", "_state").string == "b1")
            #expect(try redis.command("GET", "t:_fence:clickstream:3").string == "3", "a took 3 before it was refused")
            // b, fenced once by that 3, takes 4, is confirmed, and writes.
            let next = try b.write(Self.batch("u1", "b2", offset: 21))
            #expect(next.written == 1)
            #expect(groupB.confirmations == 2)
            #expect(try redis.command("GET", "t:_fence:clickstream:3").string == "4")
            #expect(try redis.command("HGET", "t:u1", "_state").string == "b2")
            // a stays out until its revocation reaches the writer.
            #expect(try a.write(Self.batch("u1", "a-stale2", offset: 13)).written == 0)
            #expect(groupA.confirmations == 2, "a lost partition is not taken again")
            a.releaseEpochs(partitions: [Self.p3])
            #expect(!a.isLost(partition: Self.p3))
        }
    }

    @Test("a partition being revoked is lost without taking an epoch")
    func revokingPartitionIsNotTaken() throws {
        try withRedis { server, redis throws in
            let group = Ownership()
            let a = Self.writer(server, group)
            let p4 = Array("clickstream:4".utf8)
            group.revoking = [Self.p3]
            let b = Self.batch("u1", "s1", offset: 10)
            b.append(redisKey: Array("t:u2".utf8), fields: [(Array("_state".utf8), Array("other".utf8))],
                     partition: p4, offset: 5, rearmTTL: false)
            let counts = try a.write(b)
            #expect(counts.written == 1 && counts.fenced == 1)
            #expect(a.isLost(partition: Self.p3) && !a.isLost(partition: p4))
            #expect(try redis.command("EXISTS", "t:_fence:clickstream:3").integer == 0)
            #expect(try redis.command("EXISTS", "t:u1").integer == 0)
            #expect(try redis.command("HGET", "t:u2", "_state").string == "other")
        }
    }

    @Test("an owner that took its epoch before a revocation began, and is then overtaken, loses the partition")
    func overtakenWhileRevoking() throws {
        try withRedis { server, redis throws in
            let groupA = Ownership()
            let a = Self.writer(server, groupA), b = Self.writer(server, Ownership())
            #expect(try a.write(Self.batch("u1", "a1", offset: 10)).written == 1)
            groupA.revoking = [Self.p3]  // a's consumer begins revoking it
            #expect(try b.write(Self.batch("u1", "b1", offset: 20)).written == 1)
            let stale = try a.write(Self.batch("u1", "a-stale", offset: 11))
            #expect(stale.written == 0 && a.isLost(partition: Self.p3))
            #expect(try redis.command("HGET", "t:u1", "_state").string == "b1")
        }
    }

    @Test("an epoch Redis lost (a flush, a restart without the AOF's tail) is stored again with the next write")
    func lostEpochIsStoredAgain() throws {
        try withRedis { server, redis throws in
            let group = Ownership()
            let a = Self.writer(server, group)
            _ = try a.write(Self.batch("u1", "s1", offset: 10))
            _ = try redis.command("FLUSHALL")
            #expect(try a.write(Self.batch("u1", "s2", offset: 11)).written == 1)
            #expect(try redis.command("GET", "t:_fence:clickstream:3").string == "1")
            #expect(group.confirmations == 1)
        }
    }

    @Test("epoch keys are told apart from entity keys")
    func epochKeys() {
        #expect(PartitionEpochs.isEpochKey(Array("t:_fence:clickstream:3".utf8), entityPrefix: "t:"))
        #expect(!PartitionEpochs.isEpochKey(Array("t:u1".utf8), entityPrefix: "t:"))
        #expect(!PartitionEpochs.isEpochKey(Array("t:_fence:".utf8), entityPrefix: "t:"))
    }
}
