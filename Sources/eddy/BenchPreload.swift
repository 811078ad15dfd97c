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
    return stats
}
