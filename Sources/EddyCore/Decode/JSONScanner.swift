#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The trie of `FieldTable` as raw pointers, owned by an `EventDecoder`.
struct TrieView {
    var nodeEdgeStart: UnsafeMutablePointer<Int32>
    var nodeEdgeCount: UnsafeMutablePointer<Int32>
    var nodeField: UnsafeMutablePointer<Int32>
    var edgeNameStart: UnsafeMutablePointer<Int32>
    var edgeNameLength: UnsafeMutablePointer<Int32>
    var edgeChild: UnsafeMutablePointer<Int32>
    var namePool: UnsafeMutablePointer<UInt8>

    init(_ t: FieldTable) {
        func copy<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
            _ = UnsafeMutableBufferPointer(start: p, count: a.count).initialize(from: a)
            return p
        }
        nodeEdgeStart = copy(t.nodeEdgeStart); nodeEdgeCount = copy(t.nodeEdgeCount)
        nodeField = copy(t.nodeField); edgeNameStart = copy(t.edgeNameStart)
        edgeNameLength = copy(t.edgeNameLength); edgeChild = copy(t.edgeChild); namePool = copy(t.namePool)
    }

    func deallocate() {
        nodeEdgeStart.deallocate(); nodeEdgeCount.deallocate(); nodeField.deallocate()
        edgeNameStart.deallocate(); edgeNameLength.deallocate(); edgeChild.deallocate(); namePool.deallocate()
    }
}

private let maxDepth = 64

/// A validating, allocation-free JSON scanner. It checks the whole document
/// (RFC 8259: escapes, UTF-8, numbers, nesting) and records only the fields
/// the trie names into `slots`.
struct JSONScanner {
    let p: UnsafePointer<UInt8>
    let end: Int
    var i = 0
    let trie: TrieView
    let slots: UnsafeMutablePointer<FieldSlot>
    /// Unescaped string bytes go here; capacity >= document length.
    let scratch: UnsafeMutablePointer<UInt8>
    var scratchUsed = 0

    init(_ p: UnsafePointer<UInt8>, _ count: Int, trie: TrieView, slots: UnsafeMutablePointer<FieldSlot>, scratch: UnsafeMutablePointer<UInt8>) {
        self.p = p; self.end = count; self.trie = trie; self.slots = slots; self.scratch = scratch
    }

    /// Scans one top-level object followed only by white space.
    ///
    /// The top level, where nearly all wanted fields live, runs in one loop
    /// with the position in a local (registers); nested objects and arrays
    /// go through the recursive scanner.
    mutating func scanDocument() throws(RejectReason) {
        skipWhitespace()
        guard i < end else { throw .notJSON }
        guard p[i] == UInt8(ascii: "{") else {
            // Report a valid non-object as such, anything else as not JSON.
            try scanValue(depth: 0, node: -1)
            skipWhitespace()
            throw i == end ? .notObject : .notJSON
        }
        var i = self.i + 1
        let p = self.p, end = self.end
        @inline(__always) func ws() {
            while i < end, p[i] <= 0x20, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
        }
        ws()
        guard i < end else { throw .notJSON }
        if p[i] == UInt8(ascii: "}") {
            self.i = i + 1
        } else {
            let rootEdges = Int(trie.nodeEdgeCount[0])
            while true {
                guard i < end, p[i] == UInt8(ascii: "\"") else { throw .notJSON }
                // Member name: plain ASCII fast path, else the general scanner.
                let nameStart = i + 1
                var j = nameStart
                j = Self.skipPlain(p, j, end)
                while j < end, p[j] >= 0x20, p[j] < 0x80, p[j] != UInt8(ascii: "\""), p[j] != UInt8(ascii: "\\") { j += 1 }
                var child: Int32 = -1
                if j < end, p[j] == UInt8(ascii: "\"") {
                    i = j + 1
                    if rootEdges > 0 { child = match(0, rootEdges, p + nameStart, j - nameStart) }
                } else {
                    self.i = i
                    let escaped = try scanString()
                    i = self.i
                    child = findChild(0, nameStart, i - 1, escaped)
                }
                ws()
                guard i < end, p[i] == UInt8(ascii: ":") else { throw .notJSON }
                i += 1
                ws()
                guard i < end else { throw .notJSON }
                let field = child >= 0 ? trie.nodeField[Int(child)] : -1
                let c = p[i]
                if c == UInt8(ascii: "\"") {
                    // String value: plain fast path, else the general scanner.
                    let start = i + 1
                    var k = start
                    k = Self.skipPlain(p, k, end)
                    while k < end, p[k] >= 0x20, p[k] < 0x80, p[k] != UInt8(ascii: "\""), p[k] != UInt8(ascii: "\\") { k += 1 }
                    if k < end, p[k] == UInt8(ascii: "\"") {
                        if field >= 0 { record(field, .string, start, k - start) }
                        i = k + 1
                    } else {
                        self.i = i
                        if field >= 0 { try scanStringRecording(field) } else { _ = try scanString() }
                        i = self.i
                    }
                } else if c == UInt8(ascii: "-") || c &- 48 < 10 {
                    let start = i
                    self.i = i
                    try scanNumber()
                    i = self.i
                    if field >= 0 {
                        record(field, .number, start, i - start)
                        slots[Int(field)].number = parseJSONNumber(p + start, i - start)
                    }
                } else {
                    self.i = i
                    try scanValue(depth: 1, node: child)
                    i = self.i
                }
                ws()
                guard i < end else { throw .notJSON }
                if p[i] == UInt8(ascii: ",") { i += 1; ws(); continue }
                if p[i] == UInt8(ascii: "}") { i += 1; break }
                throw .notJSON
            }
            self.i = i
        }
        skipWhitespace()
        guard self.i == end else { throw .notJSON }
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while i < end {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    /// Scans a value at `p[i]`. `node` is the trie node for this position,
    /// or -1 when nothing below is wanted.
    mutating func scanValue(depth: Int, node: Int32) throws(RejectReason) {
        guard i < end else { throw .notJSON }
        let field = node >= 0 ? trie.nodeField[Int(node)] : -1
        let c = p[i]
        switch c {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw .tooDeep }
            let start = i
            try scanObject(depth: depth + 1, node: trie.nodeEdgeCount[Int(max(node, 0))] > 0 ? node : -1)
            if field >= 0 { record(field, .object, start, i - start) }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw .tooDeep }
            let start = i
            try scanArray(depth: depth + 1)
            if field >= 0 { record(field, .array, start, i - start) }
        case UInt8(ascii: "\""):
            if field >= 0 {
                try scanStringRecording(field)
            } else {
                _ = try scanString()
            }
        case UInt8(ascii: "t"):
            try literal("true")
            if field >= 0 { record(field, .bool, i - 4, 4); slots[Int(field)].boolValue = true }
        case UInt8(ascii: "f"):
            try literal("false")
            if field >= 0 { record(field, .bool, i - 5, 5); slots[Int(field)].boolValue = false }
        case UInt8(ascii: "n"):
            try literal("null")
            if field >= 0 { record(field, .null, i - 4, 4) }
        default:
            let start = i
            try scanNumber()
            if field >= 0 {
                record(field, .number, start, i - start)
                slots[Int(field)].number = parseJSONNumber(p + start, i - start)
            }
        }
    }

    @inline(__always)
    mutating func record(_ field: Int32, _ kind: FieldKind, _ start: Int, _ length: Int) {
        slots[Int(field)] = FieldSlot(kind: kind, boolValue: false, inScratch: false, start: Int32(start), length: Int32(length), number: 0)
    }

    @inline(__always)
    mutating func literal(_ word: StaticString) throws(RejectReason) {
        let n = word.utf8CodeUnitCount
        guard end - i >= n else { throw .notJSON }
        let w = word.utf8Start
        for k in 0..<n where p[i + k] != w[k] { throw .notJSON }
        i += n
    }

    mutating func scanObject(depth: Int, node: Int32) throws(RejectReason) {
        i += 1  // '{'
        skipWhitespace()
        guard i < end else { throw .notJSON }
        if p[i] == UInt8(ascii: "}") { i += 1; return }
        while true {
            guard i < end, p[i] == UInt8(ascii: "\"") else { throw .notJSON }
            let nameStart = i + 1
            let escaped = try scanString()
            let nameEnd = i - 1
            skipWhitespace()
            guard i < end, p[i] == UInt8(ascii: ":") else { throw .notJSON }
            i += 1
            skipWhitespace()
            let child = node >= 0 ? findChild(node, nameStart, nameEnd, escaped) : -1
            try scanValue(depth: depth, node: child)
            skipWhitespace()
            guard i < end else { throw .notJSON }
            if p[i] == UInt8(ascii: ",") { i += 1; skipWhitespace(); continue }
            if p[i] == UInt8(ascii: "}") { i += 1; return }
            throw .notJSON
        }
    }

    mutating func scanArray(depth: Int) throws(RejectReason) {
        i += 1  // '['
        skipWhitespace()
        guard i < end else { throw .notJSON }
        if p[i] == UInt8(ascii: "]") { i += 1; return }
        while true {
            try scanValue(depth: depth, node: -1)
            skipWhitespace()
            guard i < end else { throw .notJSON }
            if p[i] == UInt8(ascii: ",") { i += 1; skipWhitespace(); continue }
            if p[i] == UInt8(ascii: "]") { i += 1; return }
            throw .notJSON
        }
    }

    /// The child edge of `node` named by the member name `p[start..<end]`.
    func findChild(_ node: Int32, _ start: Int, _ nameEnd: Int, _ escaped: Bool) -> Int32 {
        let n = Int(node)
        let count = Int(trie.nodeEdgeCount[n])
        if count == 0 { return -1 }
        if escaped {
            // Rare: compare against the unescaped name.
            var name: [UInt8] = []
            var sub = JSONScanner(p, nameEnd + 1, trie: trie, slots: slots, scratch: scratch)
            sub.i = start - 1
            sub.scratchUsed = scratchUsed
            guard (try? sub.scanStringUnescaping()) != nil else { return -1 }
            name = Array(UnsafeBufferPointer(start: scratch + scratchUsed, count: sub.scratchUsed - scratchUsed))
            return name.withUnsafeBufferPointer { match(n, count, $0.baseAddress!, $0.count) }
        }
        return match(n, count, p + start, nameEnd - start)
    }

    @inline(__always)
    func match(_ n: Int, _ count: Int, _ name: UnsafePointer<UInt8>, _ length: Int) -> Int32 {
        let first = Int(trie.nodeEdgeStart[n])
        for e in first..<(first + count) where Int(trie.edgeNameLength[e]) == length {
            let candidate = trie.namePool + Int(trie.edgeNameStart[e])
            var k = 0
            while k < length, candidate[k] == name[k] { k += 1 }
            if k == length { return trie.edgeChild[e] }
        }
        return -1
    }

    /// Scans a string starting at its opening quote. Returns whether it had
    /// escapes. Validates escapes and UTF-8. Plain ASCII runs are skipped
    /// eight bytes at a time.
    @inline(__always)
    mutating func scanString() throws(RejectReason) -> Bool {
        i += 1
        var escaped = false
        while true {
            i = Self.skipPlain(p, i, end)
            guard i < end else { throw .notJSON }
            let c = p[i]
            if c == UInt8(ascii: "\"") { i += 1; return escaped }
            if c == UInt8(ascii: "\\") {
                escaped = true
                try skipEscape()
            } else if c < 0x20 {
                throw .notJSON
            } else if c < 0x80 {
                i += 1
            } else {
                try skipUTF8()
            }
        }
    }

    /// Whether any of 8 bytes is a quote, a backslash, a control byte or
    /// non-ASCII (SWAR; false positives only cost a slower step).
    @inline(__always)
    static func needsAttention(_ v: UInt64) -> Bool { attentionMask(v) != 0 }

    /// From `i`, skips 8 bytes at a time while none needs attention, then
    /// to the first that does: the lowest flagged byte of the mask is exact
    /// (the bit tricks only flag false bytes above a true one), so no byte
    /// loop is left to run. Returns where the byte-by-byte check goes on
    /// (at most 7 bytes before `end` if none was found).
    @inline(__always)
    static func skipPlain(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var i = i
        while i + 8 <= end {
            let mask = attentionMask(UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)))
            if mask != 0 { return i + mask.trailingZeroBitCount >> 3 }
            i += 8
        }
        return i
    }

    /// The high bit of each byte of `v` that is a quote, backslash, control
    /// character or non-ASCII, plus possibly bytes above one that is.
    @inline(__always)
    static func attentionMask(_ v: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let q = v ^ (ones &* 0x22)
        let b = v ^ (ones &* 0x5C)
        let quote = (q &- ones) & ~q
        let backslash = (b &- ones) & ~b
        let control = v &- (ones &* 0x20)
        return (quote | backslash | control | v) & high
    }

    mutating func scanStringRecording(_ field: Int32) throws(RejectReason) {
        let start = i + 1
        let save = i
        let escaped = try scanString()
        if !escaped {
            record(field, .string, start, i - 1 - start)
            return
        }
        i = save
        let scratchStart = scratchUsed
        try scanStringUnescaping()
        slots[Int(field)] = FieldSlot(kind: .string, boolValue: false, inScratch: true, start: Int32(scratchStart), length: Int32(scratchUsed - scratchStart), number: 0)
    }

    /// Scans a string, writing its unescaped bytes to the scratch buffer.
    mutating func scanStringUnescaping() throws(RejectReason) {
        i += 1
        while i < end {
            let c = p[i]
            if c == UInt8(ascii: "\"") { i += 1; return }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < end else { throw .notJSON }
                let e = p[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): put(e)
                case UInt8(ascii: "b"): put(0x08)
                case UInt8(ascii: "f"): put(0x0C)
                case UInt8(ascii: "n"): put(0x0A)
                case UInt8(ascii: "r"): put(0x0D)
                case UInt8(ascii: "t"): put(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), end - i >= 6, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") {
                        let save = i
                        i += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            i = save
                        }
                    }
                    if (0xD800..<0xE000).contains(scalar) { scalar = 0xFFFD }  // lone surrogate
                    putScalar(scalar)
                default: throw .notJSON
                }
            } else if c < 0x20 {
                throw .notJSON
            } else {
                put(c); i += 1
            }
        }
        throw .notJSON
    }

    @inline(__always)
    mutating func put(_ b: UInt8) { scratch[scratchUsed] = b; scratchUsed += 1 }

    mutating func putScalar(_ v: UInt32) {
        // An escape takes 6 bytes and yields at most 3 (4 for a pair of 12),
        // so the scratch buffer, as large as the input, always has room.
        switch v {
        case 0..<0x80: put(UInt8(v))
        case 0x80..<0x800: put(UInt8(0xC0 | (v >> 6))); put(UInt8(0x80 | (v & 0x3F)))
        case 0x800..<0x10000:
            put(UInt8(0xE0 | (v >> 12))); put(UInt8(0x80 | ((v >> 6) & 0x3F))); put(UInt8(0x80 | (v & 0x3F)))
        default:
            put(UInt8(0xF0 | (v >> 18))); put(UInt8(0x80 | ((v >> 12) & 0x3F)))
            put(UInt8(0x80 | ((v >> 6) & 0x3F))); put(UInt8(0x80 | (v & 0x3F)))
        }
    }

    @inline(__always)
    mutating func hex4() throws(RejectReason) -> UInt32 {
        guard end - i >= 4 else { throw .notJSON }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - 48)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - 87)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - 55)
            default: throw .notJSON
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    @inline(__always)
    mutating func skipEscape() throws(RejectReason) {
        guard i + 1 < end else { throw .notJSON }
        switch p[i + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            i += 2
        case UInt8(ascii: "u"):
            i += 2
            _ = try hex4()
        default: throw .notJSON
        }
    }

    /// Validates one multi-byte UTF-8 sequence at `p[i]` (RFC 3629 ranges).
    @inline(__always)
    mutating func skipUTF8() throws(RejectReason) {
        let c = p[i]
        @inline(__always) func cont(_ k: Int) -> Bool { i + k < end && p[i + k] & 0xC0 == 0x80 }
        switch c {
        case 0xC2...0xDF:
            guard cont(1) else { throw .badUTF8 }
            i += 2
        case 0xE0...0xEF:
            guard cont(1), cont(2) else { throw .badUTF8 }
            let c1 = p[i + 1]
            if c == 0xE0 && c1 < 0xA0 { throw .badUTF8 }  // overlong
            if c == 0xED && c1 > 0x9F { throw .badUTF8 }  // surrogate
            i += 3
        case 0xF0...0xF4:
            guard cont(1), cont(2), cont(3) else { throw .badUTF8 }
            let c1 = p[i + 1]
            if c == 0xF0 && c1 < 0x90 { throw .badUTF8 }
            if c == 0xF4 && c1 > 0x8F { throw .badUTF8 }
            i += 4
        default:
            throw .badUTF8
        }
    }

    /// Validates a JSON number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
    @inline(__always)
    mutating func scanNumber() throws(RejectReason) {
        if i < end, p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end else { throw .notJSON }
        if p[i] == UInt8(ascii: "0") {
            i += 1
        } else if p[i] &- 49 < 9 {
            i += 1
            while i < end, p[i] &- 48 < 10 { i += 1 }
        } else {
            throw .notJSON
        }
        if i < end, p[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end, p[i] &- 48 < 10 else { throw .notJSON }
            while i < end, p[i] &- 48 < 10 { i += 1 }
        }
        if i < end, p[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < end, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            guard i < end, p[i] &- 48 < 10 else { throw .notJSON }
            while i < end, p[i] &- 48 < 10 { i += 1 }
        }
    }
}
