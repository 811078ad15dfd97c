import EddyCore

/// How an entity is stored in Redis: one hash per entity key.
///
/// | field | value |
/// | --- | --- |
/// | `_state` | the core's state blob, byte for byte (see `WindowLayout` docs in EddyCore) |
/// | `_fp` | fingerprint of the topology's features the blob was built with |
/// | `_K` | key time, epoch ms |
/// | `_o:<partition>` | offset of the last event applied from that Kafka partition (the fence) |
/// | `<point feature>` | JSON value of each feature that does not depend on read time: `last_n` arrays and session start/last/events/duration |
///
/// Windows and `session_active` depend on the read time, so they are read
/// through the Function library (`FunctionLibrary`), never stored.
public enum EntityLayout {
    public static let stateField = "_state"
    public static let fingerprintField = "_fp"
    public static let keyTimeField = "_K"
    public static let offsetFieldPrefix = "_o:"

    /// The Redis key of an entity.
    public static func redisKey(prefix: String, key: UnsafeRawBufferPointer) -> [UInt8] {
        Array(prefix.utf8) + Array(key)
    }

    /// A stable fingerprint of what a state blob means: features, their
    /// parameters and filters, in order. State written under another
    /// fingerprint cannot be read with this topology.
    public static func fingerprint(_ t: Topology) -> String {
        var text = "v1;lateness=\(t.allowedLatenessMs)"
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
        case .window: return false
        }
    }
}

/// The fenced write: applies only when the written offset is newer than the
/// stored one for that partition, so replays after a crash skip what Redis
/// already has, and a worker that lost its partition cannot overwrite the
/// newer state written by the worker that took it over.
///
/// KEYS[1] = entity key; ARGV = partition, offset, ttl ms (0 = none), then
/// field/value pairs. Returns 1 when written, 0 when fenced off.
public enum FencedWrite {
    public static let source = """
        local f = '_o:' .. ARGV[1]
        local cur = redis.call('HGET', KEYS[1], f)
        if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
        redis.call('HSET', KEYS[1], f, ARGV[2], unpack(ARGV, 4))
        local ttl = tonumber(ARGV[3])
        if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
        return 1
        """
}

/// The fenced write for several entities in one call, which amortizes the
/// script call overhead (the worker's bottleneck in Redis). Same rule per
/// entity as `FencedWrite`. Its keys must hash to one slot on a Redis
/// Cluster; on a single Redis any keys go together.
///
/// KEYS = entity keys; ARGV = ttl ms (0 = none), then per entity:
/// partition, offset, field count, field/value pairs. Returns how many
/// entities were written (the others were fenced off).
public enum FencedBatchWrite {
    public static let source = """
        local ttl = tonumber(ARGV[1])
        local i = 2
        local written = 0
        for k = 1, #KEYS do
          local key = KEYS[k]
          local f = '_o:' .. ARGV[i]
          local off = ARGV[i + 1]
          local n = tonumber(ARGV[i + 2])
          local cur = redis.call('HGET', key, f)
          if not (cur and tonumber(cur) >= tonumber(off)) then
            redis.call('HSET', key, f, off, unpack(ARGV, i + 3, i + 2 + 2 * n))
            if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
            written = written + 1
          end
          i = i + 3 + 2 * n
        end
        return written
        """

    /// Entities per call.
    public static let entitiesPerCall = 32
}
