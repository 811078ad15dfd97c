import EddyRedis

/// The worker's write path on a single Redis server when it holds partition
/// epochs (`PartitionEpochs`): one `WATCH`/`MGET` of the flush's epoch keys,
/// then one `MULTI … EXEC` of plain `HSET`s.
extension EntityWriter {
    /// Takes the next epoch of each of `names` (`INCR` of its epoch key),
    /// then confirms ownership (`PartitionOwnership`): partitions being
    /// revoked, or all of them when the group refuses this member, are
    /// marked lost instead of held. Throws (the write is retried) when Redis
    /// or the group cannot answer.
    func takeEpochs(_ names: [[UInt8]], on redis: RedisConnection) throws {
        guard let epochs = partitionEpochs, let ownership else { return }
        var taking: [[UInt8]] = []
        for name in names {
            if ownership.wasRevoked(name) { partitionEpochs?.markLost(partition: name) } else { taking.append(name) }
        }
        guard !taking.isEmpty else { return }
        for name in taking { try redis.append("INCR", epochs.key(partition: name)) }
        let replies = try redis.pipeline(count: taking.count)
        var taken: [Int64] = []
        for reply in replies {
            if let message = reply.errorMessage { throw RedisError.server(message: message) }
            guard let epoch = reply.integer else { throw RedisError.unexpectedReply(command: "INCR", reply: reply.description) }
            taken.append(epoch)
        }
        // After the INCR: a successor that took its epoch before ours was
        // assigned the partition before our confirmation, which then fails.
        let confirmed = try ownership.confirm(taking)
        for (name, epoch) in zip(taking, taken) {
            if confirmed && !ownership.wasRevoked(name) {
                partitionEpochs?.hold(epoch, partition: name)
            } else {
                partitionEpochs?.markLost(partition: name)
            }
        }
    }

    /// Forgets the epochs of revoked partitions (after their last writes).
    public func releaseEpochs(partitions names: [[UInt8]]) {
        for name in names { partitionEpochs?.release(partition: name) }
    }

    /// Whether partition `name` (`topic:partition`) is lost to this writer
    /// (`PartitionEpochs.lost`): its offsets must not be committed.
    public func isLost(partition name: [UInt8]) -> Bool {
        partitionEpochs?.lost.contains(name) ?? false
    }

    /// How often one flush is checked again when an epoch changes between
    /// its check and its `EXEC` (a rebalance under way) before the write
    /// counts as failed and is retried with a backoff.
    static let epochRechecks = 16

    func writeEpochFenced(_ batch: EntityBatch, to redis: RedisConnection) throws -> Counts {
        guard partitionEpochs != nil else { preconditionFailure("writeEpochFenced without partition epochs") }
        try groupByPartition(batch)
        let parts = flushPartitions
        let epochKey = partitionEpochs!.keyPrefix
        // A partition's first write in an assignment takes its epoch first.
        let untaken = parts.filter { partitionEpochs!.held[$0] == nil && !partitionEpochs!.lost.contains($0) }
        if !untaken.isEmpty { try takeEpochs(untaken, on: redis) }
        for _ in 0..<Self.epochRechecks {
            try redis.append { b in
                b.add("WATCH")
                for p in parts { b.addJoined(epochKey, p) }
            }
            try redis.append { b in
                b.add("MGET")
                for p in parts { b.addJoined(epochKey, p) }
            }
            try redis.drain(count: 1).check()
            let stored = try redis.readReply().checked()
            guard let values = stored.array, values.count == parts.count else {
                throw RedisError.unexpectedReply(command: "MGET", reply: stored.description)
            }
            var decisions: [PartitionEpochs.Decision] = []
            decisions.reserveCapacity(parts.count)
            var overtaken: [[UInt8]] = []
            for (p, value) in zip(parts, values) {
                let decision = partitionEpochs!.decide(partition: p, stored: value.string.flatMap { Int64($0) })
                if decision == .fenced && !partitionEpochs!.lost.contains(p) { overtaken.append(p) }
                decisions.append(decision)
            }
            if !overtaken.isEmpty {
                // A newer epoch than ours: a successor's (our confirmation
                // then fails and the partition is lost) or a stale owner's
                // that could not hold it (ours confirms, and we write again).
                _ = try redis.command("UNWATCH")
                try takeEpochs(overtaken, on: redis)
                continue
            }
            var toWrite = 0
            for e in entityPartition where decisions[Int(e)] != .fenced { toWrite += 1 }
            if toWrite == 0 {
                _ = try redis.command("UNWATCH")
                var counts = Counts()
                counts.fenced = batch.count
                return counts
            }
            var queued = 1
            try redis.append("MULTI")
            for (p, decision) in zip(parts, decisions) {
                if case .writeAndStore(let epoch) = decision {
                    try redis.append { b in
                        b.add("SET")
                        b.addJoined(epochKey, p)
                        b.add(epoch)
                    }
                    queued += 1
                }
            }
            try batch.bytes.withUnsafeBytes { bytes in
                for (i, e) in batch.entities.enumerated() where decisions[Int(entityPartition[i])] != .fenced {
                    queued += try appendPlainWrite(e, of: batch, bytes: bytes, to: redis)
                }
            }
            try redis.append("EXEC")
            let queuing = try redis.drain(count: queued)
            var counts = Counts()
            counts.fenced = batch.count - toWrite
            switch try redis.readExecReply() {
            case .aborted:
                continue  // an epoch changed under the check: check again
            case .failed(let message):
                // A command was refused when queued (its error says why).
                let reason = queuing.firstError ?? message
                if Self.isRetryable(reason) { throw RedisError.server(message: reason) }
                counts.failed = toWrite
                counts.failedCalls = 1
                counts.firstError = reason
                return counts
            case .executed(let results):
                if let message = results.firstError {
                    if Self.isRetryable(message) { throw RedisError.server(message: message) }
                    counts.failed = min(results.errorCount, toWrite)
                    counts.failedCalls = results.errorCount
                    counts.firstError = message
                }
                counts.written = toWrite - counts.failed
                for (p, decision) in zip(parts, decisions) {
                    if case .writeAndStore(let epoch) = decision { partitionEpochs?.hold(epoch, partition: p) }
                }
                return counts
            }
        }
        throw RedisError.server(message: "partition epochs changed \(Self.epochRechecks) times during one write (a rebalance under way?)")
    }

    /// Fills `flushPartitions` with the batch's distinct partition names and
    /// `entityPartition` with each entity's index among them. A flush has
    /// entities of a few partitions; they are told apart by a hash of the
    /// name, checked byte for byte, with no allocation per entity.
    func groupByPartition(_ batch: EntityBatch) throws {
        flushPartitions.removeAll(keepingCapacity: true)
        entityPartition.removeAll(keepingCapacity: true)
        partitionByHash.removeAll(keepingCapacity: true)
        batch.bytes.withUnsafeBytes { bytes in
            for e in batch.entities {
                let name = UnsafeRawBufferPointer(rebasing: bytes[e.partitionStart..<(e.partitionStart + e.partitionLength)])
                var hasher = Hasher()
                hasher.combine(bytes: name)
                let h = hasher.finalize()
                if let i = partitionByHash[h], flushPartitions[i].elementsEqual(name) {
                    entityPartition.append(Int32(i))
                } else if let i = flushPartitions.firstIndex(where: { $0.elementsEqual(name) }) {
                    entityPartition.append(Int32(i))  // a hash collision: rare
                } else {
                    flushPartitions.append(Array(name))
                    partitionByHash[h] = flushPartitions.count - 1
                    entityPartition.append(Int32(flushPartitions.count - 1))
                }
            }
        }
    }
}
