/// A feature with everything resolved for the hot path. Plain values only,
/// so iterating features copies no references.
struct CompiledFeature {
    enum Kind: UInt8 { case lastN, session, window }
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
enum LastNLayout { static let header = 6; static let entryHeader = 10 }

/// Sentinel for "no key time yet".
let noKeyTime = Int64.min

@inline(__always)
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
