import EddyCore
import EddyDevKit
import EddyRedis
import EddyReplay
import EddyStore
import EddyTopology
import Foundation
import Testing

/// Starts a throwaway redis-server and a connection to it.
func withRedis(_ body: (RedisServerProcess, RedisConnection) throws -> Void) throws {
    let server = try RedisServerProcess()
    let connection = try RedisConnection(url: server.url)
    try body(server, connection)
}

/// A topology of the repository's `Topologies/` directory.
func exampleTopology(_ name: String) throws -> Topology {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return try TopologyLoader(environment: [:]).load(path: root.appendingPathComponent("Topologies/\(name).yaml").path)
}

/// A topology from YAML text: key `user_id`, time `ts` in ms, the given features.
func makeTopology(_ features: String, name: String = "test", lateness: String = "5m") throws -> Topology {
    let yaml = """
        name: \(name)
        source: {brokers: "localhost:9092", topic: events}
        key: user_id
        time: {field: ts, unit: ms}
        allowed_lateness: \(lateness)
        sink: {redis: "redis://127.0.0.1:6379", prefix: "t:"}
        features:
        \(features)
        """
    return try TopologyLoader(environment: [:]).parse(yaml, file: "test.yaml")
}

/// A fresh engine fed with `events` (JSON texts, in arrival order).
func engine(_ topology: Topology, _ events: [String]) -> FeatureEngine {
    let e = FeatureEngine(topology: topology, expectedKeys: 1024)
    for event in events {
        var bytes = Array(event.utf8)
        _ = bytes.withUnsafeMutableBytes { e.process(UnsafeRawBufferPointer($0)) }
    }
    return e
}

/// One live key of an engine.
struct Entity {
    var slot: Int32
    var key: [UInt8]
    var keyTime: Int64?
    var blob: [UInt8]
    var redisKey: [UInt8]
}

/// Every live key of `e`, with its Redis key under the topology's prefix.
func entities(of e: FeatureEngine) -> [Entity] {
    (0..<Int32(e.store.slotLimit)).filter { e.store.isLive($0) }.map { slot in
        let key = Array(e.store.keyBytes(slot))
        let blob = Array(UnsafeRawBufferPointer(start: e.store.blob(slot), count: e.store.length(slot)))
        return Entity(slot: slot, key: key, keyTime: e.keyTime(slot), blob: blob,
                      redisKey: Array(e.topology.sink.keyPrefix.utf8) + key)
    }
}

/// Writes every entity as the worker does: `HSET <prefix><key> _state <blob> _fp <fp> _K <K>`.
func store(_ entities: [Entity], topology: Topology, on redis: RedisConnection, fingerprint: String? = nil) throws {
    let fp = fingerprint ?? EntityLayout.fingerprint(topology)
    for e in entities {
        try redis.append("HSET", e.redisKey, EntityLayout.stateField, e.blob, EntityLayout.fingerprintField, fp,
                         EntityLayout.keyTimeField, e.keyTime ?? Int64.min)
    }
    let summary = try redis.drain(count: entities.count)
    #expect(summary.errorCount == 0)
}

/// What the function must return for `entity` at `t`, built from the engine:
/// key, key time, then `writeFeatures`.
func expectedObject(_ e: FeatureEngine, _ entity: Entity, at t: Int64) -> [UInt8] {
    var w = JSONWriter()
    w.raw("{\"key\":")
    w.string(entity.key)
    w.raw(",\"key_time\":")
    if let k = entity.keyTime { w.int(k) } else { w.null() }
    w.raw(UInt8(ascii: ","))
    e.writeFeatures(entity.slot, at: t, into: &w)
    w.raw(UInt8(ascii: "}"))
    return w.bytes
}

/// Calls the library's read function for every `(entity, T)` in one pipeline
/// and compares each reply with the engine's read, by value. Returns the
/// number of comparisons.
@discardableResult
func compareReads(
    _ e: FeatureEngine, _ library: FunctionLibrary, on redis: RedisConnection, _ reads: [(Entity, Int64)],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> Int {
    for (entity, t) in reads {
        try redis.appendFcall(library.functionName) { call in
            call.keys.add(entity.redisKey)
            call.arguments.add(t)
        }
    }
    let replies = try redis.pipeline(count: reads.count)
    var failures = 0
    for ((entity, t), reply) in zip(reads, replies) {
        let expectedText = expectedObject(e, entity, at: t)
        guard case .bulk(let actualText) = reply else {
            Issue.record("key \(String(decoding: entity.key, as: UTF8.self)) at \(t): reply \(reply)",
                         sourceLocation: sourceLocation)
            failures += 1
            continue
        }
        let expected = JSONValue.parse(expectedText)
        let actual = JSONValue.parse(actualText)
        // The engine writes `inf` for sums that overflow (not JSON); then the
        // texts must be the same.
        let same = expected == nil ? actualText == expectedText : actual == expected
        if !same {
            failures += 1
            if failures <= 5 {
                Issue.record("""
                    key \(String(decoding: entity.key, as: UTF8.self)) at T=\(t):
                      redis:  \(String(decoding: actualText, as: UTF8.self))
                      engine: \(String(decoding: expectedText, as: UTF8.self))
                    """, sourceLocation: sourceLocation)
            }
        }
    }
    #expect(failures == 0, "\(failures) of \(reads.count) reads differ", sourceLocation: sourceLocation)
    return reads.count
}

/// The read times to check for one entity: T = K, inside windows, exactly on
/// and around every hop boundary, window edges, session edges, and far
/// before and after every tile.
func readTimes(for entity: Entity, _ e: FeatureEngine, rng: inout SplitMix64) -> [Int64] {
    guard let k = entity.keyTime else { return [0] }
    let day: Int64 = 86_400_000
    var ts: Set<Int64> = [k, k - 1, k + 1, k + 40 * day, k - 40 * day, 0, -1, -day - 1]
    for f in e.topology.features {
        switch f.kind {
        case .window(_, _, let w, let h) where w > 0:
            let boundary = floorDiv(k, h) * h
            ts.formUnion([boundary, boundary - 1, boundary + h, boundary + h - 1, boundary + w, boundary + w - 1,
                          boundary + w - h, boundary - w + h, k - Int64.random(in: 0...w, using: &rng),
                          k + Int64.random(in: 0...w, using: &rng)])
        case .session(let gap):
            // Edges of session_active, from the engine's own session_last.
            let object = JSONValue.parse(expectedObject(e, entity, at: k))
            if let last = object?[f.name + "_last"]?.double.map(Int64.init) {
                ts.formUnion([last + gap, last + gap + 1])
            }
        case .tiled(_, _, let w, let h) where w > 0:
            let boundary = floorDiv(k, h) * h
            ts.formUnion([boundary, boundary - 1, boundary + h, boundary + h - 1, boundary + w, boundary + w - 1,
                          boundary + w - h, k - Int64.random(in: 0...w, using: &rng)])
        case .timeSince:
            ts.formUnion([k - 3_600_000, k + 3_600_000])
        default: break
        }
    }
    return ts.sorted()
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

