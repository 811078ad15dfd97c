import EddyKafka
import EddyMetrics

/// The worker as its HTTP endpoints (`WorkerHTTP`) see it.
extension StreamWorker: MonitoredWorker {
    public var metricsSource: WorkerMetricsSource {
        WorkerMetricsSource(counters: counters, topics: config.topology.source.topics,
                            ringOccupancy: { self.ringOccupancy },
                            ringCapacity: (config.batchesInFlight, config.flushesInFlight))
    }

    public var redisURL: String { config.redisURL }
}

extension PartitionLagBoard {
    /// Publishes librdkafka's local view of the assigned partitions' lag.
    public func publish(_ lags: [PartitionLag]) {
        publish(lags.map { PartitionLagSample(topic: $0.topic, partition: $0.partition, lag: $0.lag) })
    }
}
