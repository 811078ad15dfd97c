#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a `BinaryPlan` over one message: reads Avro or Protobuf binary
/// data, writes the topology's fields into the decoder's slots (strings as
/// ranges of the message, numbers also as text in scratch when a field
/// needs text), skips everything else. Any read past the end is
/// `truncated`.
struct BinaryRun {
    let plan: BinaryPlan
    let p: UnsafePointer<UInt8>
    let end: Int
    let slots: UnsafeMutablePointer<FieldSlot>
    let scratch: UnsafeMutablePointer<UInt8>
    let needsText: UnsafePointer<Bool>
    var i: Int
    /// Nested Protobuf groups being skipped.
    var groupDepth = 0

    init(plan: BinaryPlan, p: UnsafePointer<UInt8>, start: Int, end: Int, slots: UnsafeMutablePointer<FieldSlot>,
         scratch: UnsafeMutablePointer<UInt8>, needsText: UnsafePointer<Bool>)
    {
        self.plan = plan; self.p = p; self.i = start; self.end = end; self.slots = slots; self.scratch = scratch
        self.needsText = needsText
    }

    // MARK: Primitives

    @inline(__always)
    mutating func varint() throws(RejectReason) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < end else { throw .truncated }
            let b = p[i]
            i += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            guard shift < 64 else { throw .truncated }
        }
    }

    @inline(__always)
    mutating func zigzag() throws(RejectReason) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    @inline(__always)
    mutating func skip(_ n: Int) throws(RejectReason) {
        guard n >= 0, n <= end - i else { throw .truncated }
        i += n
    }

    @inline(__always)
    mutating func fixed32() throws(RejectReason) -> UInt32 {
        guard end - i >= 4 else { throw .truncated }
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: UInt32.self)
        i += 4
        return UInt32(littleEndian: v)
    }

    @inline(__always)
    mutating func fixed64() throws(RejectReason) -> UInt64 {
        guard end - i >= 8 else { throw .truncated }
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
        i += 8
        return UInt64(littleEndian: v)
    }

    // MARK: Slot writers

    @inline(__always)
    mutating func setInteger(_ slot: Int32, _ v: Int64) {
        let s = Int(slot)
        slots[s].kind = .number
        slots[s].number = Double(v)
        slots[s].isTime = false
        if needsText[s] { writeIntegerText(s, v) }
    }

    @inline(__always)
    mutating func setUnsigned(_ slot: Int32, _ v: UInt64) {
        if v <= UInt64(Int64.max) { setInteger(slot, Int64(v)); return }
        setDouble(slot, Double(v))
    }

    mutating func writeIntegerText(_ s: Int, _ v: Int64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes, enough for 20 digits
        var n = v.magnitude
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[23 - count] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
                count += 1
            } while n > 0
            let start = s * plan.textStride
            var used = start
            if v < 0 { scratch[used] = UInt8(ascii: "-"); used += 1 }
            memcpy(scratch + used, d.baseAddress! + 24 - count, count)
            used += count
            slots[s].inScratch = true
            slots[s].start = Int32(start)
            slots[s].length = Int32(used - start)
        }
    }

    @inline(__always)
    mutating func setDouble(_ slot: Int32, _ v: Double) {
        let s = Int(slot)
        slots[s].kind = .number
        slots[s].number = v
        slots[s].isTime = false
        if needsText[s] { writeDoubleText(s, v) }
    }

    mutating func writeDoubleText(_ s: Int, _ v: Double) {
        // JSON has no NaN or infinities; such a value reads as null.
        guard v.isFinite else { slots[s].kind = .null; return }
        if v == v.rounded(), abs(v) < 1e15 { writeIntegerText(s, Int64(v)); return }
        var text = v.description  // shortest round-trip text; small strings are inline
        let start = s * plan.textStride
        var n = 0
        text.withUTF8 { u in
            n = min(u.count, plan.textStride)
            memcpy(scratch + start, u.baseAddress!, n)
        }
        slots[s].inScratch = true
        slots[s].start = Int32(start)
        slots[s].length = Int32(n)
    }

    @inline(__always)
    mutating func setTime(_ slot: Int32, millis: Int64) {
        let s = Int(slot)
        slots[s].kind = .number
        slots[s].number = Double(millis)
        slots[s].isTime = true
        if needsText[s] { writeIntegerText(s, millis) }
    }

    @inline(__always)
    mutating func setBytes(_ slot: Int32, _ start: Int, _ length: Int, validate: Bool) throws(RejectReason) {
        if validate { try validateUTF8(start, length) }
        let s = Int(slot)
        slots[s].kind = .string
        slots[s].inScratch = false
        slots[s].start = Int32(start)
        slots[s].length = Int32(length)
    }

    @inline(__always)
    mutating func setSymbol(_ slot: Int32, _ symbol: Int) {
        let s = Int(slot)
        let n = Int(plan.symbolLength[symbol])
        let start = s * plan.textStride
        memcpy(scratch + start, plan.symbolPool + Int(plan.symbolStart[symbol]), n)
        slots[s].kind = .string
        slots[s].inScratch = true
        slots[s].start = Int32(start)
        slots[s].length = Int32(n)
    }

    @inline(__always)
    func validateUTF8(_ start: Int, _ length: Int) throws(RejectReason) {
        var k = start
        let e = start + length
        // ASCII eight bytes at a time.
        while e - k >= 8, UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { k += 8 }
        while k < e {
            let c = p[k]
            if c < 0x80 { k += 1; continue }
            var need = 0
            var min: UInt32 = 0
            var cp: UInt32
            if c & 0xE0 == 0xC0 { need = 1; cp = UInt32(c & 0x1F); min = 0x80 }
            else if c & 0xF0 == 0xE0 { need = 2; cp = UInt32(c & 0x0F); min = 0x800 }
            else if c & 0xF8 == 0xF0 { need = 3; cp = UInt32(c & 0x07); min = 0x10000 }
            else { throw .badUTF8 }
            guard e - k > need else { throw .badUTF8 }
            for j in 1...need {
                let cc = p[k + j]
                guard cc & 0xC0 == 0x80 else { throw .badUTF8 }
                cp = cp << 6 | UInt32(cc & 0x3F)
            }
            guard cp >= min, cp <= 0x10FFFF, !(0xD800...0xDFFF).contains(cp) else { throw .badUTF8 }
            k += need + 1
        }
    }

    // MARK: Avro

    mutating func avro(_ op: AvroOp) throws(RejectReason) {
        switch op.code {
        case .null:
            if op.slot >= 0 { slots[Int(op.slot)].kind = .null }
        case .boolean:
            guard i < end else { throw .truncated }
            let b = p[i]
            i += 1
            if op.slot >= 0 {
                slots[Int(op.slot)].kind = .bool
                slots[Int(op.slot)].boolValue = b != 0
            }
        case .int, .long:
            let v = try zigzag()
            if op.slot >= 0 { setInteger(op.slot, v) }
        case .timestampMillis, .timestampMicros:
            let v = try zigzag()
            if op.slot >= 0 {
                let ms = op.code == .timestampMillis ? v : floorDiv(v, 1000)
                setTime(op.slot, millis: ms)
            }
        case .float:
            let v = try fixed32()
            if op.slot >= 0 { setDouble(op.slot, Double(Float(bitPattern: v))) }
        case .double:
            let v = try fixed64()
            if op.slot >= 0 { setDouble(op.slot, Double(bitPattern: v)) }
        case .string, .bytes:
            let n = try zigzag()
            guard n >= 0, n <= Int64(end - i) else { throw .truncated }
            if op.slot >= 0 { try setBytes(op.slot, i, Int(n), validate: op.code == .string) }
            i += Int(n)
        case .fixed:
            try skip(Int(op.a))
        case .enumeration:
            let v = try zigzag()
            guard v >= 0, v < Int64(op.b) else { throw .truncated }
            if op.slot >= 0 { setSymbol(op.slot, Int(op.a) + Int(v)) }
        case .array, .map:
            let item = plan.avroOps[Int(op.a)]
            while true {
                var count = try zigzag()
                if count == 0 { break }
                if count < 0 {
                    guard count > Int64.min else { throw .truncated }
                    let size = try zigzag()
                    if size > 0 {  // the block's byte size: skip it whole
                        try skip(Int(clamping: size))
                        continue
                    }
                    count = -count
                }
                guard count <= Int64(end - i) else { throw .truncated }
                for _ in 0..<count {
                    if op.code == .map {
                        let k = try zigzag()
                        guard k >= 0 else { throw .truncated }
                        try skip(Int(clamping: k))
                    }
                    try avro(item)
                }
            }
        case .union:
            let branch = try zigzag()
            guard branch >= 0, branch < Int64(op.b) else { throw .truncated }
            try avro(plan.avroOps[Int(op.a) + Int(branch)])
        case .record:
            let first = Int(op.a)
            for k in 0..<Int(op.b) { try avro(plan.avroOps[first + k]) }
        }
    }

    // MARK: Protobuf

    mutating func protoMessage(_ m: Int32, until limit: Int) throws(RejectReason) {
        let msg = plan.protoMessages[Int(m)]
        let actions = plan.protoActions + Int(msg.first)
        let count = Int(msg.count)
        if msg.hasDefaults {
            for k in 0..<count where actions[k].writesDefault { writeDefault(actions[k]) }
        }
        while i < limit {
            let key = try varint()
            let number = Int32(truncatingIfNeeded: key >> 3)
            let wire = UInt8(key & 7)
            var action: UnsafeMutablePointer<ProtoAction>? = nil
            for k in 0..<count where actions[k].number == number { action = actions + k; break }
            guard let a = action else { try skipWire(wire, limit); continue }
            try protoField(a.pointee, wire: wire, limit: limit)
        }
        guard i == limit else { throw .truncated }
    }

    mutating func skipWire(_ wire: UInt8, _ limit: Int) throws(RejectReason) {
        switch wire {
        case 0: _ = try varint()
        case 1: guard limit - i >= 8 else { throw .truncated }; i += 8
        case 2:
            let n = try varint()
            guard n <= UInt64(max(0, limit - i)) else { throw .truncated }
            i += Int(n)
        case 5: guard limit - i >= 4 else { throw .truncated }; i += 4
        case 3:  // a group: skip to its end tag
            groupDepth += 1
            defer { groupDepth -= 1 }
            guard groupDepth <= 64 else { throw .truncated }
            while true {
                guard i < limit else { throw .truncated }
                let key = try varint()
                if key & 7 == 4 { return }
                try skipWire(UInt8(key & 7), limit)
            }
        default: throw .truncated
        }
    }

    mutating func writeDefault(_ a: ProtoAction) {
        switch a.code {
        case .bool: slots[Int(a.slot)].kind = .bool; slots[Int(a.slot)].boolValue = false
        case .string, .bytes:
            slots[Int(a.slot)].kind = .string; slots[Int(a.slot)].inScratch = false
            slots[Int(a.slot)].start = 0; slots[Int(a.slot)].length = 0
        case .enumeration:
            // The value numbered 0 (proto3's first value).
            var found = -1
            for k in 0..<Int(a.b) where plan.symbolNumber[Int(a.a) + k] == 0 { found = Int(a.a) + k; break }
            if found >= 0 { setSymbol(a.slot, found) } else { setInteger(a.slot, 0) }
        case .double, .float: setDouble(a.slot, 0)
        case .message, .timestamp: break
        default: setInteger(a.slot, 0)
        }
    }

    mutating func protoField(_ a: ProtoAction, wire: UInt8, limit: Int) throws(RejectReason) {
        switch a.code {
        case .message, .timestamp, .string, .bytes:
            guard wire == 2 else { try skipWire(wire, limit); return }
            let n = try varint()
            guard n <= UInt64(max(0, limit - i)) else { throw .truncated }
            let sub = i + Int(n)
            switch a.code {
            case .message:
                try protoMessage(a.a, until: sub)
            case .timestamp:
                var seconds: Int64 = 0, nanos: Int64 = 0
                while i < sub {
                    let key = try varint()
                    if key == 8 { seconds = Int64(bitPattern: try varint()) }
                    else if key == 16 { nanos = Int64(Int32(truncatingIfNeeded: try varint())) }
                    else { try skipWire(UInt8(key & 7), sub) }
                }
                guard i == sub else { throw .truncated }
                if a.slot >= 0 {
                    let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
                    guard !overflow else { throw .truncated }
                    setTime(a.slot, millis: ms + floorDiv(nanos, 1_000_000))
                }
            default:
                if a.slot >= 0 { try setBytes(a.slot, i, Int(n), validate: a.code == .string) }
                i = sub
            }
        case .double, .fixed64, .sfixed64:
            guard wire == 1 else { try skipWire(wire, limit); return }
            let v = try fixed64()
            switch a.code {
            case .double: setDouble(a.slot, Double(bitPattern: v))
            case .fixed64: setUnsigned(a.slot, v)
            default: setInteger(a.slot, Int64(bitPattern: v))
            }
        case .float, .fixed32, .sfixed32:
            guard wire == 5 else { try skipWire(wire, limit); return }
            let v = try fixed32()
            switch a.code {
            case .float: setDouble(a.slot, Double(Float(bitPattern: v)))
            case .fixed32: setInteger(a.slot, Int64(v))
            default: setInteger(a.slot, Int64(Int32(bitPattern: v)))
            }
        default:
            guard wire == 0 else { try skipWire(wire, limit); return }
            let v = try varint()
            switch a.code {
            case .int64: setInteger(a.slot, Int64(bitPattern: v))
            case .uint64: setUnsigned(a.slot, v)
            case .int32: setInteger(a.slot, Int64(Int32(truncatingIfNeeded: v)))
            case .uint32: setInteger(a.slot, Int64(UInt32(truncatingIfNeeded: v)))
            case .sint32, .sint64: setInteger(a.slot, Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))))
            case .bool: slots[Int(a.slot)].kind = .bool; slots[Int(a.slot)].boolValue = v != 0
            case .enumeration:
                let n = Int32(truncatingIfNeeded: v)
                var found = -1
                for k in 0..<Int(a.b) where plan.symbolNumber[Int(a.a) + k] == n { found = Int(a.a) + k; break }
                // An unknown value (a newer writer's) reads as its number.
                if found >= 0 { setSymbol(a.slot, found) } else { setInteger(a.slot, Int64(n)) }
            default: try skipWire(wire, limit)
            }
        }
    }
}

/// One zigzag varint at `p[i]` (Avro ints, Confluent message indexes).
@inline(__always)
func readZigzag(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int) throws(RejectReason) -> Int64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while true {
        guard i < end else { throw .truncated }
        let b = p[i]
        i += 1
        result |= UInt64(b & 0x7F) << shift
        if b < 0x80 { break }
        shift += 7
        guard shift < 64 else { throw .truncated }
    }
    return Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1)))
}

extension BinaryPlan {
    /// The length of the Avro datum at the start of `bytes` (e.g. in an
    /// object container file's block, where datums follow each other
    /// unmarked), or nil if it is truncated or malformed. Best with a plan
    /// compiled for no paths (it only skips).
    public func avroDatumLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard format == .avro, let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        let noText = UnsafeMutablePointer<Bool>.allocate(capacity: max(paths.count, 1))
        noText.initialize(repeating: false, count: max(paths.count, 1))
        let slots = UnsafeMutablePointer<FieldSlot>.allocate(capacity: max(paths.count, 1))
        slots.initialize(repeating: FieldSlot(), count: max(paths.count, 1))
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: maxTextBytes)
        defer { noText.deallocate(); slots.deallocate(); scratch.deallocate() }
        var r = BinaryRun(plan: self, p: base, start: 0, end: bytes.count, slots: slots, scratch: scratch, needsText: noText)
        do { try r.avro(avroRoot) } catch { return nil }
        return r.i
    }
}
