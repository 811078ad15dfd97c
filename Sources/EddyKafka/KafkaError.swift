import CRdKafka

/// A librdkafka error code (`rd_kafka_resp_err_t`).
///
/// Negative values are client-side errors (e.g. `_QUEUE_FULL`, `_TIMED_OUT`),
/// positive values are Kafka protocol errors returned by a broker.
public struct KafkaErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The numeric `rd_kafka_resp_err_t` value.
    public var rawValue: Int32

    /// Wraps a raw `rd_kafka_resp_err_t` value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    init(_ err: rd_kafka_resp_err_t) { self.rawValue = err.rawValue }

    package var native: rd_kafka_resp_err_t { rd_kafka_resp_err_t(rawValue: rawValue) }

    /// librdkafka's symbolic name, e.g. `_QUEUE_FULL` or `UNKNOWN_TOPIC_OR_PART`.
    public var name: String { String(cString: rd_kafka_err2name(native)) }

    /// librdkafka's human readable description of the code.
    public var text: String { String(cString: rd_kafka_err2str(native)) }

    /// `name (rawValue)`.
    public var description: String { "\(name) (\(rawValue))" }

    /// Success.
    public static let noError = KafkaErrorCode(RD_KAFKA_RESP_ERR_NO_ERROR)
    /// A function argument or configuration value was invalid.
    public static let invalidArgument = KafkaErrorCode(RD_KAFKA_RESP_ERR__INVALID_ARG)
    /// An operation did not complete in time.
    public static let timedOut = KafkaErrorCode(RD_KAFKA_RESP_ERR__TIMED_OUT)
    /// The producer queue is full (`queue.buffering.max.messages` / `.kbytes`).
    public static let queueFull = KafkaErrorCode(RD_KAFKA_RESP_ERR__QUEUE_FULL)
    /// A message could not be delivered within `message.timeout.ms`.
    public static let messageTimedOut = KafkaErrorCode(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
    /// The consumer reached the end of a partition (partition EOF event).
    public static let partitionEOF = KafkaErrorCode(RD_KAFKA_RESP_ERR__PARTITION_EOF)
    /// Broker transport failure / disconnect.
    public static let transport = KafkaErrorCode(RD_KAFKA_RESP_ERR__TRANSPORT)
    /// All brokers are down.
    public static let allBrokersDown = KafkaErrorCode(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    /// The handle is being (or has been) closed.
    public static let destroyed = KafkaErrorCode(RD_KAFKA_RESP_ERR__DESTROY)
    /// A failed client-side state check (e.g. operation on a closed consumer).
    public static let state = KafkaErrorCode(RD_KAFKA_RESP_ERR__STATE)
    /// Broker: the topic or partition does not exist.
    public static let unknownTopicOrPartition = KafkaErrorCode(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    /// Broker: not the leader for the partition.
    public static let notLeaderForPartition = KafkaErrorCode(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
    /// Broker: request timed out.
    public static let requestTimedOut = KafkaErrorCode(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
    /// Broker: the group is rebalancing.
    public static let rebalanceInProgress = KafkaErrorCode(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
    /// Broker: the commit was rejected because the generation is stale.
    public static let illegalGeneration = KafkaErrorCode(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
    /// Broker: the member id is not (or no longer) known to the group coordinator.
    public static let unknownMemberId = KafkaErrorCode(RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
    /// A fatal, unrecoverable client error: the handle must be recreated.
    public static let fatal = KafkaErrorCode(RD_KAFKA_RESP_ERR__FATAL)
}

/// An error from librdkafka or from this module, carrying the librdkafka error
/// code and a human readable message.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The librdkafka error code.
    public var code: KafkaErrorCode
    /// What went wrong, in words (librdkafka's error string plus context).
    public var message: String
    /// For configuration errors: the name of the offending property.
    public var property: String?

    /// Creates an error.
    public init(code: KafkaErrorCode, message: String, property: String? = nil) {
        self.code = code
        self.message = message
        self.property = property
    }

    init(_ err: rd_kafka_resp_err_t, _ context: String) {
        let code = KafkaErrorCode(err)
        self.init(code: code, message: "\(context): \(code.text)")
    }

    /// Takes ownership of an `rd_kafka_error_t` (destroying it) and converts it.
    init(consuming error: OpaquePointer, _ context: String) {
        let code = KafkaErrorCode(rd_kafka_error_code(error))
        let text = String(cString: rd_kafka_error_string(error))
        rd_kafka_error_destroy(error)
        self.init(code: code, message: "\(context): \(text)")
    }

    /// `KafkaError[NAME (code)]: message`.
    public var description: String {
        "KafkaError[\(code)]: \(message)"
    }

    /// Throws if `err` is not `RD_KAFKA_RESP_ERR_NO_ERROR`.
    package static func check(_ err: rd_kafka_resp_err_t, _ context: @autoclosure () -> String) throws(KafkaError) {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, context())
        }
    }

    /// Throws if `error` (an `rd_kafka_error_t *`) is non-nil, destroying it.
    static func check(_ error: OpaquePointer?, _ context: @autoclosure () -> String) throws(KafkaError) {
        if let error {
            throw KafkaError(consuming: error, context())
        }
    }
}
