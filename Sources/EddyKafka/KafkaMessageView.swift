import CRdKafka

/// A consumed record, borrowed from librdkafka without copying.
///
/// The pointers are only valid while the ``KafkaEventSink`` (or poll closure)
/// is handling the event: the underlying `rd_kafka_message_t` is destroyed
/// right after. Copy out anything that must outlive the callback.
public struct KafkaMessageView {
    /// Index into ``KafkaConsumer/topics``.
    public let topicIndex: Int
    /// Partition number.
    public let partition: Int32
    /// Record offset. Commit `offset + 1` once the record is applied.
    public let offset: Int64
    /// Record timestamp in ms since the epoch (create or log-append time),
    /// or -1 if unavailable.
    public let timestampMs: Int64
    /// Key bytes, or `nil` for a null key.
    public let key: UnsafeRawBufferPointer?
    /// Value bytes, or `nil` for a null value (tombstone).
    public let payload: UnsafeRawBufferPointer?

    let native: UnsafeMutablePointer<rd_kafka_message_t>

    init(native: UnsafeMutablePointer<rd_kafka_message_t>, topicIndex: Int) {
        let message = native.pointee
        self.native = native
        self.topicIndex = topicIndex
        self.partition = message.partition
        self.offset = message.offset
        self.timestampMs = rd_kafka_message_timestamp(native, nil)
        self.key = message.key.map { UnsafeRawBufferPointer(start: $0, count: message.key_len) }
        self.payload = message.payload.map { UnsafeRawBufferPointer(start: $0, count: message.len) }
    }

    /// The value of the last header named `name` (borrowed, like the payload):
    /// `nil` if absent, `.some(nil)` if present with a null value.
    public func header(_ name: String) -> UnsafeRawBufferPointer?? {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(native, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
            return nil
        }
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(headers, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return nil
        }
        return .some(value.map { UnsafeRawBufferPointer(start: $0, count: size) })
    }

    /// All headers, copied.
    public var headers: [KafkaHeader] {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(native, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
            return []
        }
        var result: [KafkaHeader] = []
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        var index = 0
        while rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
            result.append(KafkaHeader(key: name.map { String(cString: $0) } ?? "", value: bytes))
            index += 1
        }
        return result
    }
}

@available(*, unavailable, message: "a message view borrows librdkafka memory and must not leave the poll callback")
extension KafkaMessageView: Sendable {}
