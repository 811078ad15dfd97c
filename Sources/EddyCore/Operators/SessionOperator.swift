/// The `session` feature (SEMANTICS.md): the key's latest session as
/// start, last and event count, in a fixed 24-byte section.
enum SessionOperator {
    @inline(__always)
    static func apply(_ p: UnsafeMutableRawPointer, ts: Int64, gap: Int64) {
        let events = p.loadUnaligned(fromByteOffset: 16, as: Int64.self)
        let start = p.loadUnaligned(fromByteOffset: 0, as: Int64.self)
        let last = p.loadUnaligned(fromByteOffset: 8, as: Int64.self)
        if events == 0 || ts > last &+ gap {
            p.storeBytes(of: ts, toByteOffset: 0, as: Int64.self)
            p.storeBytes(of: ts, toByteOffset: 8, as: Int64.self)
            p.storeBytes(of: 1, toByteOffset: 16, as: Int64.self)
        } else if ts < start &- gap {
            return  // belongs to an older session
        } else {
            if ts < start { p.storeBytes(of: ts, toByteOffset: 0, as: Int64.self) }
            if ts > last { p.storeBytes(of: ts, toByteOffset: 8, as: Int64.self) }
            p.storeBytes(of: events + 1, toByteOffset: 16, as: Int64.self)
        }
    }

    /// Columns: start, last, events, duration_ms, active (at `t`).
    static func writeColumn(_ p: UnsafeRawPointer, column: Int, at t: Int64, gap: Int64, into w: inout JSONWriter) {
        let events = p.loadUnaligned(fromByteOffset: 16, as: Int64.self)
        let start = p.loadUnaligned(fromByteOffset: 0, as: Int64.self)
        let last = p.loadUnaligned(fromByteOffset: 8, as: Int64.self)
        switch column {
        case 0: events == 0 ? w.null() : w.int(start)
        case 1: events == 0 ? w.null() : w.int(last)
        case 2: w.int(events)
        case 3: events == 0 ? w.null() : w.int(last - start)
        default: w.bool(events != 0 && t - last <= gap)
        }
    }
}
