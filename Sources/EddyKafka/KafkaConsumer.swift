import CRdKafka
import Synchronization

/// A Kafka consumer-group member (or, with no topics, a group-less consumer
/// of explicitly assigned partitions) meant to be owned by one dedicated
/// thread.
///
/// It is deliberately not `Sendable`: create it on the thread that polls it
/// and call every method from that thread. (Handing it to another thread
/// for a while is fine if calls never overlap and the hand-over
/// synchronizes, e.g. starting and joining that thread, as a Kafka replay
/// does.) Rebalance handlers run
/// synchronously inside ``poll(into:maxMessages:timeoutMs:)`` and
/// ``close()``.
///
/// Offsets are never committed automatically: commit explicit offsets
/// (last applied + 1) with ``commit(offsets:async:)``.
public final class KafkaConsumer {
    /// Properties applied unless the caller sets them.
    public static let defaultProperties: [String: String] = [
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
    ]

    /// The effective configuration.
    public let config: KafkaConfig

    /// Topic names; ``KafkaMessageView/topicIndex`` indexes this array.
    /// Starts with the subscribed topics in the given order; topics first
    /// seen through ``assign(_:)`` or a rebalance are appended.
    public private(set) var topics: [String]

    /// How long a synchronous ``commit(offsets:async:)`` keeps retrying while
    /// the coordinator answers `REBALANCE_IN_PROGRESS`.
    ///
    /// Keep it short: inside `onRevoke` the rebalance cannot finish until the
    /// handler returns (a cooperative member rejoins only after revoking), so a
    /// long retry only delays the group. The brief window it covers is the
    /// coordinator still collecting SyncGroups from other members.
    /// Set it before polling (or committing from another thread) starts.
    public var commitRebalanceRetryMs = 1_000

    let handle: KafkaHandle
    let queue: OpaquePointer  // rd_kafka_queue_t for the consumer group queue
    let context: ConsumerContext
    /// Set while `rd_kafka_consumer_close` runs (handlers may still commit).
    var isClosing: Bool {
        get { closingFlag.load(ordering: .acquiring) }
        set { closingFlag.store(newValue, ordering: .releasing) }
    }
    var isClosed: Bool {
        get { closedFlag.load(ordering: .acquiring) }
        set { closedFlag.store(newValue, ordering: .releasing) }
    }
    // Atomic so that `commit` may be called from another thread.
    private let closingFlag = Atomic<Bool>(false)
    private let closedFlag = Atomic<Bool>(false)
    /// Set by `close` when destroying the handle would hit librdkafka #4312.
    var mustLeakHandle = false
    /// Whether `subscribe` was called (group member rather than explicit assign).
    let isSubscribed: Bool
    var isPolling = false
    /// How many holes `poll` found in a partition's offsets: a record further
    /// on than the one after the previous record delivered from it (within
    /// one assignment). Each hole is read again once from before it; if the
    /// read resumes after the same hole, it is real (transaction markers or
    /// compaction) and reading goes on. Holes repaired this way were records
    /// skipped by librdkafka (#4208 in 2.0's batch consumption).
    public internal(set) var offsetGaps = 0
    /// Records `poll` dropped because it had already delivered them in this
    /// assignment (librdkafka fetched the partition again from further back).
    public internal(set) var offsetRepeats = 0
    /// Reusable `rd_kafka_message_t *` array for batch consumption.
    var batch: UnsafeMutableBufferPointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    /// `rd_kafka_topic_t *` of messages -> index into `topics`. Each entry
    /// holds a topic reference so that the address cannot be reused.
    var topicIndexCache: [(rkt: OpaquePointer, index: Int)] = []
    /// The entry of `topicIndexCache` found last (nil: none yet).
    var lastTopic: (rkt: OpaquePointer?, index: Int) = (nil, -1)

    /// Creates a consumer and, if `topics` is non-empty, subscribes to them.
    ///
    /// - Parameters:
    ///   - config: librdkafka properties (`bootstrap.servers`, `group.id`, ...).
    ///     Defaults: ``defaultProperties``. Without topics and without
    ///     `group.id`, a private random group id is used (never commit then).
    ///   - topics: topics to subscribe to as a group member; empty for a
    ///     group-less consumer driven by ``assign(_:)``.
    ///   - partitionEOF: deliver ``KafkaConsumerEvent/partitionEOF(_:)``
    ///     events (`enable.partition.eof`).
    ///   - handlers: rebalance handlers.
    /// - Throws: ``KafkaError`` naming a bad property, or a subscribe failure.
    public init(config: [String: String], topics: [String], partitionEOF: Bool = false,
                handlers: RebalanceHandlers = RebalanceHandlers()) throws(KafkaError) {
        var properties = KafkaConfig(config).withDefaults(Self.defaultProperties)
        properties["enable.partition.eof"] = partitionEOF ? "true" : "false"
        if properties["group.id"] == nil {
            guard topics.isEmpty else {
                throw KafkaError(code: .invalidArgument,
                                 message: "a subscribing consumer needs the \"group.id\" property",
                                 property: "group.id")
            }
            properties["group.id"] = "eddy-unsubscribed-\(UInt64.random(in: 0...UInt64.max))"
        }
        self.config = properties
        self.topics = []
        self.isSubscribed = !topics.isEmpty
        self.context = ConsumerContext(handlers: handlers,
                                       assignmentStrategy: properties["partition.assignment.strategy"] ?? "range,roundrobin")
        self.batch = .allocate(capacity: 1024)

        let conf = try properties.makeNative()
        rd_kafka_conf_set_opaque(conf.pointer, context.opaque)
        rd_kafka_conf_set_rebalance_cb(conf.pointer, consumerRebalanceCallback)
        rd_kafka_conf_set_error_cb(conf.pointer, consumerErrorCallback)
        let rk: OpaquePointer
        do {
            rk = try makeKafkaHandle(RD_KAFKA_CONSUMER, conf)
        } catch {
            batch.deallocate()
            throw error
        }
        // Route the main queue (errors, commit results) to the consumer queue
        // so that one batch poll serves everything.
        rd_kafka_poll_set_consumer(rk)
        self.handle = KafkaHandle(pointer: rk)
        self.queue = rd_kafka_queue_get_consumer(rk)
        context.consumer = self

        registerTopics(topics)
        if !topics.isEmpty {
            let list = NativePartitionList(topics.map { TopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA) })
            try KafkaError.check(rd_kafka_subscribe(rk, list.pointer), "subscribe to \(topics) failed")
        }
    }

    deinit {
        if !isClosed {
            // `context.consumer` is already nil here, so handlers are skipped.
            _ = closeNative()
        }
        rd_kafka_queue_destroy(queue)
        for entry in topicIndexCache { rd_kafka_topic_destroy(entry.rkt) }
        if mustLeakHandle {
            // The handle lives on; so must the callback target it points to.
            _ = Unmanaged.passRetained(context)
        } else {
            rd_kafka_destroy(handle.pointer)
        }
        batch.deallocate()
    }

    /// This client's librdkafka name.
    public var name: String { handle.name }

    /// The current assignment.
    public func assignment() throws(KafkaError) -> [TopicPartition] {
        try checkOpen()
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try KafkaError.check(rd_kafka_assignment(handle.pointer, &list), "get assignment failed")
        defer { if let list { rd_kafka_topic_partition_list_destroy(list) } }
        return NativePartitionList.partitions(list)
    }

    /// Whether the current assignment was lost (e.g. session timeout) rather
    /// than revoked in an orderly way; meaningful inside `onRevoke`.
    public var assignmentLost: Bool { rd_kafka_assignment_lost(handle.pointer) != 0 }

    /// The number of partitions of `topic` (metadata request).
    public func partitionCount(topic: String, timeoutMs: Int32 = 10_000) throws(KafkaError) -> Int {
        try handle.partitionCount(topic: topic, timeoutMs: timeoutMs)
    }

    func checkOpen() throws(KafkaError) {
        if isClosed { throw KafkaError(code: .state, message: "consumer \(name) is closed") }
    }

    func checkPollable() throws(KafkaError) {
        try checkOpen()
        if isClosing { throw KafkaError(code: .state, message: "consumer \(name) is closing") }
    }

    /// Adds unseen topic names to `topics`, keeping existing indexes.
    func registerTopics(_ names: [String]) {
        for name in names where !topics.contains(name) {
            topics.append(name)
        }
    }

    /// Maps a message's `rd_kafka_topic_t *` to its index in `topics`.
    func topicIndex(for rkt: OpaquePointer?) -> Int {
        guard let rkt else { return -1 }
        // Consecutive records nearly always share a topic.
        if rkt == lastTopic.rkt { return lastTopic.index }
        for entry in topicIndexCache where entry.rkt == rkt {
            lastTopic = (entry.rkt, entry.index)
            return entry.index
        }
        let name = String(cString: rd_kafka_topic_name(rkt))
        registerTopics([name])
        let index = topics.firstIndex(of: name)!
        // Hold a reference (same object as `rkt`) so its address stays unique.
        // librdkafka hands out the same object per topic name; if it ever did
        // not, skip caching rather than cache an address we do not hold.
        if let held = rd_kafka_topic_new(handle.pointer, name, nil) {
            if held == rkt {
                topicIndexCache.append((held, index))
            } else {
                rd_kafka_topic_destroy(held)
            }
        }
        return index
    }
}

@available(*, unavailable, message: "KafkaConsumer is confined to the thread that polls it")
extension KafkaConsumer: Sendable {}
