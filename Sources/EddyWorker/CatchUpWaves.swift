import EddyKafka

/// Catching up on a large backlog a few partitions at a time.
///
/// Read all at once, a backlog's partitions all end together: every key
/// stays dirty until the end and the one final flush writes all of them
/// while the shard has nothing left to do (a drain of 1M events spent a
/// third of its time there, with one core idle). Read in waves, the keys
/// of one wave's partitions are written while the shard applies the next
/// wave's events. A topic keyed by the entity key (as Kafka producers key
/// by default) has each key in one partition, so each key is still written
/// about once; otherwise a key is written once per wave that touches it,
/// which costs writes but never correctness.
///
/// Plain logic, no I/O: `IngestStage` looks up the backlog when partitions
/// are assigned, pauses `held`, and calls `advance` with the positions it
/// reads after each poll.
struct CatchUpWaves {
    struct Wave {
        /// Offset each partition must reach (its high watermark when planned).
        var targets: [TopicPartition: Int64] = [:]
        /// Messages each partition was behind when planned.
        var sizes: [TopicPartition: Int64] = [:]
        var backlog: Int64 { sizes.values.reduce(0, +) }
    }

    /// One partition's backlog when assigned: from where the group resumes
    /// to the high watermark.
    struct Backlog {
        var partition: TopicPartition
        var start: Int64
        var end: Int64
        var count: Int64 { max(end - start, 0) }
    }

    /// The current wave first; later waves' partitions are held (paused).
    private(set) var waves: [Wave]
    private(set) var completed = 0

    /// Waves over the partitions that have a backlog, balanced by message
    /// count (largest partition first into the lightest wave). nil when the
    /// total is below `minimumBacklog` or fewer than two partitions have one.
    static func plan(_ backlogs: [Backlog], waves maxWaves: Int, minimumBacklog: Int) -> CatchUpWaves? {
        let behind = backlogs.filter { $0.count > 0 }.sorted {
            $0.count != $1.count ? $0.count > $1.count : $0.partition.description < $1.partition.description
        }
        let total = behind.reduce(Int64(0)) { $0 + $1.count }
        let count = min(maxWaves, behind.count)
        guard count >= 2, total >= Int64(minimumBacklog) else { return nil }
        var waves = [Wave](repeating: Wave(), count: count)
        var loads = [Int64](repeating: 0, count: count)
        for b in behind {
            let lightest = loads.indices.min { loads[$0] < loads[$1] }!
            waves[lightest].targets[b.partition] = b.end
            waves[lightest].sizes[b.partition] = b.count
            loads[lightest] += b.count
        }
        return CatchUpWaves(waves: waves.sorted { $0.backlog > $1.backlog })
    }

    var isFinished: Bool { waves.isEmpty }
    var current: [TopicPartition] { waves.first.map { Array($0.targets.keys) } ?? [] }

    /// Partitions of the waves after the current one.
    var held: [TopicPartition] { waves.dropFirst().flatMap { $0.targets.keys } }

    /// A held partition's target and how many messages it was behind when
    /// planned; nil if it is not held.
    func heldPartition(_ p: TopicPartition) -> (target: Int64, behind: Int64)? {
        for wave in waves.dropFirst() {
            if let target = wave.targets[p] { return (target, wave.sizes[p] ?? 0) }
        }
        return nil
    }

    /// Messages still waiting in the held partitions (they are not fetched,
    /// so librdkafka knows no lag for them).
    var heldBacklog: Int64 { waves.dropFirst().reduce(0) { $0 + $1.backlog } }

    /// Moves on when every partition of the current wave has reached its
    /// target, given the next offset to read of each (nil: not known yet).
    /// Returns the partitions to resume, or nil while the wave goes on.
    mutating func advance(positions: [TopicPartition: Int64]) -> [TopicPartition]? {
        guard let wave = waves.first else { return nil }
        for (p, target) in wave.targets {
            guard let position = positions[p], position >= target else { return nil }
        }
        return finishCurrent()
    }

    /// Ends the current wave whatever its positions (its partitions stopped
    /// short of their targets, e.g. at a transaction marker, which is never
    /// delivered) and returns the partitions to resume.
    mutating func finishCurrent() -> [TopicPartition] {
        guard !waves.isEmpty else { return [] }
        waves.removeFirst()
        completed += 1
        return current
    }

    /// Drops partitions no longer assigned (a revoke) from every wave.
    /// Returns the partitions to resume: the next wave's, if the current
    /// one lost all of its partitions.
    mutating func remove(_ partitions: Set<TopicPartition>) -> [TopicPartition] {
        for i in waves.indices {
            for p in partitions {
                waves[i].targets[p] = nil
                waves[i].sizes[p] = nil
            }
        }
        let currentWasEmptied = waves.first.map { $0.targets.isEmpty } ?? false
        waves.removeAll { $0.targets.isEmpty }
        return currentWasEmptied ? current : []
    }
}
