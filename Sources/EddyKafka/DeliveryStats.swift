import CRdKafka
import Synchronization

/// Producer delivery counters, as reported by delivery-report callbacks.
public struct DeliveryStats: Hashable, Sendable {
    /// Messages acknowledged by the broker.
    public var delivered: Int
    /// Messages that permanently failed (after librdkafka's retries).
    public var failed: Int
    /// The most recent delivery failure, if any.
    public var lastError: KafkaError?
}

/// Target of the producer's `rd_kafka_conf_set_opaque` pointer: counts
/// delivery reports. Owned by ``KafkaProducer`` and handed to librdkafka
/// unretained; it outlives the `rd_kafka_t` because the producer destroys the
/// handle in its `deinit`, before its stored properties are released.
final class DeliveryState: Sendable {
    let delivered = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    /// Failures already reported by a `flush`.
    let failedReported = Atomic<Int>(0)
    let lastError = Mutex<KafkaError?>(nil)

    var snapshot: DeliveryStats {
        DeliveryStats(delivered: delivered.load(ordering: .relaxed),
                      failed: failed.load(ordering: .relaxed),
                      lastError: lastError.withLock { $0 })
    }

    func record(_ message: UnsafePointer<rd_kafka_message_t>) {
        let err = message.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            delivered.add(1, ordering: .relaxed)
            return
        }
        let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
        let error = KafkaError(err, "delivery to topic \"\(topic)\" partition \(message.pointee.partition) failed")
        lastError.withLock { $0 = error }
        failed.add(1, ordering: .relaxed)
    }
}
