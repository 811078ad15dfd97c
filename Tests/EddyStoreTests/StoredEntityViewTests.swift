import EddyRedis
import EddyStore
import Testing

/// The worker's load replies read in place (`EntityLoader.readEntity`) equal
/// the decoded path (`StoredEntity(reply:)`) for every shape a real Redis
/// answers: a stored entity, nothing stored, some fields only, odd fence
/// texts and an error reply; and the worker's concrete request for byte
/// keys (`request(bytes:fence:)`) asks what the generic one asks, parts too.
@Suite("Load replies read in place")
struct StoredEntityViewTests {
    @Test func sameAsDecoded() throws {
        try withRedis { server, redis throws in
            let fence = "t:3"
            let hashes: [(String, [(String, [UInt8])])] = [
                ("e:full", [("_state", [1, 0, 42, 13, 10]), ("_fp", Array("abc".utf8)), ("_o:t:3", Array("1234".utf8)), ("a", Array("x".utf8))]),
                ("e:empty-state", [("_state", []), ("_fp", []), ("_o:t:3", Array("0".utf8))]),
                ("e:no-fence", [("_state", [9, 9]), ("_fp", Array("fp".utf8))]),
                ("e:plus", [("_o:t:3", Array("+5".utf8))]),
                ("e:minus", [("_o:t:3", Array("-7".utf8)), ("b", Array("y".utf8))]),
                ("e:bad", [("_o:t:3", Array("12a".utf8))]),
                ("e:huge", [("_o:t:3", Array("99999999999999999999".utf8))]),
                ("e:max", [("_o:t:3", Array("9223372036854775807".utf8))]),
                ("e:dash", [("_o:t:3", Array("-".utf8))]),
            ]
            for (key, fields) in hashes {
                try redis.append { b in
                    b.add("HSET")
                    b.add(key)
                    for (f, v) in fields { b.add(f); b.add(v) }
                }
            }
            try redis.append("SET", "e:string", "not a hash")
            _ = try redis.pipeline(count: hashes.count + 1)
            let keys = hashes.map(\.0) + ["e:missing", "e:string"]
            for fieldNames in [[], ["a", "b"]] {
                let loader = EntityLoader(client: .single(try RedisConnection(url: server.url)), prefix: Array("e:".utf8),
                                          fields: fieldNames)
                for key in keys {
                    let k = Array(key.dropFirst(2).utf8)
                    try redis.append { b in loader.request(k, fence: Array(fence.utf8), into: &b) }
                    try redis.append { b in loader.request(k, fence: Array(fence.utf8), into: &b) }
                    // The worker's concrete request for byte keys asks the same.
                    k.withUnsafeBytes { kb in
                        Array(fence.utf8).withUnsafeBytes { fb in
                            try? redis.append { b in loader.request(bytes: kb, fence: fb, into: &b) }
                        }
                    }
                    let decoded = StoredEntity(reply: try redis.readReply(), hasFence: true, fieldCount: fieldNames.count)
                    let inPlace = try loader.readEntity(from: redis)
                    let byBytes = try loader.readEntity(from: redis)
                    #expect(byBytes.state == decoded.state && byBytes.fingerprint == decoded.fingerprint
                            && byBytes.fence == decoded.fence && byBytes.fields == decoded.fields, "\(key)")
                    #expect(inPlace.state == decoded.state, "\(key)")
                    #expect(inPlace.fingerprint == decoded.fingerprint, "\(key)")
                    #expect(inPlace.fence == decoded.fence, "\(key)")
                    #expect(inPlace.fields.count == fieldNames.count, "\(key)")
                    #expect(inPlace.fields.map { $0 } == decoded.fields.map { $0 }, "\(key)")
                }
            }
            // Parts: `_p:<partition>` instead of `_state`.
            try redis.append("HSET", "e:part", "_p:t:3", "P", "_fp", "f", "_o:t:3", "8")
            _ = try redis.pipeline(count: 1)
            let parts = EntityLoader(target: .single(server.url), prefix: Array("e:".utf8), readsParts: true)
            Array("part".utf8).withUnsafeBytes { kb in
                Array(fence.utf8).withUnsafeBytes { fb in
                    try? redis.append { b in parts.request(bytes: kb, fence: fb, into: &b) }
                }
            }
            let part = try parts.readEntity(from: redis)
            #expect(part.state == Array("P".utf8) && part.fingerprint == Array("f".utf8) && part.fence == 8)

            // Spot checks against the hand-written values.
            let loader = EntityLoader(client: .single(try RedisConnection(url: server.url)), prefix: Array("e:".utf8))
            func read(_ k: String) throws -> StoredEntity {
                try redis.append { b in loader.request(Array(k.utf8), fence: Array(fence.utf8), into: &b) }
                return try loader.readEntity(from: redis)
            }
            let full = try read("full")
            #expect(full.state == [1, 0, 42, 13, 10] && full.fingerprint == Array("abc".utf8) && full.fence == 1234)
            let missing = try read("missing")
            #expect(missing.state == nil && missing.fingerprint == nil && missing.fence == nil)
            #expect(try read("plus").fence == 5)
            #expect(try read("minus").fence == -7)
            #expect(try read("huge").fence == nil)
            #expect(try read("max").fence == Int64.max)
            #expect(try read("empty-state").state == [])
        }
    }
}
