import CRdKafka

/// librdkafka configuration as plain `name = value` properties.
///
/// Properties are passed through to `rd_kafka_conf_set` unchanged, so any
/// global or default-topic property documented in librdkafka's
/// CONFIGURATION.md may be used. Validation happens when a client is created
/// (or via ``validate()``); errors name the offending property.
public struct KafkaConfig: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    /// The properties, by librdkafka property name.
    public var properties: [String: String]

    /// Creates a configuration from librdkafka properties.
    public init(_ properties: [String: String] = [:]) {
        self.properties = properties
    }

    /// Creates a configuration from a dictionary literal.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    /// Reads or writes one property.
    public subscript(name: String) -> String? {
        get { properties[name] }
        set { properties[name] = newValue }
    }

    /// Returns a copy in which each of `defaults` is set unless already present.
    public func withDefaults(_ defaults: [String: String]) -> KafkaConfig {
        KafkaConfig(properties.merging(defaults, uniquingKeysWith: { mine, _ in mine }))
    }

    /// Checks every property against librdkafka without creating a client.
    /// - Throws: ``KafkaError`` with ``KafkaError/property`` set to the first
    ///   unknown or invalid property.
    public func validate() throws(KafkaError) {
        _ = try makeNative()
    }

    /// Builds an `rd_kafka_conf_t`, applying properties in name order so that
    /// the reported error is deterministic.
    package func makeNative() throws(KafkaError) -> NativeConf {
        let conf = NativeConf(pointer: rd_kafka_conf_new())
        var errstr = [CChar](repeating: 0, count: 512)
        for name in properties.keys.sorted() {
            let value = properties[name]!
            let res = rd_kafka_conf_set(conf.pointer, name, value, &errstr, errstr.count)
            guard res != RD_KAFKA_CONF_OK else { continue }
            let detail = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) },
                                as: UTF8.self)
            // librdkafka's text already names the property (and the value).
            let fallback = res == RD_KAFKA_CONF_UNKNOWN
                ? "No such configuration property: \"\(name)\""
                : "Invalid value \"\(value)\" for configuration property \"\(name)\""
            var message = detail.contains(name) ? detail : fallback
            if res == RD_KAFKA_CONF_INVALID && !message.contains("\"\(value)\"") {
                message += " (got \"\(value)\")"
            }
            throw KafkaError(code: .invalidArgument, message: message, property: name)
        }
        return conf
    }
}

/// Owns an `rd_kafka_conf_t` until it is handed to `rd_kafka_new`.
/// `package` (like `makeKafkaHandle`): the dev kit's `MockCluster` hosts a
/// cluster on a handle of its own.
package struct NativeConf: ~Copyable {
    let pointer: OpaquePointer

    deinit { rd_kafka_conf_destroy(pointer) }

    /// Gives up ownership (after `rd_kafka_new` succeeded and took the conf).
    consuming func relinquish() {
        discard self
    }
}

/// Creates an `rd_kafka_t`; `rd_kafka_new` takes the conf on success only.
package func makeKafkaHandle(_ type: rd_kafka_type_t, _ conf: consuming NativeConf) throws(KafkaError) -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let rk = rd_kafka_new(type, conf.pointer, &errstr, errstr.count) else {
        let detail = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) },
                            as: UTF8.self)
        throw KafkaError(code: .invalidArgument, message: "cannot create Kafka client: \(detail)")
    }
    conf.relinquish()
    return rk
}
