import EddyCore

/// How an entity is stored in Redis: one hash per entity key.
///
/// | field | value |
/// | --- | --- |
/// | `_state` | the core's state blob, byte for byte (see `WindowLayout` docs in EddyCore) |
/// | `_fp` | fingerprint of the topology's features the blob was built with |
/// | `_K` | key time, epoch ms |
/// | `_o:<partition>` | offset of the last event applied from that Kafka partition (the fence) |
/// | `<point feature>` | JSON value of each feature that does not depend on read time: `last_n` arrays, session start/last/events/duration, and every column of a lifetime aggregate (no `window`) |
///
/// Windows, `session_active` and `time_since` depend on the read time, so
/// they are read through the Function library (`FunctionLibrary`), never
/// stored.
public enum EntityLayout {
    public static let stateField = "_state"
    public static let fingerprintField = "_fp"
    public static let keyTimeField = "_K"
    public static let offsetFieldPrefix = "_o:"
    /// `parts: per_partition` entities (SEMANTICS.md, "Keys spread over
    /// partitions"): instead of `_state`, one field per source partition,
    /// `_p:<topic>:<partition>`, holding that partition's part (a state
    /// blob with the entity key in its header), written only by the
    /// partition's owner under the fence `_o:<topic>:<partition>`. No `_K`
    /// and no point-feature fields (they would need merging); reads go
    /// through the Function, which merges the parts (`PartsLua`).
    public static let partFieldPrefix = "_p:"

    /// The field names above as bytes, for the writer's and loader's
    /// concrete command builders (made once, not per command).
    public enum Bytes {
        public static let stateField = Array(EntityLayout.stateField.utf8)
        public static let fingerprintField = Array(EntityLayout.fingerprintField.utf8)
        public static let offsetFieldPrefix = Array(EntityLayout.offsetFieldPrefix.utf8)
        public static let partFieldPrefix = Array(EntityLayout.partFieldPrefix.utf8)
    }

    /// The Redis key of an entity.
    public static func redisKey(prefix: String, key: UnsafeRawBufferPointer) -> [UInt8] {
        Array(prefix.utf8) + Array(key)
    }

    /// A stable fingerprint of what a state blob means: features, their
    /// parameters and filters, in order. State written under another
    /// fingerprint cannot be read with this topology.
    public static func fingerprint(_ t: Topology) -> String {
        var text = "v1;lateness=\(t.allowedLatenessMs)"
        if t.parts == .perPartition { text += ";parts=per_partition" }
        for f in t.features {
            text += ";\(f.name)|\(f.kind)|\(f.filter.map(\.description) ?? "")"
        }
        var bytes = Array(text.utf8)
        let h = bytes.withUnsafeMutableBytes { hashKey(UnsafeRawBufferPointer($0)) }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Whether a feature column is stored as a plain hash field (it does not
    /// depend on read time).
    public static func isStoredColumn(_ f: FeatureSpec, column: Int) -> Bool {
        switch f.kind {
        case .lastN: return true
        case .session: return column < 4
        case .window, .tiled: return f.kind.isLifetime
        case .timeSince: return false
        }
    }
}

/// The one write script: the fenced write of several entities in one call
/// (`EntityWriter` sends it for the worker and for backfills). Per entity, it
/// applies only when the written offset is newer than the one stored for
/// that partition, so replays after a crash skip what Redis already has, a
/// backfill can run again or beside a worker, and a worker that lost its
/// partition cannot overwrite the newer state written by the worker that
/// took it over. Several entities per call amortize the script call
/// overhead (the worker's bottleneck in Redis). Its keys must hash to one
/// slot on a Redis Cluster; on a single Redis any keys go together.
///
/// KEYS = entity keys; ARGV = expiry ms (`PEXPIRE` argument), then per
/// entity: partition, offset, `1` to re-arm the expiry (`0` to leave it),
/// field count, field/value pairs. Returns how many entities were written
/// (the others were fenced off). A fenced-off entity's expiry is left as
/// it is.
///
/// Re-arming is per entity because it is a third of a write's cost inside
/// Redis: a writer re-arms a key's expiry on its first write and then at
/// most every `TTLPolicy.rearmInterval` (see `TTLPolicy`).
public enum FencedBatchWrite {
    public static let source = """
        local expiry = ARGV[1]
        local i = 2
        local written = 0
        for k = 1, #KEYS do
          local key = KEYS[k]
          local f = '_o:' .. ARGV[i]
          local off = ARGV[i + 1]
          local n = tonumber(ARGV[i + 3])
          local cur = redis.call('HGET', key, f)
          if not (cur and tonumber(cur) >= tonumber(off)) then
            redis.call('HSET', key, f, off, unpack(ARGV, i + 4, i + 3 + 2 * n))
            if ARGV[i + 2] == '1' then redis.call('PEXPIRE', key, expiry) end
            written = written + 1
          end
          i = i + 4 + 2 * n
        end
        return written
        """

    /// Entities per call.
    public static let entitiesPerCall = 32
}

/// When a write re-arms an entity's expiry (the topology's `ttl`): the one
/// expiry rule of the worker and backfills (`EntityWriter`).
///
/// `PEXPIRE` on every write would cost a third of the write in Redis, so a
/// key's expiry is re-armed on its first write by a writer (its expiry in
/// Redis is unknown then; a backfill writes each key once) and afterwards only when the last re-arm is at
/// least `rearmInterval` (ttl/64) old, to `ttl + rearmInterval`. An entity
/// therefore lives at least `ttl` after its last write, and at most
/// `ttl + ttl/64` (7 days and 2.6 hours for `ttl: 7d`).
public struct TTLPolicy: Sendable, Hashable {
    /// The topology's `ttl` in ms; 0: entities never expire.
    public let ttlMs: Int64

    public init(ttlMs: Int64) { self.ttlMs = ttlMs }

    /// Whether expiries are set at all.
    public var isEnabled: Bool { ttlMs > 0 }

    /// The least time between two re-arms of one key, ms.
    public var rearmInterval: Int64 { max(ttlMs / 64, 1) }

    /// What `PEXPIRE` sets: long enough to outlast `ttl` after a write that
    /// did not re-arm.
    public var expiryMs: Int64 { ttlMs + rearmInterval }

    /// Whether a write at `nowMs` re-arms a key last re-armed at `lastMs`
    /// (nil: not since this worker loaded or created it).
    @inline(__always)
    public func shouldRearm(lastMs: Int64?, nowMs: Int64) -> Bool {
        guard isEnabled else { return false }
        guard let lastMs else { return true }
        return nowMs - lastMs >= rearmInterval
    }
}
