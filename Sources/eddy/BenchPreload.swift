import EddyCore
import EddyDevKit
import EddyKafka
import EddyReplay

/// Produces `events` generated clickstream events (seeded, lz4, keyed by the
/// topology's key like `eddy dev produce`) for a benchmark, and waits until
/// all are delivered. `population`: users drawn from a realistic population
/// (nil: uniform over `users`).
///
/// - Returns: the producer's delivery counters.
@discardableResult
func preloadClickstream(_ topology: Topology, topic: String, brokers: String, events: Int, users: Int,
                        seed: UInt64, population: RealisticPopulation.Parameters? = nil) throws -> DeliveryStats {
    let producer = try KafkaProducer(config: [
        "bootstrap.servers": brokers, "compression.type": "lz4", "linger.ms": "20",
        "batch.num.messages": "10000", "batch.size": "1000000", "queue.buffering.max.messages": "2000000",
        "queue.buffering.max.kbytes": "1048576",
    ])
    let engine = FeatureEngine(topology: topology, expectedKeys: 16)
    var gen = ClickstreamGenerator(seed: seed, users: users, population: population)
    var buf: [UInt8] = []
    for _ in 0..<events {
        buf.removeAll(keepingCapacity: true)
        gen.next(into: &buf)
        try buf.withUnsafeBytes { line in
            let keyed = engine.decode(line) == nil
            try producer.produce(topic: topic, key: keyed ? engine.decoder.key : nil, value: line)
        }
    }
    let stats = try producer.flush(timeoutMs: 300_000)
    guard stats.failed == 0 else { throw CLIError("preload: \(stats.failed) events not delivered") }
    try checkNothingDropped(topic: topic, brokers: brokers, events: events)
    return stats
}

/// librdkafka's mock broker keeps ~5 MB of batches per partition and drops
/// the oldest silently. A drain waits for every preloaded event, so a
/// dropped batch would stall it for its whole timeout: fail now, and say why.
func checkNothingDropped(topic: String, brokers: String, events: Int) throws {
    let consumer = try KafkaConsumer(config: ["bootstrap.servers": brokers], topics: [])
    defer { try? consumer.close() }
    var dropped: [(partition: Int32, events: Int64)] = []
    for p in 0..<Int32(try consumer.partitionCount(topic: topic)) {
        let low = try consumer.watermarks(topic: topic, partition: p).low
        if low > 0 { dropped.append((p, low)) }
    }
    guard dropped.isEmpty else {
        let total = dropped.reduce(0) { $0 + $1.events }
        throw CLIError("preload: the mock broker dropped the oldest \(total) of \(events) events (partitions "
            + "\(dropped.map { "\($0.partition): \($0.events)" }.joined(separator: ", "))); it keeps ~5 MB per partition. "
            + "Preload fewer --events or use more --partitions.")
    }
}
