import ArgumentParser
import EddyCore
import EddyDevKit
import EddyKafka
import EddyRedis
import EddyReplay
import EddyTopology
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Restart cost after a crash: how soon a worker killed with SIGKILL, with
/// about a million keys in Redis, is back to full throughput.
struct RecoveryBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recovery",
        abstract: "SIGKILL a worker with ~1M keys in Redis, restart it, and time its return to full throughput.",
        discussion: """
            Starts a redis-server and an in-process mock Kafka cluster and preloads clickstream events \
            (lz4, 64 partitions: the mock keeps ~5 MB per partition). Runs `eddy run` as a child process \
            until it has consumed --kill-at events (Redis then holds about a million entities), kills it \
            with SIGKILL, starts a new one in the same group and compares its per-second consume rate \
            with the first worker's steady rate. The new worker holds no keys: every key it meets is \
            loaded from Redis, and the uncommitted tail is re-read and skipped by the fences. Reports \
            the time from the restart to the partitions being assigned (group join: dominated by the \
            dead member's session timeout, set to --session-timeout-ms here) and from the assignment \
            to the first second at >= 90% of the steady rate.
            """
    )

    @Option(help: "Events to preload.") var events = 3_600_000
    @Option(help: "Distinct users.") var users = 1_200_000
    @Option(help: "Partitions.") var partitions = 64
    @Option(help: "Kill the first worker once it consumed this many events.") var killAt = 2_400_000
    @Option(help: "Consumer session timeout of the workers, ms (how long the dead member holds its partitions).")
    var sessionTimeoutMs = 6000
    @Flag(help: "Give the workers a group.instance.id (static membership): a restarted worker takes its partitions back without waiting for the session timeout.")
    var staticMembership = false
    @Flag(name: .customLong("fixed-partitions"), help: "Workers read every partition without group management (eddy run --assign all): no rebalance to wait for after the kill.")
    var fixedPartitions = false

    func run() throws {
        let redis = try RedisServerProcess(options: ["hash-max-listpack-value": "1024"])
        let cluster = try MockCluster(brokers: 1, topics: [("clickstream", partitions), ("clickstream.dlq", partitions)])
        let topology = try loadTopology("clickstream")
        let dir = NSTemporaryDirectory() + "eddy-bench-recovery-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let topologyPath = dir + "/clickstream.yaml"
        try topologyText().write(toFile: topologyPath, atomically: true, encoding: .utf8)

        printError("preloading \(events) events over \(users) users into \(partitions) partitions (lz4)...")
        try preloadClickstream(topology, topic: "clickstream", brokers: cluster.bootstrapServers, events: events, users: users, seed: 4242)

        let args = ["run", topologyPath, "--brokers", cluster.bootstrapServers, "--redis", redis.url.description,
                    "--group", "bench-recovery", "--stats-interval", "1"] + (fixedPartitions ? ["--assign", "all"] : [])
        printError("first worker: draining until \(killAt) events are consumed...")
        let first = try WorkerProcess(arguments: args)
        while first.consumed < killAt && first.isRunning { usleep(20_000) }
        kill(first.pid, SIGKILL)
        let killedAt = monotonicSeconds()
        first.waitForExit()
        let keys = try RedisConnection(url: redis.url).command("DBSIZE").integer ?? 0
        let steady = first.steadyRate()
        printError("killed at \(first.consumed) events consumed; Redis holds \(keys) entities; steady rate \(Int(steady)) events/s")

        let second = try WorkerProcess(arguments: args)
        let restartedAt = monotonicSeconds()
        let deadline = restartedAt + 120
        while second.fullRateAt(steady * 0.9) == nil && second.isRunning && monotonicSeconds() < deadline
            && second.consumed + first.consumed < events + killAt {
            usleep(20_000)
        }
        usleep(1_100_000)
        kill(second.pid, SIGTERM)
        second.waitForExit()
        let assigned = second.assignedAt.map { $0 - restartedAt }
        let full = second.fullRateAt(steady * 0.9).map { $0 - restartedAt }
        print("recovery, clickstream: SIGKILL with \(keys) entities in Redis, \(partitions) partitions, session timeout \(sessionTimeoutMs) ms\(staticMembership ? ", static membership" : "")\(fixedPartitions ? ", fixed partitions (no group membership)" : "")")
        print("  first worker steady rate: \(Int(steady)) events/s (median of its per-second rates)")
        print("  restarted worker: process start -> partitions assigned \(assigned.map { String(format: "%.1f s", $0) } ?? "never")")
        if let full, let assigned {
            print("  restarted worker: assigned -> >= 90% of the steady rate \(String(format: "%.1f s", full - assigned)) (total \(String(format: "%.1f s", full)) after the restart, target <= 5 s to full throughput)")
        } else {
            print("  restarted worker: did not reach 90% of the steady rate")
        }
        print("  restarted worker per-second rates: \(second.rates.map { String(Int($0)) }.joined(separator: ", "))")
        print("  kill -> restart \(String(format: "%.1f s", restartedAt - killedAt))")
        cluster.shutdown()
    }

    /// The clickstream topology with the group timeouts of this bench.
    func topologyText() throws -> String {
        try clickstreamTopologyText(replacing: [("  format: json\n", """
              format: json
              properties:
                session.timeout.ms: "\(sessionTimeoutMs)"
                heartbeat.interval.ms: "500"
            \(staticMembership ? "    group.instance.id: \"eddy-bench-worker-1\"\n" : "")
            """)])
    }

}

/// An `eddy run` child process whose progress lines are read as they come,
/// each stamped with the monotonic time it arrived.
final class WorkerProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var samples: [(time: Double, consumed: Int)] = []
    private var assigned: Double?

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard !chunk.isEmpty, let self else { return }
            self.received(chunk)
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    func waitForExit() { process.waitUntilExit() }

    /// Output not yet split into lines (the readability handler runs serially).
    private var pending = Data()

    private func received(_ chunk: Data) {
        pending.append(chunk)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...newline)
            read(line)
        }
    }

    private func read(_ line: String) {
        let now = monotonicSeconds()
        lock.lock()
        defer { lock.unlock() }
        if assigned == nil, line.contains("] assigned ") { assigned = now }
        guard let r = line.range(of: "consumed ") else { return }
        let digits = line[r.upperBound...].prefix { $0.isNumber }
        if let n = Int(digits) { samples.append((now, n)) }
    }

    var consumed: Int { lock.withLock { samples.last?.consumed ?? 0 } }
    var assignedAt: Double? { lock.withLock { assigned } }

    /// Events/s between consecutive progress lines.
    var rates: [Double] {
        lock.withLock {
            zip(samples, samples.dropFirst()).map { a, b in Double(b.consumed - a.consumed) / max(b.time - a.time, 0.001) }
        }
    }

    /// Median per-second rate, leaving out the first two seconds (start-up).
    func steadyRate() -> Double {
        let r = rates.dropFirst(2).filter { $0 > 0 }.sorted()
        return r.isEmpty ? 0 : r[r.count / 2]
    }

    /// When the first progress interval at or above `rate` ended.
    func fullRateAt(_ rate: Double) -> Double? {
        lock.withLock {
            zip(samples, samples.dropFirst()).first { a, b in
                Double(b.consumed - a.consumed) / max(b.time - a.time, 0.001) >= rate
            }.map { $0.1.time }
        }
    }
}
