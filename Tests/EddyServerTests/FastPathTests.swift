import EddyCore
import EddyMetrics
import EddyRedis
import EddyServer
import EddyStore
import Foundation
import Testing

/// Single-key reads answered in the channel pipeline (`FeatureGetFastPath`),
/// mixed with everything the router answers, on one keep-alive connection.
@Suite("Single-key reads in the channel pipeline", .serialized)
struct FastPathTests {
    @Test("pipelined reads, other routes, bad requests and a key Redis fails on: every reply, in order, as the router would answer")
    func pipelinedInOrder() async throws {
        let (redis, t, client) = try RouteTests.fixture()
        let at = RouteTests.t0 + 600_000
        // A string where the library expects a hash: Redis answers WRONGTYPE,
        // the loop hands the request to the router, the router answers 500.
        try RedisConnection(url: redis.url).command("SET", "clickstream:broken", "x").checked()
        let hub = MetricsHub()
        try await withServer(topologies: [t], redis: redis, hub: hub, eventLoopReads: true) { port, _ in
            // The first reads check the library and connect each loop to Redis.
            for _ in 0..<6 {
                #expect(try await get(port, "/v1/features/clickstream/u1").status == 200)
                try await Task.sleep(for: .milliseconds(50))
            }
            let before = parsePrometheus(try await get(port, "/metrics").text)["eddy_serve_event_loop_reads_total", ["topology": "clickstream"]] ?? 0

            // Reads answered here one after another (later requests wait
            // in the handler), until one Redis fails on: that one is handed
            // to the router, and so is everything after it (the router owes
            // a reply, and replies keep the requests' order).
            var paths: [String] = []
            var expected: [(status: Int, body: [UInt8]?)] = []
            func read(_ key: String) throws {
                paths.append("/v1/features/clickstream/\(key)?at=\(at)")
                expected.append((Int(key.dropFirst())! < 20 ? 200 : 404, try client.jsonLines(keys: [key], at: at)[0]))
            }
            for i in 0..<10 { try read("u\(i * 3 % 25)") }
            paths.append("/v1/features/clickstream/broken")
            expected.append((500, nil))
            for i in 0..<80 {
                switch i % 10 {
                case 0:
                    paths.append("/healthz")
                    expected.append((200, nil))
                case 3:
                    paths.append("/v1/features/clickstream/broken")
                    expected.append((500, nil))
                case 5:
                    paths.append("/v1/features/payments/u1")
                    expected.append((404, nil))
                case 7:
                    paths.append("/v1/features/clickstream/u1?at=soon")
                    expected.append((400, nil))
                default:
                    try read("u\(i % 25)")
                }
            }
            let replies = try await pipelined(port, paths, closeLast: true)
            #expect(replies.count == paths.count)
            for (i, (reply, want)) in zip(replies, expected).enumerated() {
                #expect(reply.status == want.status, "request \(i) \(paths[i]): \(reply.text)")
                if let body = want.body { #expect(reply.body == body, "request \(i) \(paths[i])") }
            }
            let error = (replies[10].json as? [String: Any])?["error"] as? String
            #expect(error?.contains("WRONGTYPE") == true, "\(replies[10].text)")
            #expect(replies[11].text.contains("\"status\":\"ok\""))

            let after = parsePrometheus(try await get(port, "/metrics").text)
            #expect(after["eddy_serve_event_loop_reads_total", ["topology": "clickstream"]] == before + 10)
            let route = "/v1/features/{topology}/{key}"
            #expect(after["eddy_http_requests_total", ["route": route, "method": "GET", "status": "500"]] == 9)
            #expect(after["eddy_http_requests_total", ["route": route, "method": "GET", "status": "400"]] == 8)
        }
    }

    @Test("pipelined reads, then a malformed request in the same write: every read answered in order, then the 400")
    func readsBeforeAMalformedRequestAreAnswered() async throws {
        let (redis, t, client) = try RouteTests.fixture()
        let at = RouteTests.t0 + 600_000
        try await withServer(topologies: [t], redis: redis, hub: MetricsHub(), eventLoopReads: true) { port, _ in
            for _ in 0..<6 {  // checks the library, connects each loop
                #expect(try await get(port, "/v1/features/clickstream/u1").status == 200)
                try await Task.sleep(for: .milliseconds(50))
            }
            for (keys, tail) in [(["u1", "u2", "nokey"], ["/healthz"]), (["u3", "nokey", "u4"], [])] {
                let paths = keys.map { "/v1/features/clickstream/\($0)?at=\(at)" } + tail
                let replies = try await pipelined(port, paths, closeLast: false, then: "GARBAGE\r\n\r\n")
                #expect(replies.count == paths.count + 1, "\(replies.map(\.status))")
                for (i, key) in keys.enumerated() where i < replies.count {
                    #expect(replies[i].status == (key == "nokey" ? 404 : 200), "request \(i)")
                    if key != "nokey" { #expect(replies[i].body == (try client.jsonLines(keys: [key], at: at)[0])) }
                }
                if replies.count == paths.count + 1 {
                    if !tail.isEmpty { #expect(replies[keys.count].status == 200) }
                    #expect(replies.last?.status == 400)
                }
            }
        }
    }
}

/// Sends every request on one keep-alive connection in a single write (the
/// last with `Connection: close`, unless `then` follows: raw bytes sent in
/// the same write), then reads the replies until the server closes the
/// connection.
func pipelined(_ port: Int, _ paths: [String], closeLast: Bool, then raw: String = "") async throws -> [HTTPReply] {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result { try blockingPipeline(port, paths, then: raw) })
        }.start()
    }
}

private func blockingPipeline(_ port: Int, _ paths: [String], then raw: String) throws -> [HTTPReply] {
    let fd = try connectLoopback(port)
    defer { close(fd) }
    var text = ""
    for (i, path) in paths.enumerated() {
        let close = i == paths.count - 1 && raw.isEmpty
        text += "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(close ? "Connection: close\r\n" : "")\r\n"
    }
    text += raw
    let request = Array(text.utf8)
    let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    guard sent == request.count else { throw TestFailure("sent \(sent) of \(request.count) bytes") }

    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw TestFailure("recv: errno \(errno) after \(received.count) bytes") }
        if n == 0 { break }
        received += buffer[0..<n]
    }
    // Every reply has a Content-Length.
    var replies: [HTTPReply] = []
    var rest = received[...]
    while !rest.isEmpty {
        guard let reply = parseResponse(Array(rest)), let length = reply.headers["content-length"].flatMap({ Int($0) }),
              let headEnd = rest.firstRange(of: Array("\r\n\r\n".utf8))
        else { throw TestFailure("cannot parse reply \(replies.count + 1) from \(rest.count) bytes") }
        replies.append(reply)
        rest = rest[(headEnd.upperBound + length)...]
    }
    return replies
}
