import EddyCore
import Testing

/// Records every outcome; creates keys or defers them, and can refuse events.
struct RecordingHooks: ApplyHooks {
    let createsKeys: Bool
    var refused: Set<Int> = []
    var outcomes: [(event: Int, outcome: ApplyOutcome)] = []
    /// The key time of the event's slot right before it is applied.
    var keyTimeBefore: [Int: Int64?] = [:]
    unowned let engine: FeatureEngine

    init(engine: FeatureEngine, createsKeys: Bool, refused: Set<Int> = []) {
        self.engine = engine
        self.createsKeys = createsKeys
        self.refused = refused
    }

    func admit(_ event: Int, slot: Int32, decoded: EventDecoder) -> Bool { !refused.contains(event) }

    mutating func willApply(_ event: Int, slot: Int32, decoded: EventDecoder) {
        keyTimeBefore[event] = engine.keyTime(slot)
    }

    mutating func finished(_ event: Int, _ outcome: ApplyOutcome, decoded: EventDecoder) {
        outcomes.append((event, outcome))
    }
}

@Suite struct LookaheadApplierTests {
    let topologyBody = """
          - {name: items, kind: last_n, field: item, n: 3}
          - {name: views, kind: count, window: 1h, hop: 5m}
        """

    /// Keys interleaved, one late event, two invalid ones, more events than
    /// the lookahead depth.
    var events: [String] {
        var out: [String] = []
        for i in 0..<40 {
            out.append(ev("u\(i % 7)", Int64(1_000_000 + 1000 * i), "\"item\":\"i\(i)\""))
            if i == 9 { out.append("not json") }
            if i == 20 { out.append(ev("u3", 1000, "\"item\":\"old\"")) }  // late by far
            if i == 30 { out.append("{\"ts\":5}") }  // no key
        }
        return out
    }

    /// The events in one batch: a decoded event's key points into its
    /// bytes, which must stay put until it is applied.
    func batch(_ events: [String]) -> RecordBatch<Void> {
        let batch = RecordBatch(recordCapacity: events.count, byteCapacity: 1 << 12, info: ())
        for (i, e) in events.enumerated() {
            Array(e.utf8).withUnsafeBytes {
                batch.append(source: 0, partition: 0, offset: Int64(i), timestampMs: 0, key: nil, value: $0)
            }
        }
        return batch
    }

    func push(_ applier: LookaheadApplier<Int>, _ hooks: inout RecordingHooks, _ events: [String]) {
        let batch = batch(events)
        for i in 0..<batch.count {
            applier.push(&hooks) { event, decoder in
                event = i
                return decoder.decode(batch.value(batch.records[i]))
            }
        }
        applier.drain(&hooks)
    }

    @Test func appliesInArrivalOrderLikeTheEngineAlone() throws {
        let t = try makeTopology(topologyBody)
        let plain = FeatureEngine(topology: t)
        let expected = feed(plain, events)

        let engine = FeatureEngine(topology: t)
        let applier = LookaheadApplier<Int>(engine: engine) { -1 }
        var hooks = RecordingHooks(engine: engine, createsKeys: true)
        push(applier, &hooks, events)

        #expect(applier.inFlight == 0)
        #expect(hooks.outcomes.map(\.event) == Array(events.indices))
        for (i, (_, outcome)) in hooks.outcomes.enumerated() {
            switch (outcome, expected[i]) {
            case (.applied(let a), .accepted(let b)): #expect(a == b)
            case (.late, .rejected(.late)): break
            case (.invalid(let a), .rejected(let b)): #expect(a == b)
            default: Issue.record("event \(i): \(outcome) vs \(expected[i])")
            }
        }
        for u in 0..<7 {
            #expect(readText(engine, "u\(u)", at: 2_000_000) == readText(plain, "u\(u)", at: 2_000_000))
        }
        // willApply sees the state before the event: a key's first event finds no key time.
        #expect(hooks.keyTimeBefore[0] == .some(nil))
        #expect(hooks.keyTimeBefore[7] == .some(1_000_000))
    }

    /// The worker's path: unseen keys are deferred in arrival order, then
    /// applied once present; the result equals the replay path's.
    @Test func defersMissingKeysInOrderThenAppliesThem() throws {
        let t = try makeTopology(topologyBody)
        let replayEngine = FeatureEngine(topology: t)
        let replay = LookaheadApplier<Int>(engine: replayEngine) { -1 }
        var replayHooks = RecordingHooks(engine: replayEngine, createsKeys: true)
        push(replay, &replayHooks, events)

        let engine = FeatureEngine(topology: t)
        // u0 is in memory already; every other key's events wait.
        _ = Array("u0".utf8).withUnsafeBytes { engine.insertEmpty($0, hash: hashKey($0)) }
        let applier = LookaheadApplier<Int>(engine: engine) { -1 }
        var hooks = RecordingHooks(engine: engine, createsKeys: false)
        push(applier, &hooks, events)
        let deferred = hooks.outcomes.filter { $0.outcome == .deferred }.map(\.event)
        #expect(deferred == events.indices.filter { i in
            events[i].contains("\"user_id\"") && !events[i].contains("\"u0\"")
        })
        #expect(hooks.outcomes.contains { $0.outcome == .deferred && $0.event == 22 })  // late, but its key is unseen

        // "Load" the keys, then apply the deferred events without lookahead.
        for u in 1..<7 { _ = Array("u\(u)".utf8).withUnsafeBytes { engine.insertEmpty($0, hash: hashKey($0)) } }
        hooks.outcomes.removeAll()
        let all = batch(events)
        for i in deferred {
            applier.applyNow(i, &hooks) { $0.decode(all.value(all.records[i])) }
        }
        #expect(hooks.outcomes.map(\.event) == deferred)
        #expect(!hooks.outcomes.contains { $0.outcome == .deferred })
        #expect(hooks.outcomes.filter { if case .late = $0.outcome { return true } else { return false } }.count == 1)
        for u in 0..<7 {
            #expect(readText(engine, "u\(u)", at: 2_000_000) == readText(replayEngine, "u\(u)", at: 2_000_000))
        }
    }

    @Test func refusedEventsAreSkippedNotApplied() throws {
        let t = try makeTopology(topologyBody)
        let engine = FeatureEngine(topology: t)
        let applier = LookaheadApplier<Int>(engine: engine) { -1 }
        let refused: Set<Int> = [0, 1, 2]  // u0, u1, u2's first events
        var hooks = RecordingHooks(engine: engine, createsKeys: true, refused: refused)
        push(applier, &hooks, Array(events.prefix(8)))
        for i in 0..<8 {
            let outcome = hooks.outcomes[i].outcome
            if refused.contains(i) {
                guard case .skipped = outcome else { Issue.record("event \(i): \(outcome)"); continue }
            } else {
                guard case .applied = outcome else { Issue.record("event \(i): \(outcome)"); continue }
            }
        }
        // u0's second event (7) is its first applied one.
        #expect(hooks.keyTimeBefore[7] == .some(nil))
    }

    @Test func recordBatchCopiesValuesAndKeys() {
        let batch = RecordBatch(recordCapacity: 1, byteCapacity: 4, info: 0)
        let values = ["hello", "", "a longer value than the buffer"]
        let keys: [String?] = ["k", nil, ""]
        for (i, v) in values.enumerated() {
            let key = keys[i].map { Array($0.utf8) }
            Array(v.utf8).withUnsafeBytes { value in
                if let key {
                    key.withUnsafeBytes { batch.append(source: Int32(i), partition: 7, offset: Int64(i), timestampMs: 9, key: $0, value: value) }
                } else {
                    batch.append(source: Int32(i), partition: 7, offset: Int64(i), timestampMs: 9, key: nil, value: value)
                }
            }
        }
        #expect(batch.count == 3)
        for i in 0..<3 {
            let r = batch.records[i]
            #expect(r.source == Int32(i) && r.offset == Int64(i) && r.partition == 7)
            #expect(String(decoding: batch.value(r), as: UTF8.self) == values[i])
            #expect(batch.key(r).map { String(decoding: $0, as: UTF8.self) } == keys[i])
        }
        batch.reset(1)
        #expect(batch.count == 0 && batch.info == 1)
    }
}
