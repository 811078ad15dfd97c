import EddyCore
import EddyDevKit
import EddyRedis
import EddyServer
import EddyStore
import Foundation
import Testing

/// Every route of `eddy serve` against a real redis-server, over real HTTP.
@Suite("HTTP routes", .serialized)
struct RouteTests {
    static let t0: Int64 = 1_767_225_600_000

    /// A Redis holding 20 clickstream users, and the client reads to compare with.
    static func fixture() throws -> (RedisServerProcess, Topology, FeatureClient) {
        let server = try RedisServerProcess()
        let t = try exampleTopology("clickstream")
        let connection = try RedisConnection(url: server.url)
        try store(engine(t, clickstreamEvents(users: 20, perUser: 6, start: t0)), on: connection)
        return (server, t, FeatureClient(connection: connection, topology: t))
    }

    @Test("GET one entity returns exactly the FCALL object; ?at= is epoch ms or RFC 3339", arguments: [false, true])
    func getOne(eventLoopReads: Bool) async throws {
        let (redis, t, client) = try Self.fixture()
        let at = Self.t0 + 600_000
        let direct = try client.features(keys: ["u3"], at: at)[0]!
        try await withServer(topologies: [t], redis: redis, eventLoopReads: eventLoopReads) { port, _ in
            let r = try await get(port, "/v1/features/clickstream/u3?at=\(at)")
            #expect(r.status == 200)
            #expect(r.headers["content-type"] == "application/json")
            #expect(r.body == direct)
            let rfc = try await get(port, "/v1/features/clickstream/u3?at=2026-01-01T00:10:00Z")
            #expect(rfc.status == 200 && rfc.body == direct)
            // With an offset, percent-encoded.
            let offset = try await get(port, "/v1/features/clickstream/u3?at=2026-01-01T01%3A10%3A00%2B01%3A00")
            #expect(offset.status == 200 && offset.body == direct)
            // Without ?at=, Redis's clock: the session is long over by now.
            let now = try await get(port, "/v1/features/clickstream/u3")
            #expect(now.status == 200)
            #expect((now.json as? [String: Any])?["session_active"] as? Bool == false)
            let object = try #require(r.json as? [String: Any])
            #expect(object["key"] as? String == "u3")
            #expect(object["clicks_1h"] != nil && object["session_events"] != nil)
        }
    }

    @Test("an unknown key is 404 {key, found:false}; an unknown topology 404 {error}; a bad ?at= 400", arguments: [false, true])
    func notFoundAndBadRequests(eventLoopReads: Bool) async throws {
        let (redis, t, _) = try Self.fixture()
        try await withServer(topologies: [t], redis: redis, eventLoopReads: eventLoopReads) { port, _ in
            let missing = try await get(port, "/v1/features/clickstream/nobody")
            #expect(missing.status == 404)
            #expect(missing.text == #"{"key":"nobody","found":false}"#)
            // Keys are percent-decoded once.
            let odd = try await get(port, "/v1/features/clickstream/a%20b%2Fc%22d")
            #expect(odd.status == 404)
            #expect((odd.json as? [String: Any])?["key"] as? String == "a b/c\"d")

            let topology = try await get(port, "/v1/features/payments/u1")
            #expect(topology.status == 404)
            let error = try #require((topology.json as? [String: Any])?["error"] as? String)
            #expect(error.contains("unknown topology 'payments'") && error.contains("clickstream"))
            let postTopology = try await post(port, "/v1/features/payments", #"["u1"]"#)
            #expect(postTopology.status == 404)

            for bad in ["yesterday", "2026-13-01T00:00:00Z", "", "1e3", "99999999999999999999"] {
                let r = try await get(port, "/v1/features/clickstream/u1?at=\(bad)")
                #expect(r.status == 400, "at=\(bad)")
                let message = (r.json as? [String: Any])?["error"] as? String
                #expect(message?.contains("neither epoch milliseconds nor RFC 3339") == true, "at=\(bad): \(r.text)")
            }
            let postBadAt = try await post(port, "/v1/features/clickstream?at=soon", #"["u1"]"#)
            #expect(postBadAt.status == 400)

            let noRoute = try await get(port, "/v2/anything")
            #expect(noRoute.status == 404)
            #expect((noRoute.json as? [String: Any])?["error"] as? String == "no route GET /v2/anything")
        }
    }

    @Test("POST a list of keys: one list in order, found:false objects for missing keys, pipelined past 512")
    func postMany() async throws {
        let (redis, t, client) = try Self.fixture()
        let at = Self.t0 + 3_600_000
        let keys = ["u1", "nobody", "u2", "u1", "u19"]
        let expected = try client.jsonLines(keys: keys, at: at)
        try await withServer(topologies: [t], redis: redis) { port, _ in
            let r = try await post(port, "/v1/features/clickstream?at=\(at)", try String(decoding: JSONEncoder().encode(keys), as: UTF8.self))
            #expect(r.status == 200)
            #expect(r.body == Array("[".utf8) + Array(expected.joined(separator: Array(",".utf8))) + Array("]".utf8))
            let list = try #require(r.json as? [[String: Any]])
            #expect(list.map { $0["key"] as? String } == keys)
            #expect(list[1]["found"] as? Bool == false)

            let empty = try await post(port, "/v1/features/clickstream", "[]")
            #expect(empty.status == 200 && empty.text == "[]")
            let integers = try await post(port, "/v1/features/clickstream", "[7, \"u7\"]")
            #expect(integers.status == 200)
            #expect((integers.json as? [[String: Any]])?.map { $0["key"] as? String } == ["7", "u7"])

            // 1500 keys: three pipelines, order kept.
            let many = (0..<1500).map { "u\($0 % 40)" }
            let big = try await post(port, "/v1/features/clickstream?at=\(at)", try String(decoding: JSONEncoder().encode(many), as: UTF8.self))
            #expect(big.status == 200)
            let objects = try #require(big.json as? [[String: Any]])
            #expect(objects.count == 1500)
            #expect(objects.map { $0["key"] as? String } == many)
            // u0...u19 exist, u20...u39 do not.
            #expect(objects.filter { $0["found"] as? Bool == false }.count == many.filter { Int($0.dropFirst())! >= 20 }.count)
            #expect(objects.filter { $0["found"] == nil }.allSatisfy { Int(($0["key"] as! String).dropFirst())! < 20 })
        }
    }

    @Test("bad JSON, a non-list and non-string keys are 400; a 10 MB body is 413")
    func badBodies() async throws {
        let (redis, t, _) = try Self.fixture()
        try await withServer(topologies: [t], redis: redis) { port, _ in
            for (body, fragment) in [
                (#"["u1""#, "not valid JSON"), ("u1", "not valid JSON"), ("", "not valid JSON"),
                (#"{"keys":["u1"]}"#, "must be a JSON list"), (#""u1""#, "must be a JSON list"),
                ("[true]", "must be a JSON string"), (#"[["u1"]]"#, "must be a JSON string"), ("[null]", "must be a JSON string"),
                ("[1.5]", "must be a JSON string"),
            ] {
                let r = try await post(port, "/v1/features/clickstream", body)
                #expect(r.status == 400, "\(body)")
                let message = (r.json as? [String: Any])?["error"] as? String
                #expect(message?.contains(fragment) == true, "\(body): \(r.text)")
            }
            let tenMB = [UInt8](repeating: UInt8(ascii: "a"), count: 10_000_000)
            let declared = try await http("POST", port, "/v1/features/clickstream", body: tenMB)
            #expect(declared.status == 413)
            #expect((declared.json as? [String: Any])?["error"] as? String != nil)
            let chunked = try await http("POST", port, "/v1/features/clickstream", body: tenMB, chunked: true)
            #expect(chunked.status == 413)
            // Just over the limit, and just under it (a valid list of 1 MiB).
            let over = try await http("POST", port, "/v1/features/clickstream", body: [UInt8](repeating: 32, count: (1 << 20) + 1))
            #expect(over.status == 413)
            let padded = Array("[\"u1\"".utf8) + [UInt8](repeating: 32, count: (1 << 20) - 6) + Array("]".utf8)
            #expect(padded.count == 1 << 20)
            let under = try await http("POST", port, "/v1/features/clickstream", body: padded)
            #expect(under.status == 200)
            // The server is still fine.
            #expect(try await get(port, "/v1/features/clickstream/u1").status == 200)
        }
    }

    @Test("Redis down: 503 with a message, /readyz 503; Redis back: answers again without a restart", arguments: [false, true])
    func redisDown(eventLoopReads: Bool) async throws {
        let (redis, t, _) = try Self.fixture()
        try await withServer(topologies: [t], redis: redis, eventLoopReads: eventLoopReads) { port, _ in
            #expect(try await get(port, "/v1/features/clickstream/u1").status == 200)
            #expect(try await get(port, "/readyz").status == 200)
            redis.stop(.kill)

            let down = try await get(port, "/v1/features/clickstream/u1")
            #expect(down.status == 503)
            let message = try #require((down.json as? [String: Any])?["error"] as? String)
            #expect(message.contains("Redis"), "\(message)")
            let downMany = try await post(port, "/v1/features/clickstream", #"["u1","u2"]"#)
            #expect(downMany.status == 503)
            // Readiness is cached for a second.
            try await Task.sleep(for: .milliseconds(1100))
            let notReady = try await get(port, "/readyz")
            #expect(notReady.status == 503)
            #expect((notReady.json as? [String: Any])?["ready"] as? Bool == false)
            #expect(try await get(port, "/healthz").status == 200)

            // Back, empty (no persistence): the library is reinstalled, the
            // entity is gone, and nothing needed a restart.
            try redis.start()
            let back = try await get(port, "/v1/features/clickstream/u1")
            #expect(back.status == 404, "\(back.text)")
            let connection = try RedisConnection(url: redis.url)
            try store(engine(t, clickstreamEvents(users: 3, perUser: 2, start: Self.t0)), on: connection)
            #expect(try await get(port, "/v1/features/clickstream/u1").status == 200)
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await get(port, "/readyz").status == 200)
        }
    }

    @Test("concurrent requests batched on shared connections each get their own answer", arguments: [false, true])
    func concurrentBatching(eventLoopReads: Bool) async throws {
        let (redis, t, client) = try Self.fixture()
        let cases = (0..<120).map { i in ("u\(i % 25)", Self.t0 + Int64(i) * 97_000) }
        var expected: [[UInt8]] = []
        for (key, at) in cases { expected.append(try client.jsonLines(keys: [key], at: at)[0]) }
        let want = expected
        try await withServer(topologies: [t], redis: redis, eventLoopReads: eventLoopReads) { port, _ in
            let replies = try await withThrowingTaskGroup(of: (Int, HTTPReply).self) { group in
                for (i, (key, at)) in cases.enumerated() {
                    group.addTask { (i, try await get(port, "/v1/features/clickstream/\(key)?at=\(at)")) }
                }
                var all: [Int: HTTPReply] = [:]
                for try await (i, r) in group { all[i] = r }
                return all
            }
            for i in cases.indices {
                #expect(replies[i]?.body == want[i], "request \(i): \(cases[i])")
                #expect(replies[i]?.status == (Int(cases[i].0.dropFirst())! < 20 ? 200 : 404))
            }
            // The library flushed under the server: reinstalled on the next read.
            try RedisConnection(url: redis.url).command("FUNCTION", "FLUSH").checked()
            let again = try await get(port, "/v1/features/clickstream/\(cases[0].0)?at=\(cases[0].1)")
            #expect(again.status == 200 && again.body == want[0])
        }
    }

    @Test("/metrics parses as Prometheus text and counts exactly the requests sent", arguments: [false, true])
    func metricsCountRequests(eventLoopReads: Bool) async throws {
        let (redis, t, _) = try Self.fixture()
        try await withServer(topologies: [t], redis: redis, eventLoopReads: eventLoopReads) { port, _ in
            for _ in 0..<7 { _ = try await get(port, "/v1/features/clickstream/u1") }
            for _ in 0..<3 { _ = try await get(port, "/v1/features/clickstream/nobody") }
            for _ in 0..<2 { _ = try await get(port, "/v1/features/clickstream/u1?at=bad") }
            _ = try await post(port, "/v1/features/clickstream", #"["u1","u2","nobody"]"#)
            _ = try await post(port, "/v1/features/clickstream", "[")
            _ = try await get(port, "/nowhere")
            _ = try await get(port, "/healthz")

            let r = try await get(port, "/metrics")
            #expect(r.status == 200)
            #expect(r.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            let m = parsePrometheus(r.text)
            let one = "/v1/features/{topology}/{key}", many = "/v1/features/{topology}"
            func requests(_ route: String, _ method: String, _ status: Int) -> Double? {
                m["eddy_http_requests_total", ["route": route, "method": method, "status": String(status)]]
            }
            #expect(m.types["eddy_http_requests_total"] == "counter")
            #expect(m.types["eddy_http_request_duration_seconds"] == "histogram")
            #expect(requests(one, "GET", 200) == 7)
            #expect(requests(one, "GET", 404) == 3)
            #expect(requests(one, "GET", 400) == 2)
            #expect(requests(many, "POST", 200) == 1)
            #expect(requests(many, "POST", 400) == 1)
            #expect(requests("unmatched", "GET", 404) == 1)
            #expect(requests("/healthz", "GET", 200) == 1)
            // This scrape is counted after it is written.
            #expect(requests("/metrics", "GET", 200) == nil)
            let durations = m["eddy_http_request_duration_seconds_count", ["route": one, "method": "GET", "status": "200"]]
            #expect(durations == 7)
            #expect(m["eddy_serve_keys_total", ["topology": "clickstream", "result": "found"]] == 9)
            #expect(m["eddy_serve_keys_total", ["topology": "clickstream", "result": "missing"]] == 4)
            // Keys never become label values.
            #expect(!r.text.contains("nobody"))

            // On the event loops, the reads after the first few (the library
            // check, each loop's connection) are answered in the pipeline.
            let onLoops = m["eddy_serve_event_loop_reads_total", ["topology": "clickstream"]]
            if eventLoopReads { #expect((onLoops ?? 0) >= 5, "\(String(describing: onLoops))") } else { #expect(onLoops == nil) }

            let again = parsePrometheus(try await get(port, "/metrics").text)
            #expect(again["eddy_http_requests_total", ["route": "/metrics", "method": "GET", "status": "200"]] == 1)
        }
    }
}
