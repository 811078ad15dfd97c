import EddyCore
import EddyDevKit
import EddyRedis
import EddyStore
import Foundation
import Testing

/// Installing the library, finding nothing, output lines, reinstalling and
/// the error cases.
@Suite("FeatureClient and library installation")
struct ClientTests {
    static func clickstream() throws -> (Topology, FeatureEngine) {
        let t = try exampleTopology("clickstream")
        return (t, engine(t, Generators.clickstream(events: 300, keys: 20, seed: 7)))
    }

    @Test("an unknown key reads nil; eddy get prints found:false for it")
    func unknownKey() throws {
        let (t, e) = try Self.clickstream()
        try withRedis { _, redis throws in
            try store(entities(of: e), topology: t, on: redis)
            let client = FeatureClient(connection: redis, topology: t)
            let replies = try client.features(keys: ["nobody", "u1", "no\"body"], at: 1_714_600_000_000)
            #expect(replies[0] == nil && replies[2] == nil)
            #expect(replies[1] != nil)
            // A hash without `_state` is no entity either.
            _ = try redis.command("HSET", "clickstream:partial", "last_items", "[]")
            #expect(try client.features(keys: ["partial"]) == [nil])

            let lines = try client.jsonLines(keys: ["nobody", "u1", "no\"body"], at: 1_714_600_000_000)
            #expect(String(decoding: lines[0], as: UTF8.self) == #"{"key":"nobody","found":false}"#)
            #expect(String(decoding: lines[2], as: UTF8.self) == #"{"key":"no\"body","found":false}"#)
            let found = try #require(JSONValue.parse(lines[1]))
            #expect(found["key"] == .string("u1"))
            #expect(found["key_time"]?.double != nil)
            #expect(lines[1] == replies[1])
        }
    }

    @Test("installation is idempotent, versioned, and replaces another version")
    func installIsIdempotent() throws {
        let (t, _) = try Self.clickstream()
        let library = FunctionLibrary(topology: t)
        #expect(library.libraryName == "eddy_clickstream")
        #expect(library.functionName == "eddy_clickstream_features")
        #expect(library.source.hasPrefix("#!lua name=eddy_clickstream\n"))
        #expect(library.version.hasPrefix(EntityLayout.fingerprint(t) + "."))
        #expect(FunctionLibrary(topology: t) == library)
        try withRedis { _, redis throws in
            #expect(try library.installedVersion(on: redis) == nil)
            #expect(try FunctionLibrary.install(on: redis, topology: t))
            #expect(try library.installedVersion(on: redis) == library.version)
            #expect(try !FunctionLibrary.install(on: redis, topology: t))
            #expect(try library.install(on: redis, force: true))

            var changed = t
            changed.features.removeLast()
            let other = FunctionLibrary(topology: changed)
            #expect(other.libraryName == library.libraryName && other.version != library.version)
            #expect(try other.install(on: redis))
            #expect(try library.installedVersion(on: redis) == other.version)
            #expect(try library.install(on: redis))
        }
    }

    @Test("the client reinstalls the library after FUNCTION FLUSH and after another version was loaded")
    func reinstalls() throws {
        let (t, e) = try Self.clickstream()
        let all = entities(of: e)
        let k = all.compactMap(\.keyTime).max()!
        try withRedis { _, redis throws in
            try store(all, topology: t, on: redis)
            let client = FeatureClient(connection: redis, topology: t)
            let before = try client.features(keys: ["u1", "u2"], at: k)
            #expect(before.allSatisfy { $0 != nil })

            try redis.command("FUNCTION", "FLUSH").checked()
            #expect(try client.features(keys: ["u1", "u2"], at: k) == before)

            // Another topology version took the library name: its reads of
            // this state fail with EDDYSTATE, and the client puts its own back.
            var changed = t
            changed.features.removeLast()
            try FunctionLibrary(topology: changed).install(on: redis)
            #expect(try client.features(keys: ["u1", "u2"], at: k) == before)
        }
    }

    @Test("state of other features is refused with EDDYSTATE")
    func fingerprintMismatch() throws {
        let (t, e) = try Self.clickstream()
        try withRedis { _, redis throws in
            try store(entities(of: e), topology: t, on: redis, fingerprint: "0123456789abcdef")
            let client = FeatureClient(connection: redis, topology: t)
            let error = #expect(throws: ServingError.self) { try client.features(keys: ["nobody", "u1"], at: 0) }
            guard case .readFailed(let key, let message)? = error else {
                Issue.record("expected readFailed, got \(String(describing: error))")
                return
            }
            #expect(key == "u1")
            #expect(message.hasPrefix("EDDYSTATE clickstream:u1 holds state of features fingerprint 0123456789abcdef"))
        }
    }

    @Test("FCALL_RO works (no-writes), T defaults to the server clock, a bad T is an error")
    func readOnlyDefaultTimeAndBadTime() throws {
        let t = try exampleTopology("clickstream")
        // Events in 2001: at the server's clock every window is empty and no
        // session is active, so the read does not depend on the exact instant.
        let events = (0..<50).map { i in
            "{\"user_id\":\"old\",\"ts\":\(1_000_000_000_000 + Int64(i) * 60_000),\"event\":\"click\",\"item_id\":\"i\(i)\"}"
        }
        let e = engine(t, events)
        let all = entities(of: e)
        let library = FunctionLibrary(topology: t)
        try withRedis { _, redis throws in
            try store(all, topology: t, on: redis)
            try library.install(on: redis)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let reply = try redis.command("FCALL_RO", library.functionName, 1, "clickstream:old").checked()
            let expected = JSONValue.parse(expectedObject(e, all[0], at: now))
            #expect(reply.bytes.flatMap(JSONValue.parse) == expected)
            #expect(expected?["clicks_1h"] == .number(0) && expected?["session_active"] == .bool(false))
            #expect(expected?["session_events"] == .number(50))

            let client = FeatureClient(connection: redis, topology: t)
            #expect(try client.features(keys: ["old"]).first??.isEmpty == false)

            for bad in ["soon", "1.5", "1e300"] {
                let r = try redis.fcall(library.functionName, keys: ["clickstream:old"], arguments: [bad])
                #expect(r.errorMessage?.hasPrefix("ERR read time must be integer epoch milliseconds") == true)
            }
            #expect(try redis.fcall(library.versionFunctionName) == .bulk(Array(library.version.utf8)))
        }
    }

    @Test("an entity without events reads key_time null and empty features")
    func emptyState() throws {
        let t = try exampleTopology("payments")
        let e = FeatureEngine(topology: t)
        let slot = Array("fresh".utf8).withUnsafeBytes { e.insertEmpty($0, hash: hashKey($0)) }
        #expect(slot >= 0)
        let all = entities(of: e)
        try withRedis { _, redis throws in
            try store(all, topology: t, on: redis)
            let library = FunctionLibrary(topology: t)
            try library.install(on: redis)
            try compareReads(e, library, on: redis, [(all[0], 0), (all[0], 1_714_600_000_000)])
            let reply = try FeatureClient(connection: redis, topology: t).features(keys: ["fresh"], at: 5)
            #expect(reply[0].flatMap(JSONValue.parse)?["key_time"] == .null)
        }
    }

    @Test("Redis unreachable: connecting fails with a connection error")
    func unreachable() throws {
        let server = try RedisServerProcess()
        let url = server.url
        server.stop(.kill)
        #expect(throws: RedisError.self) { _ = try RedisConnection(url: url) }
    }
}
