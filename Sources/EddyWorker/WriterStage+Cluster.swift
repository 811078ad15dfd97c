import EddyRedis
import EddyStore

/// The writer on a Redis Cluster: a `FencedBatchWrite` call may only carry
/// keys of one hash slot, so a flush's entities are grouped by slot (up to
/// `entitiesPerCall` per call; an entity alone in its slot goes alone), and
/// the client sends each master its calls in one pipeline, every master's
/// pipeline written before any reply is read.
extension WriterStage {
    /// Writes `fb`'s entities through `cluster`; one reply per call of
    /// `clusterPlan`, in plan order.
    func writeClustered(_ fb: FlushBatch, to cluster: RedisClusterClient) throws -> [RedisReply] {
        clusterPlan.make(for: fb, entitiesPerCall: FencedBatchWrite.entitiesPerCall)
        let plan = clusterPlan
        return try fb.bytes.withUnsafeBytes { bytes in
            try cluster.evalshaPipeline(script, count: plan.callCount) { c, call in
                call.arguments.add(ttl.expiryMs)
                for position in plan.entities(ofCall: c) {
                    Self.addEntity(plan.entity(at: position), of: fb, bytes: bytes, to: &call)
                }
            }
        }
    }

    /// Adds entity `i`'s key and its `FencedBatchWrite` arguments (partition,
    /// offset, re-arm flag, field count, field/value pairs) to `call`.
    private static let rearm: StaticString = "1", keep: StaticString = "0"

    @inline(__always)
    static func addEntity(_ i: Int, of fb: FlushBatch, bytes: UnsafeRawBufferPointer, to call: inout RedisScriptCall) {
        let e = fb.entities[i]
        call.keys.add(UnsafeRawBufferPointer(rebasing: bytes[e.keyStart..<(e.keyStart + e.keyLength)]))
        call.arguments.add(UnsafeRawBufferPointer(rebasing: bytes[e.partitionStart..<(e.partitionStart + e.partitionLength)]))
        call.arguments.add(e.offset)
        call.arguments.add(e.rearmTTL ? rearm : keep)
        call.arguments.add(e.fieldCount / 2)
        for f in e.fieldsStart..<(e.fieldsStart + e.fieldCount) {
            let (start, length) = fb.fieldRanges[f]
            call.arguments.add(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
        }
    }
}

/// A flush's entities sorted by hash slot and cut into calls of one slot
/// each. Its arrays keep their capacity from flush to flush.
struct ClusterWritePlan {
    /// `slot << 32 | entity index`, sorted: by slot, then flush order.
    private(set) var slotted: [UInt64] = []
    /// Start of each call in `slotted`, then `slotted.count`.
    private(set) var callStarts: [Int] = []

    mutating func make(for fb: FlushBatch, entitiesPerCall per: Int) {
        slotted.removeAll(keepingCapacity: true)
        fb.bytes.withUnsafeBytes { bytes in
            for (i, e) in fb.entities.enumerated() {
                let key = UnsafeRawBufferPointer(rebasing: bytes[e.keyStart..<(e.keyStart + e.keyLength)])
                slotted.append(UInt64(HashSlot.of(key)) << 32 | UInt64(i))
            }
        }
        slotted.sort()
        callStarts.removeAll(keepingCapacity: true)
        var start = 0
        while start < slotted.count {
            callStarts.append(start)
            let slot = slotted[start] >> 32
            var end = start + 1
            while end < slotted.count, end - start < per, slotted[end] >> 32 == slot { end += 1 }
            start = end
        }
        callStarts.append(slotted.count)
    }

    var callCount: Int { max(callStarts.count - 1, 0) }

    /// Positions in `slotted` of call `c`'s entities.
    func entities(ofCall c: Int) -> Range<Int> { callStarts[c]..<callStarts[c + 1] }

    /// The entity index at `position`.
    func entity(at position: Int) -> Int { Int(truncatingIfNeeded: slotted[position] & 0xFFFF_FFFF) }
}
