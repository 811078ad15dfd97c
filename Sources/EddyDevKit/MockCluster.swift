import CRdKafka
import EddyKafka
import Synchronization

/// librdkafka's in-process mock Kafka cluster, listening on localhost TCP
/// ports so that clients in this or other processes can connect.
///
/// The cluster is served by librdkafka's own mock thread and keeps serving
/// for as long as this object is alive (or until ``shutdown()``); a
/// long-lived host process just has to keep a reference.
///
/// Limits of the mock (librdkafka 2.0): each partition keeps only about 5 MB
/// of batches (oldest dropped silently), timestamp lookups answer with the
/// logical end offset (-1), there is no admin API (create topics with ``createTopic(name:partitions:)``;
/// unknown topics are auto-created with 4 partitions) and a group join takes
/// about 3 s.
///
/// All methods are thread-safe.
public final class MockCluster: Sendable {
    private struct Native {
        var host: OpaquePointer  // rd_kafka_t owning the cluster
        var cluster: OpaquePointer  // rd_kafka_mock_cluster_t
    }

    /// Live native handles; `nil` after shutdown.
    private let native: Mutex<Native?>

    /// Comma separated `host:port` list to use as `bootstrap.servers`.
    public let bootstrapServers: String

    /// Number of brokers; their ids are `1...brokerCount`.
    public let brokerCount: Int

    /// Starts a mock cluster and creates `topics`.
    /// - Parameters:
    ///   - brokers: number of brokers (ids 1...brokers).
    ///   - topics: topics to create, with their partition counts.
    public init(brokers: Int = 1, topics: [(name: String, partitions: Int)] = []) throws(KafkaError) {
        precondition(brokers >= 1, "a mock cluster needs at least one broker")
        // The hosting client never connects anywhere; keep it quiet.
        let config = KafkaConfig(["client.id": "eddy-mock-cluster-host", "log_level": "3"])
        let rk = try makeKafkaHandle(RD_KAFKA_PRODUCER, try config.makeNative())
        guard let cluster = rd_kafka_mock_cluster_new(rk, Int32(brokers)) else {
            rd_kafka_destroy(rk)
            throw KafkaError(code: .state, message: "rd_kafka_mock_cluster_new failed")
        }
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        brokerCount = brokers
        native = Mutex(Native(host: rk, cluster: cluster))
        for topic in topics {
            try createTopic(name: topic.name, partitions: topic.partitions)
        }
    }

    deinit { shutdown() }

    /// Creates a topic (replication factor 1).
    public func createTopic(name: String, partitions: Int) throws(KafkaError) {
        try withCluster("create topic \"\(name)\"") { cluster in
            rd_kafka_mock_topic_create(cluster, name, Int32(partitions), 1)
        }
    }

    /// Takes broker `id` down: its connections are closed and new ones refused.
    public func setBrokerDown(_ id: Int32) throws(KafkaError) {
        try withCluster("set broker \(id) down") { rd_kafka_mock_broker_set_down($0, id) }
    }

    /// Brings broker `id` back up.
    public func setBrokerUp(_ id: Int32) throws(KafkaError) {
        try withCluster("set broker \(id) up") { rd_kafka_mock_broker_set_up($0, id) }
    }

    /// Makes the next `errors.count` requests of type `apiKey` (e.g.
    /// ``KafkaApiKey/produce``) fail with the given errors, in order.
    /// ``KafkaErrorCode/transport`` makes the broker disconnect the client.
    public func pushRequestErrors(apiKey: KafkaApiKey, errors: [KafkaErrorCode]) throws(KafkaError) {
        let natives = errors.map(\.native)
        try withCluster("push request errors") { cluster in
            natives.withUnsafeBufferPointer {
                rd_kafka_mock_push_request_errors_array(cluster, apiKey.rawValue, $0.count, $0.baseAddress)
            }
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// Makes broker `broker` answer its next `responses.count` requests of
    /// type `apiKey` with the given error (``KafkaErrorCode/noError`` for a
    /// normal answer) after the given delay, in order. Useful to hold a
    /// request (e.g. SyncGroup) in flight.
    public func pushBrokerRequestErrors(broker: Int32, apiKey: KafkaApiKey,
                                        responses: [(error: KafkaErrorCode, delayMs: Int)]) throws(KafkaError) {
        for response in responses {
            try withCluster("push request error for broker \(broker)") { cluster in
                eddy_rd_kafka_mock_broker_push_request_error_rtt(
                    cluster, broker, apiKey.rawValue, response.error.native, Int32(response.delayMs))
            }
        }
    }

    /// Clears the request errors pushed for `apiKey`.
    public func clearRequestErrors(apiKey: KafkaApiKey) throws(KafkaError) {
        try withCluster("clear request errors") { cluster in
            rd_kafka_mock_clear_request_errors(cluster, apiKey.rawValue)
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// Delays every response of `broker` by `ms` milliseconds.
    public func setRoundTripTime(broker: Int32, ms: Int) throws(KafkaError) {
        try withCluster("set broker \(broker) rtt") { rd_kafka_mock_broker_set_rtt($0, broker, Int32(ms)) }
    }

    /// Stops the cluster and closes its listeners. Idempotent; later calls to
    /// the fault-injection methods throw ``KafkaErrorCode/destroyed``.
    public func shutdown() {
        guard let taken = native.withLock({ state -> Native? in
            defer { state = nil }
            return state
        }) else { return }
        rd_kafka_mock_cluster_destroy(taken.cluster)
        rd_kafka_destroy(taken.host)
    }

    private func withCluster(_ what: String,
                             _ body: (OpaquePointer) -> rd_kafka_resp_err_t) throws(KafkaError) {
        let err: rd_kafka_resp_err_t? = native.withLock { state in
            guard let state else { return nil }
            return body(state.cluster)
        }
        guard let err else {
            throw KafkaError(code: .destroyed, message: "\(what): mock cluster was shut down")
        }
        try KafkaError.check(err, "mock cluster: \(what)")
    }
}

/// Kafka protocol request types, for ``MockCluster/pushRequestErrors(apiKey:errors:)``.
public struct KafkaApiKey: RawRepresentable, Hashable, Sendable {
    /// The protocol ApiKey.
    public var rawValue: Int16
    /// Wraps a protocol ApiKey.
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// Produce (0).
    public static let produce = KafkaApiKey(rawValue: 0)
    /// Fetch (1).
    public static let fetch = KafkaApiKey(rawValue: 1)
    /// ListOffsets (2).
    public static let listOffsets = KafkaApiKey(rawValue: 2)
    /// Metadata (3).
    public static let metadata = KafkaApiKey(rawValue: 3)
    /// OffsetCommit (8).
    public static let offsetCommit = KafkaApiKey(rawValue: 8)
    /// OffsetFetch (9).
    public static let offsetFetch = KafkaApiKey(rawValue: 9)
    /// FindCoordinator (10).
    public static let findCoordinator = KafkaApiKey(rawValue: 10)
    /// JoinGroup (11).
    public static let joinGroup = KafkaApiKey(rawValue: 11)
    /// Heartbeat (12).
    public static let heartbeat = KafkaApiKey(rawValue: 12)
    /// LeaveGroup (13).
    public static let leaveGroup = KafkaApiKey(rawValue: 13)
    /// SyncGroup (14).
    public static let syncGroup = KafkaApiKey(rawValue: 14)
}
