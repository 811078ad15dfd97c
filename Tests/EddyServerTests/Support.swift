import EddyCore
import EddyDevKit
import EddyMetrics
import EddyMonitor
import EddyRedis
import EddyServer
import EddyStore
import EddyTopology
import Foundation
import Hummingbird
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A topology of the repository's `Topologies/` directory.
func exampleTopology(_ name: String) throws -> Topology {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return try TopologyLoader(environment: [:]).load(path: root.appendingPathComponent("Topologies/\(name).yaml").path)
}

/// A topology from YAML text: key `user_id`, time `ts` in ms, the given features.
func makeTopology(_ features: String, name: String = "test") throws -> Topology {
    let yaml = """
        name: \(name)
        source: {brokers: "localhost:9092", topic: events}
        key: user_id
        time: {field: ts, unit: ms}
        allowed_lateness: 5m
        sink: {redis: "redis://127.0.0.1:6379", prefix: "\(name):"}
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

/// Clickstream events: `users` users, `perUser` events each, 1 s apart.
func clickstreamEvents(users: Int, perUser: Int, start: Int64 = 1_767_225_600_000) -> [String] {
    var events: [String] = []
    for i in 0..<perUser {
        for u in 0..<users {
            let ts = start + Int64(i * 1000 + u)
            let kind = ["view", "click", "purchase"][(i + u) % 3]
            events.append(#"{"user_id":"u\#(u)","ts":\#(ts),"event":"\#(kind)","item_id":"i\#(i)","price":\#(Double(u % 7) + 0.5)}"#)
        }
    }
    return events
}

/// Writes every live key of `e` as the worker does: `HSET <prefix><key> _state <blob> _fp <fp> _K <K>`.
func store(_ e: FeatureEngine, on redis: RedisConnection) throws {
    let t = e.topology
    let fp = EntityLayout.fingerprint(t)
    var n = 0
    for slot in 0..<Int32(e.store.slotLimit) where e.store.isLive(slot) {
        let key = Array(t.sink.keyPrefix.utf8) + Array(e.store.keyBytes(slot))
        let blob = Array(UnsafeRawBufferPointer(start: e.store.blob(slot), count: e.store.length(slot)))
        try redis.append("HSET", key, EntityLayout.stateField, blob, EntityLayout.fingerprintField, fp,
                         EntityLayout.keyTimeField, e.keyTime(slot) ?? Int64.min)
        n += 1
    }
    let summary = try redis.drain(count: n)
    #expect(summary.errorCount == 0)
}

/// A logger that prints only errors (keeps test output readable).
let quietLogger: Logger = {
    var l = Logger(label: "eddy.test")
    l.logLevel = .error
    return l
}()

/// Runs an `EddyHTTPServer` on an ephemeral loopback port for `body`.
/// `eventLoopReads`: single-key GETs are answered in the channel pipeline
/// (`FeatureGetFastPath`) once the loops are connected, as `eddy serve` does.
func withServer(
    topologies: [Topology], redis: RedisServerProcess, hub: MetricsHub = MetricsHub(), eventLoopReads: Bool = false,
    _ body: (_ port: Int, _ server: EddyHTTPServer) async throws -> Void
) async throws {
    let lanes = RedisLanes(url: redis.url, readOnEventLoops: eventLoopReads)
    let server = EddyHTTPServer(
        options: .init(host: "127.0.0.1", port: 0), topologies: topologies.map { .init(topology: $0, redis: lanes) },
        hub: hub, readiness: [.redis(lanes)], logger: quietLogger)
    defer { lanes.shutdown() }
    try await run(server, body)
}

/// Runs `server` on its configured address until `body` returns. The
/// server and `body` run on `TestServerExecutor`'s threads.
func run(_ server: EddyHTTPServer, _ body: (_ port: Int, _ server: EddyHTTPServer) async throws -> Void)
    async throws
{
    try await withTaskExecutorPreference(TestServerExecutor.shared) {
        let running = try await server.start(executorPreference: TestServerExecutor.shared)
        do {
            try await body(running.port, server)
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }
}

/// A task executor on two threads of its own. The whole test process runs
/// its tests in parallel, and the integration tests block Swift's
/// cooperative pool (as wide as the cores: two here) for a minute at a
/// time; request handlers queued behind them timed out. Here they cannot.
final class TestServerExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = TestServerExecutor(threads: 2)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(threads: Int) {
        for i in 0..<threads {
            let thread = Thread { [unowned self] in self.serve() }
            thread.name = "test-server-\(i)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

// MARK: A plain HTTP/1.1 client over a blocking socket

struct HTTPReply: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) }
}

/// Sends one request (`Connection: close`) on its own thread, so blocking
/// I/O never holds a Swift concurrency thread the server needs.
func http(_ method: String, _ port: Int, _ path: String, body: [UInt8]? = nil, chunked: Bool = false,
          headers: [String: String] = [:]) async throws -> HTTPReply {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result {
                try blockingHTTP(method, port, path, body: body, chunked: chunked, headers: headers)
            })
        }
        thread.start()
    }
}

func get(_ port: Int, _ path: String) async throws -> HTTPReply { try await http("GET", port, path) }

func post(_ port: Int, _ path: String, _ body: String) async throws -> HTTPReply {
    try await http("POST", port, path, body: Array(body.utf8))
}

/// A blocking TCP socket connected to `port` on loopback (reads time out after 30 s).
func connectLoopback(_ port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw TestFailure("connect: \(errno)")
    }
    return fd
}

func blockingHTTP(_ method: String, _ port: Int, _ path: String, body: [UInt8]?, chunked: Bool,
                  headers: [String: String]) throws -> HTTPReply {
    let fd = try connectLoopback(port)
    defer { close(fd) }

    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    var payload: [UInt8] = []
    if let body {
        if chunked {
            head += "Transfer-Encoding: chunked\r\n"
            var i = 0
            while i < body.count {
                let n = min(64 << 10, body.count - i)
                payload += Array((String(n, radix: 16) + "\r\n").utf8) + body[i..<(i + n)] + Array("\r\n".utf8)
                i += n
            }
            payload += Array("0\r\n\r\n".utf8)
        } else {
            head += "Content-Length: \(body.count)\r\n"
            payload = body
        }
    }
    head += "\r\n"
    let request = Array(head.utf8) + payload
    // Write on another thread: a server may answer (413) before reading it all.
    let writer = Thread {
        var sent = 0
        request.withUnsafeBytes { bytes in
            while sent < bytes.count {
                let n = send(fd, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                sent += n
            }
        }
    }
    writer.start()

    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        received += buffer[0..<n]
        if let reply = parseResponse(received) { return reply }
    }
    guard let reply = parseResponse(received, atEOF: true) else {
        throw TestFailure("no complete HTTP response (\(received.count) bytes, errno \(errno))")
    }
    return reply
}

/// A complete response in `bytes` (Content-Length or chunked or until EOF).
func parseResponse(_ bytes: [UInt8], atEOF: Bool = false) -> HTTPReply? {
    let separator: [UInt8] = Array("\r\n\r\n".utf8)
    guard let end = bytes.firstRange(of: separator) else { return nil }
    let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = head[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    let rest = Array(bytes[end.upperBound...])
    if let length = headers["content-length"].flatMap({ Int($0) }) {
        return rest.count >= length ? HTTPReply(status: status, headers: headers, body: Array(rest.prefix(length))) : nil
    }
    if headers["transfer-encoding"]?.lowercased() == "chunked" {
        var body: [UInt8] = []
        var i = 0
        while true {
            guard let lineEnd = rest[i...].firstRange(of: Array("\r\n".utf8)) else { return nil }
            guard let size = Int(String(decoding: rest[i..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else { return nil }
            i = lineEnd.upperBound
            if size == 0 { return HTTPReply(status: status, headers: headers, body: body) }
            guard rest.count >= i + size + 2 else { return nil }
            body += rest[i..<(i + size)]
            i += size + 2
        }
    }
    return atEOF ? HTTPReply(status: status, headers: headers, body: rest) : nil
}

// MARK: Prometheus text

/// A parsed exposition: sample values by `name{label="v",...}` (labels
/// sorted), and each family's type.
struct Exposition {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]

    subscript(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples[Self.key(name, labels)]
    }

    static func key(_ name: String, _ labels: [String: String]) -> String {
        labels.isEmpty ? name : name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }

    /// Every series of a metric name: labels -> value.
    func series(_ name: String) -> [([String: String], Double)] {
        samples.compactMap { key, value in
            guard key == name || key.hasPrefix(name + "{") else { return nil }
            return (Self.labels(of: key), value)
        }
    }

    static func labels(of key: String) -> [String: String] {
        guard let open = key.firstIndex(of: "{") else { return [:] }
        let inner = key[key.index(after: open)..<key.index(before: key.endIndex)]
        var labels: [String: String] = [:]
        var rest = Substring(inner)
        while let eq = rest.firstIndex(of: "=") {
            let name = String(rest[..<eq])
            rest = rest[rest.index(eq, offsetBy: 2)...]
            var value = ""
            var i = rest.startIndex
            while rest[i] != "\"" {
                if rest[i] == "\\" { i = rest.index(after: i) }
                value.append(rest[i])
                i = rest.index(after: i)
            }
            labels[name] = value
            rest = rest[rest.index(after: i)...]
            if rest.first == "," { rest = rest.dropFirst() }
        }
        return labels
    }
}

/// Parses Prometheus text format 0.0.4 strictly enough to catch mistakes:
/// every sample belongs to a family with a `# TYPE` line before it, names
/// and labels are well formed, values are numbers, no series repeats, and
/// histograms have monotonic buckets ending at `+Inf` == `_count`.
func parsePrometheus(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Exposition {
    var e = Exposition()
    let nameRegex = try! Regex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    let labelRegex = try! Regex(#"^[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"$"#)
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 4, "TYPE line: \(line)", sourceLocation: sourceLocation)
            if parts.count == 4 {
                #expect(["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3])), sourceLocation: sourceLocation)
                #expect(e.types[String(parts[2])] == nil, "TYPE repeated for \(parts[2])", sourceLocation: sourceLocation)
                e.types[String(parts[2])] = String(parts[3])
            }
            continue
        }
        if line.hasPrefix("#") { continue }
        guard let space = line.lastIndex(of: " ") else {
            Issue.record("no value: \(line)", sourceLocation: sourceLocation)
            continue
        }
        let series = line[..<space]
        let valueText = line[line.index(after: space)...]
        let value = valueText == "+Inf" ? Double.infinity : valueText == "-Inf" ? -Double.infinity : Double(valueText)
        #expect(value != nil, "value of \(line)", sourceLocation: sourceLocation)
        var name = String(series)
        var labels: [String: String] = [:]
        if let open = series.firstIndex(of: "{") {
            name = String(series[..<open])
            #expect(series.last == "}", "labels of \(line)", sourceLocation: sourceLocation)
            labels = Exposition.labels(of: String(series))
            // Re-split on commas outside quotes to check each pair's syntax.
            var inQuotes = false, escaped = false, current = ""
            var pairs: [String] = []
            for c in series[series.index(after: open)..<series.index(before: series.endIndex)] {
                if escaped { escaped = false; current.append(c); continue }
                if c == "\\" { escaped = true; current.append(c); continue }
                if c == "\"" { inQuotes.toggle() }
                if c == ",", !inQuotes { pairs.append(current); current = ""; continue }
                current.append(c)
            }
            if !current.isEmpty { pairs.append(current) }
            for p in pairs { #expect(p.wholeMatch(of: labelRegex) != nil, "label \(p) in \(line)", sourceLocation: sourceLocation) }
        }
        #expect(name.wholeMatch(of: nameRegex) != nil, "name \(name)", sourceLocation: sourceLocation)
        let family = ["_bucket", "_sum", "_count"].first { name.hasSuffix($0) && e.types[String(name.dropLast($0.count))] == "histogram" }
            .map { String(name.dropLast($0.count)) } ?? name
        #expect(e.types[family] != nil, "no TYPE before \(name)", sourceLocation: sourceLocation)
        let key = Exposition.key(name, labels)
        #expect(e.samples[key] == nil, "series repeated: \(key)", sourceLocation: sourceLocation)
        e.samples[key] = value ?? .nan
    }
    // Histograms: buckets monotonic, +Inf equals _count.
    for (family, type) in e.types where type == "histogram" {
        var byLabels: [[String: String]: [(Double, Double)]] = [:]
        for (labels, value) in e.series(family + "_bucket") {
            var rest = labels
            guard let le = rest.removeValue(forKey: "le") else {
                Issue.record("bucket without le in \(family)", sourceLocation: sourceLocation)
                continue
            }
            byLabels[rest, default: []].append((le == "+Inf" ? .infinity : Double(le) ?? .nan, value))
        }
        for (labels, buckets) in byLabels {
            let sorted = buckets.sorted { $0.0 < $1.0 }
            for (a, b) in zip(sorted, sorted.dropFirst()) {
                #expect(a.1 <= b.1, "\(family)\(labels) buckets not monotonic at le=\(b.0)", sourceLocation: sourceLocation)
            }
            #expect(sorted.last?.0 == .infinity, "\(family)\(labels) has no +Inf bucket", sourceLocation: sourceLocation)
            #expect(sorted.last?.1 == e[family + "_count", labels], "\(family)\(labels): +Inf != _count", sourceLocation: sourceLocation)
        }
    }
    return e
}

/// Hands every live key's state blob of `e` to `monitor`, as the writer
/// does after a flush.
func observeAll(_ e: FeatureEngine, _ monitor: FeatureMonitor) {
    var bytes: [UInt8] = []
    var ranges: [Range<Int>] = []
    for slot in 0..<Int32(e.store.slotLimit) where e.store.isLive(slot) {
        let start = bytes.count
        bytes += UnsafeRawBufferPointer(start: e.store.blob(slot), count: e.store.length(slot))
        ranges.append(start..<bytes.count)
    }
    bytes.withUnsafeBytes { all in
        monitor.written(count: ranges.count) { i in UnsafeRawBufferPointer(rebasing: all[ranges[i]]) }
    }
}
