import CRdKafka

/// One Kafka record header.
public struct KafkaHeader: Hashable, Sendable {
    /// Header name.
    public var key: String
    /// Header value; `nil` is a null value (distinct from empty).
    public var value: [UInt8]?

    /// Creates a header.
    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    /// Creates a header with a UTF-8 string value.
    public init(key: String, string: String) {
        self.init(key: key, value: Array(string.utf8))
    }
}

extension KafkaHeader {
    /// Builds an `rd_kafka_headers_t` (owned by the caller until handed over).
    static func makeNative(_ headers: [KafkaHeader]) -> OpaquePointer {
        let native = rd_kafka_headers_new(headers.count)!
        for header in headers {
            if let value = header.value {
                value.withUnsafeBytes { bytes in
                    _ = rd_kafka_header_add(native, header.key, -1, bytes.baseAddress, bytes.count)
                }
            } else {
                _ = rd_kafka_header_add(native, header.key, -1, nil, 0)
            }
        }
        return native
    }
}
