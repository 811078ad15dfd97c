import CRdKafka

/// An `rd_kafka_t *` that may be shared between threads.
///
/// librdkafka documents `rd_kafka_t` as thread-safe: every API used through
/// this wrapper may be called concurrently. Ownership (destroying the handle)
/// stays with the client class that created it.
struct KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    /// This client's name as assigned by librdkafka (e.g. `rdkafka#consumer-1`).
    var name: String { String(cString: rd_kafka_name(pointer)) }
}
