import CRdKafka
import Synchronization

/// A Kafka producer (thread-safe; share one per process).
///
/// `produce` only enqueues: delivery happens in librdkafka's threads and the
/// outcome is counted by a delivery-report callback, which runs whenever the
/// producer is polled (every few hundred `produce` calls, in ``poll(timeoutMs:)``
/// and in ``flush(timeoutMs:)``). Call ``flush(timeoutMs:)`` before
/// dropping the producer: `deinit` does not wait for in-flight messages.
public final class KafkaProducer: Sendable {
    /// Properties applied unless the caller sets them.
    public static let defaultProperties: [String: String] = [
        "compression.type": "lz4",
        "linger.ms": "5",
        "batch.size": "1048576",
        "batch.num.messages": "10000",
        "queue.buffering.max.messages": "1000000",
        // Same key -> partition mapping as the Java client.
        "partitioner": "murmur2_random",
    ]

    /// The effective configuration (caller's properties plus defaults).
    public let config: KafkaConfig

    /// How long `produce` keeps retrying while the local queue is full
    /// before throwing ``KafkaErrorCode/queueFull``.
    public let queueFullTimeoutMs: Int

    let handle: KafkaHandle
    private let delivery: DeliveryState
    private let topics = Mutex<[String: TopicHandle]>([:])
    private let produceCount = Atomic<UInt>(0)

    /// Creates a producer.
    /// - Parameters:
    ///   - config: librdkafka properties; `bootstrap.servers` is required in
    ///     practice. See ``defaultProperties`` for what is set otherwise.
    ///   - queueFullTimeoutMs: how long `produce` may block on a full queue.
    /// - Throws: ``KafkaError`` naming a bad property.
    public init(config: [String: String], queueFullTimeoutMs: Int = 60_000) throws(KafkaError) {
        self.config = KafkaConfig(config).withDefaults(Self.defaultProperties)
        self.queueFullTimeoutMs = queueFullTimeoutMs
        let delivery = DeliveryState()
        self.delivery = delivery
        let conf = try self.config.makeNative()
        rd_kafka_conf_set_opaque(conf.pointer, Unmanaged.passUnretained(delivery).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf.pointer, deliveryReportCallback)
        handle = KafkaHandle(pointer: try makeKafkaHandle(RD_KAFKA_PRODUCER, conf))
    }

    deinit {
        for topic in topics.withLock({ $0.values }) {
            rd_kafka_topic_destroy(topic.pointer)
        }
        rd_kafka_destroy(handle.pointer)
    }

    /// This client's librdkafka name.
    public var name: String { handle.name }

    /// Enqueues one message (payload and key are copied; the buffers only
    /// need to live for the duration of the call).
    ///
    /// Does not wait for delivery. If the local queue is full it serves
    /// delivery reports and retries, for up to ``queueFullTimeoutMs``.
    /// - Parameters:
    ///   - topic: destination topic.
    ///   - partition: explicit partition, or `nil` for the partitioner
    ///     (murmur2 of the key by default).
    ///   - key: record key, or `nil` for none.
    ///   - value: record value, or `nil` for a tombstone.
    ///   - timestampMs: create time in ms since the epoch, or `nil` for now.
    ///   - headers: record headers.
    public func produce(topic: String, partition: Int32? = nil,
                        key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
                        timestampMs: Int64? = nil, headers: [KafkaHeader]? = nil) throws(KafkaError) {
        let rkt = try topicHandle(topic)
        var nativeHeaders = headers.map(KafkaHeader.makeNative)
        defer { if let nativeHeaders { rd_kafka_headers_destroy(nativeHeaders) } }
        var deadline: ContinuousClock.Instant?

        while true {
            let err = eddy_rd_kafka_produce(
                handle.pointer, rkt.pointer, partition ?? RD_KAFKA_PARTITION_UA,
                key?.baseAddress, key?.count ?? 0, value?.baseAddress, value?.count ?? 0,
                timestampMs ?? 0, nativeHeaders)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                nativeHeaders = nil  // now owned by librdkafka
                if produceCount.add(1, ordering: .relaxed).newValue & 255 == 0 {
                    rd_kafka_poll(handle.pointer, 0)
                }
                return
            }
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                throw KafkaError(err, "produce to topic \"\(topic)\" failed")
            }
            let now = ContinuousClock.now
            if deadline == nil { deadline = now.advanced(by: .milliseconds(queueFullTimeoutMs)) }
            if now >= deadline! {
                throw KafkaError(err, "produce to topic \"\(topic)\": queue still full after \(queueFullTimeoutMs) ms")
            }
            rd_kafka_poll(handle.pointer, 10)
        }
    }

    /// Enqueues one message with `[UInt8]` key and value (copied once, by librdkafka).
    /// See ``produce(topic:partition:key:value:timestampMs:headers:)-(_,_,UnsafeRawBufferPointer?,_,_,_)``.
    public func produce(topic: String, partition: Int32? = nil,
                        key: [UInt8]? = nil, value: [UInt8],
                        timestampMs: Int64? = nil, headers: [KafkaHeader]? = nil) throws(KafkaError) {
        let result: Result<Void, KafkaError> = value.withUnsafeBytes { valueBytes in
            let send = { (keyBytes: UnsafeRawBufferPointer?) -> Result<Void, KafkaError> in
                do throws(KafkaError) {
                    try self.produce(topic: topic, partition: partition, key: keyBytes, value: valueBytes,
                                     timestampMs: timestampMs, headers: headers)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            guard let key else { return send(nil) }
            return key.withUnsafeBytes { send($0) }
        }
        try result.get()
    }

    /// Serves queued delivery reports, waiting up to `timeoutMs` for one.
    /// - Returns: the number of events served.
    @discardableResult
    public func poll(timeoutMs: Int32 = 0) -> Int {
        Int(rd_kafka_poll(handle.pointer, timeoutMs))
    }

    /// Waits until every enqueued message is delivered or failed (serving
    /// delivery reports meanwhile).
    /// - Returns: the delivery counters.
    /// - Throws: ``KafkaErrorCode/timedOut`` if messages are still in flight
    ///   after `timeoutMs`; otherwise, if any message failed since the
    ///   previous `flush`, the last delivery error (message says how many).
    @discardableResult
    public func flush(timeoutMs: Int32) throws(KafkaError) -> DeliveryStats {
        let err = rd_kafka_flush(handle.pointer, timeoutMs)
        let stats = delivery.snapshot
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: KafkaErrorCode(err),
                             message: "flush: \(inFlightCount) message(s) still in flight after \(timeoutMs) ms"
                                 + " (\(stats.delivered) delivered, \(stats.failed) failed"
                                 + (stats.lastError.map { "; last error: \($0.message)" } ?? "") + ")")
        }
        let previouslyReported = delivery.failedReported.exchange(stats.failed, ordering: .relaxed)
        let newlyFailed = stats.failed - previouslyReported
        if newlyFailed > 0, let last = stats.lastError {
            throw KafkaError(code: last.code,
                             message: "flush: \(newlyFailed) message(s) failed delivery; last error: \(last.message)")
        }
        return stats
    }

    /// Delivery counters so far (updated when delivery reports are served).
    public var stats: DeliveryStats { delivery.snapshot }

    /// Messages and requests not yet delivered or failed (`rd_kafka_outq_len`).
    public var inFlightCount: Int { Int(rd_kafka_outq_len(handle.pointer)) }

    /// The number of partitions of `topic` (metadata request; may auto-create
    /// the topic on brokers that allow it).
    public func partitionCount(topic: String, timeoutMs: Int32 = 10_000) throws(KafkaError) -> Int {
        try handle.partitionCount(topic: topic, timeoutMs: timeoutMs)
    }

    private func topicHandle(_ name: String) throws(KafkaError) -> TopicHandle {
        let rk = handle
        let result: Result<TopicHandle, KafkaError> = topics.withLock { cache in
            if let cached = cache[name] { return .success(cached) }
            guard let rkt = rd_kafka_topic_new(rk.pointer, name, nil) else {
                return .failure(KafkaError(rd_kafka_last_error(), "cannot create topic handle for \"\(name)\""))
            }
            let topic = TopicHandle(pointer: rkt)
            cache[name] = topic
            return .success(topic)
        }
        return try result.get()
    }
}

/// An `rd_kafka_topic_t *`; librdkafka topic handles are thread-safe.
struct TopicHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// The C delivery-report callback (`rd_kafka_conf_set_dr_msg_cb`); `opaque`
/// is the producer's ``DeliveryState``.
private func deliveryReportCallback(_ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?,
                                    _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let opaque else { return }
    Unmanaged<DeliveryState>.fromOpaque(opaque).takeUnretainedValue().record(message)
}
