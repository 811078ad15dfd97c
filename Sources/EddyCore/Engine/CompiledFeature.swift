#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A feature with everything resolved for the hot path. Plain values only,
/// so iterating features copies no references.
struct CompiledFeature {
    enum Kind: UInt8 { case lastN, session, window, tiled, timeSince }
    var kind: Kind
    var hasFilter: Bool
    /// Extracted-field index of the feature's field, or -1.
    var field: Int = -1
    // last_n
    var n: Int = 0
    var distinct = false
    // session
    var gapMs: Int64 = 0
    // windows
    var aggregation: Aggregation = .count
    var windowMs: Int64 = 0
    var hopMs: Int64 = 0
    var tileSize = 0
    // tiled (More aggregations)
    var tiled: TileCode = .first
    var precision = 0
    var exactLimit = 0
    /// percentile: g = (1 + a)/(1 - a) and ln(g).
    var gamma = 0.0
    var lnGamma = 0.0
    var top = 0
    var maxValues = 0

    /// Whether the feature is a lifetime aggregate (one tile, start 0).
    var isLifetime: Bool { hopMs == 0 }

    init(_ spec: FeatureSpec, fields: FieldTable) {
        hasFilter = spec.filter != nil
        switch spec.kind {
        case .lastN(let f, let n, let distinct):
            kind = .lastN; field = fields.index(of: f)!; self.n = n; self.distinct = distinct
        case .session(let gap):
            kind = .session; gapMs = gap
        case .window(let agg, let f, let w, let h):
            kind = .window; aggregation = agg; windowMs = w; hopMs = h
            if let f { field = fields.index(of: f)! }
            tileSize = WindowLayout.tileSize(agg)
        case .tiled(let agg, let f, let w, let h):
            kind = .tiled; field = fields.index(of: f)!; windowMs = w; hopMs = h
            switch agg {
            case .distinctCount(let p, let limit): tiled = .distinctCount; precision = p; exactLimit = limit
            case .percentile(_, let a):
                tiled = .percentile; gamma = (1 + a) / (1 - a); lnGamma = log(gamma)
            case .first: tiled = .first
            case .last: tiled = .last
            case .variance: tiled = .variance
            case .stddev: tiled = .stddev
            case .countBy(let t, let m): tiled = .countBy; top = t; maxValues = m
            }
        case .timeSince:
            kind = .timeSince
        }
    }
}

/// Byte layout of the sections of a state blob (documented in docs/ARCHITECTURE.md).
///
/// Blob: `u16 keyLength, key, i64 K`, then one section per feature in
/// topology order:
/// - session: `i64 start, i64 last, i64 events` (events 0 = no session);
/// - window: `u32 tileCount`, tiles ascending by start: `i64 start` and the
///   partial aggregate (count: `i64`; sum, min, max: `f64`; avg: `f64 sum,
///   i64 count`);
/// - last_n: `u32 entryBytes, u16 entryCount`, entries newest first:
///   `i64 ts, u16 valueLength, value` where value is a tag byte (`s` string,
///   `n` number text, `t`/`f` boolean, `r` raw JSON) and its bytes.
/// Integers are little-endian. `K` is `Int64.min` before the first event.
enum WindowLayout {
    static func tileSize(_ a: Aggregation) -> Int { a == .avg ? 24 : 16 }
}

enum SessionLayout { static let size = 24 }

/// The "More aggregations" kinds on the hot path; the numbers are also the
/// Lua reader's (`FunctionLibrary`).
enum TileCode: UInt8 {
    case distinctCount = 1, percentile, first, last, variance, stddev, countBy
}

/// Sections of the "More aggregations" kinds: `u32 payloadBytes`, then tiles
/// ascending by start, each `i64 start, u32 size, payload` (a lifetime
/// aggregate has one tile, start 0). Payloads:
/// - distinct_count: `u16 count` then `count` XXH64 hashes (`u64`), or
///   `count = 0xFFFF` and the `2^p` HyperLogLog registers (`u8` each);
/// - percentile: `u32 buckets`, then `i32 key, u32 count` ascending by key;
///   key 0 is the zero bucket, `2^25 + i` positive bucket `i`, `-2^25 - i`
///   negative bucket `i` (so ascending keys are ascending values);
/// - first, last: `i64 ts` and a tagged value as in last_n;
/// - variance, stddev: `i64 n, f64 mean, f64 M2`;
/// - count_by: `u32 other, u16 entries`, entries in first-arrival order:
///   `u32 count, u16 length, text`.
/// time_since: `i64 ts` (`Int64.min`: none).
enum TiledLayout {
    static let header = 4
    static let tileHeader = 12
    static let registersMark: UInt16 = 0xFFFF
    static let bucketBias: Int32 = 1 << 25
}

enum LastNLayout { static let header = 6; static let entryHeader = 10 }

/// Sentinel for "no key time yet".
let noKeyTime = Int64.min

@inline(__always)
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
