import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import EddyStore
import EddyTopology
import Foundation
import Testing

/// Real processes for end-to-end tests: the `eddy` binary, a mock Kafka
/// cluster over TCP, a real `redis-server`.
enum Harness {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The built `eddy` binary (`swift build` builds it; `.ci/run` does).
    static var eddy: String {
        for config in ["debug", "release"] {
            let p = root.appendingPathComponent(".build/\(config)/eddy").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        Issue.record("the eddy binary is not built: run `swift build` before `swift test`")
        return "/nonexistent/eddy"
    }

    static func topology(_ name: String = "clickstream") throws -> Topology {
        try TopologyLoader(environment: [:]).load(path: root.appendingPathComponent("Topologies/\(name).yaml").path)
    }

    /// A topology file anywhere (e.g. a test's variant in its temp dir).
    static func topology(path: String) throws -> Topology {
        try TopologyLoader(environment: [:]).load(path: path)
    }

    static func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-it-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// Runs `eddy args` to completion.
    @discardableResult
    static func run(_ args: [String], in dir: URL, environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        let p = try Background(args, in: dir, name: "cmd-\(UUID().uuidString.prefix(6))", environment: environment)
        let status = p.wait()
        return (status, p.log)
    }

    /// Runs `eddy args` to completion with stdout and stderr apart, without
    /// EDDY_BROKERS and EDDY_REDIS_URL from the environment (`environment`
    /// sets variables on top).
    static func capture(_ args: [String], in dir: URL, environment: [String: String] = [:]) throws
        -> (status: Int32, out: String, err: String)
    {
        let id = UUID().uuidString.prefix(6)
        let outPath = dir.appendingPathComponent("cmd-\(id).out").path, errPath = dir.appendingPathComponent("cmd-\(id).err").path
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: eddy)
        p.arguments = args
        p.currentDirectoryURL = root
        var env = ProcessInfo.processInfo.environment
        env["EDDY_BROKERS"] = nil
        env["EDDY_REDIS_URL"] = nil
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle(forWritingAtPath: outPath)!
        p.standardError = FileHandle(forWritingAtPath: errPath)!
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}

/// An `eddy` process with its stderr in a file.
final class Background: @unchecked Sendable {
    let process = Process()
    let logPath: String

    /// `environment`: variables set (or, with an empty value, removed) on top of this process's.
    init(_ args: [String], in dir: URL, name: String, environment: [String: String] = [:]) throws {
        logPath = dir.appendingPathComponent("\(name).log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Harness.eddy)
        process.arguments = args
        process.currentDirectoryURL = Harness.root
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v.isEmpty ? nil : v }
            process.environment = env
        }
        let handle = FileHandle(forWritingAtPath: logPath)!
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends `s`. SIGTERM and SIGINT wait first (up to 30 s) until the
    /// process catches them, i.e. until ServiceLifecycle's signal sources
    /// are registered (libdispatch installs its handler then). Before that
    /// the default action kills it: `eddy`'s async main leaves its first
    /// thread in libdispatch's `sigsuspend` with an empty signal mask, so a
    /// pending SIGTERM is delivered there. Being blocked is no sign of
    /// readiness here: a process started from a test's (libdispatch) thread
    /// inherits a mask that blocks nearly everything, which is what let CI
    /// see a just-started `eddy run` end by signal 15 with an empty log.
    func signal(_ s: Int32) {
        if s == SIGTERM || s == SIGINT {
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning && !catchesSignal(s) && Date() < deadline { usleep(5_000) }
        }
        kill(process.processIdentifier, s)
    }

    /// Whether the process has a handler for `s`, from `SigCgt` in
    /// `/proc/<pid>/status` (a hex bit set, bit `s - 1`).
    private func catchesSignal(_ s: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return false }
        for line in status.split(separator: "\n") where line.hasPrefix("SigCgt:") {
            if let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16), mask & (1 << UInt64(s - 1)) != 0 { return true }
        }
        return false
    }

    var isRunning: Bool { process.isRunning }

    @discardableResult
    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Waits up to `seconds` for the exit; nil if still running.
    func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

/// A mock Kafka cluster plus helpers to watch a consumer group's progress.
final class KafkaFixture: @unchecked Sendable {
    let cluster: MockCluster
    let topic: String
    let partitions: Int

    init(topic: String = "clickstream", partitions: Int = 8, extraTopics: [String] = ["clickstream.dlq"]) throws {
        cluster = try MockCluster(brokers: 1, topics: [(topic, partitions)] + extraTopics.map { ($0, partitions) })
        self.topic = topic
        self.partitions = partitions
    }

    var brokers: String { cluster.bootstrapServers }

    /// High watermarks of every partition.
    func endOffsets() throws -> [Int32: Int64] {
        let c = try KafkaConsumer(config: ["bootstrap.servers": brokers], topics: [])
        defer { try? c.close() }
        var out: [Int32: Int64] = [:]
        for p in 0..<Int32(partitions) { out[p] = try c.watermarks(topic: topic, partition: p).high }
        return out
    }

    /// The group's committed offsets.
    func committed(group: String) throws -> [Int32: Int64] {
        let c = try KafkaConsumer(config: ["bootstrap.servers": brokers, "group.id": group], topics: [])
        defer { try? c.close() }
        let tps = (0..<Int32(partitions)).map { TopicPartition(topic: topic, partition: $0) }
        var out: [Int32: Int64] = [:]
        for tpo in try c.committed(partitions: tps) { out[tpo.partition] = tpo.offset }
        return out
    }

    /// Waits until the group has committed every partition's end.
    func waitUntilCommitted(group: String, timeout: Double) throws -> Bool {
        let end = try endOffsets()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let done = try committed(group: group)
            if end.allSatisfy({ done[$0.key] ?? -1 >= $0.value }) { return true }
            usleep(200_000)
        }
        return false
    }

    /// Every record of a topic, read from the beginning, with headers.
    func readAll(topic: String) throws -> [(key: [UInt8]?, value: [UInt8], headers: [String: String])] {
        let c = try KafkaConsumer(config: ["bootstrap.servers": brokers], topics: [], partitionEOF: true)
        defer { try? c.close() }
        try c.assign((0..<Int32(partitions)).map { TopicPartitionOffset(topic: topic, partition: $0, offset: KafkaOffset.beginning) })
        var out: [(key: [UInt8]?, value: [UInt8], headers: [String: String])] = []
        var eof = Set<Int32>()
        let deadline = Date().addingTimeInterval(30)
        while eof.count < partitions && Date() < deadline {
            try c.poll(maxMessages: 1000, timeoutMs: 200) { event in
                switch event {
                case .message(let m):
                    var h: [String: String] = [:]
                    for header in m.headers { h[header.key] = header.value.map { String(decoding: $0, as: UTF8.self) } }
                    out.append((m.key.map { Array($0) }, Array(m.payload ?? UnsafeRawBufferPointer(start: nil, count: 0)), h))
                case .partitionEOF(let e): eof.insert(e.partition)
                case .error: break
                }
            }
        }
        return out
    }
}

/// Compares every key's state in Redis with `eddy replay --emit final` on
/// the same events: all features read at each key's key time. `topologyPath`
/// (a file anywhere) replaces the name under Topologies/.
func compareRedisWithReplay(events: String, redis: RedisURL, dir: URL, prefix: String = "clickstream:",
                            topology name: String = "clickstream",
                            topologyPath: String? = nil) throws -> (keys: Int, mismatches: [String]) {
    try compareRedisWithReplay(events: events, target: .single(redis), dir: dir, prefix: prefix, topology: name,
                               topologyPath: topologyPath)
}

/// The same comparison against a single server or a Redis Cluster.
func compareRedisWithReplay(events: String, target: RedisTarget, dir: URL, prefix: String = "clickstream:",
                            topology name: String = "clickstream",
                            topologyPath: String? = nil) throws -> (keys: Int, mismatches: [String]) {
    let out = dir.appendingPathComponent("replay-\(UUID().uuidString.prefix(6)).jsonl").path
    let path = topologyPath ?? "Topologies/\(name).yaml"
    let r = try Harness.run(["replay", "--topology", path, "--input", events, "--out", out], in: dir)
    #expect(r.status == 0, "replay failed: \(r.stderr)")
    let engine = FeatureEngine(topology: try topologyPath.map { try Harness.topology(path: $0) } ?? Harness.topology(name))
    let conn = try RedisClient(target)
    var mismatches: [String] = []
    var keys = 0
    let text = try String(contentsOfFile: out, encoding: .utf8)
    let lines = text.split(separator: "\n")
    // One pipeline of HGETs (routed per slot on a cluster).
    let states = try conn.pipeline(count: lines.count) { i, b in
        let key = (try? JSONSerialization.jsonObject(with: Data(lines[i].utf8)) as? [String: Any])?["key"] as? String ?? ""
        b.add("HGET"); b.add(prefix + key); b.add("_state")
    }
    for (line, reply) in zip(lines, states) {
        keys += 1
        guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let key = obj["key"] as? String, let k = (obj["key_time"] as? NSNumber)?.int64Value
        else { mismatches.append("unparsable replay line \(line)"); continue }
        guard let blob = reply.bytes else { mismatches.append("\(key): missing in Redis"); continue }
        let got = finalLine(engine, key: key, keyTime: k, blob: blob)
        if got != String(line) { mismatches.append("\(key):\n  redis  \(got)\n  replay \(line)") }
    }
    var size: Int64 = 0
    try conn.forEachMaster { c throws(RedisError) in size += try c.command("DBSIZE").integer ?? 0 }
    let epochs = try partitionEpochKeys(conn, prefix: prefix)
    if size - Int64(epochs) != Int64(keys) { mismatches.append("Redis holds \(size) keys (\(epochs) partition epochs), replay \(keys)") }
    return (keys, mismatches)
}

/// How many partition epoch keys (`<prefix>_fence:<topic>:<partition>`, the
/// worker's fence on a single server: `PartitionEpochs`) Redis holds; each
/// must be a positive integer.
func partitionEpochKeys(_ conn: RedisClient, prefix: String) throws -> Int {
    var count = 0
    try conn.forEachMaster { c throws(RedisError) in
        var cursor = "0"
        repeat {
            let reply = try c.command("SCAN", cursor, "MATCH", prefix + PartitionEpochs.keyInfix + "*", "COUNT", "1000")
            let parts = reply.array ?? []
            cursor = parts.first?.string ?? "0"
            for key in parts.dropFirst().first?.array ?? [] {
                let value = try c.command("GET", key.bytes ?? []).string.flatMap { Int64($0) } ?? 0
                #expect(value > 0, "epoch key \(key.string ?? "") holds a positive integer")
                count += 1
            }
        } while cursor != "0"
    }
    return count
}

/// A state blob read at its key time as `eddy replay --emit final` writes
/// the key's line (without the newline).
func finalLine(_ engine: FeatureEngine, key: String, keyTime k: Int64, blob: [UInt8]) -> String {
    var w = JSONWriter()
    w.raw("{\"key\":")
    w.string(key)
    w.raw(",\"key_time\":")
    w.int(k)
    w.raw(UInt8(ascii: ","))
    blob.withUnsafeBytes { engine.writeFeatures(blob: $0.baseAddress!, at: k, into: &w) }
    w.raw(UInt8(ascii: "}"))
    return String(decoding: w.bytes, as: UTF8.self)
}

/// The samples of a Prometheus text scrape of `http://127.0.0.1:port/metrics`,
/// by series (`name` or `name{labels}`).
func scrapeMetrics(port: Int) throws -> [String: Double] {
    let text = try HTTPGet.body(host: "127.0.0.1", port: port, path: "/metrics")
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        samples[String(line[..<space])] = value
    }
    return samples
}
