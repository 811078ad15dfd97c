/// Output formats of `eddy replay`.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// JSON Lines: one object per row.
    case jsonl
    /// CSV (RFC 4180 quoting, LF line ends): a header row with the columns, then one row per line;
    /// strings unquoted unless they need it, null as an empty cell, arrays
    /// (last_n) and objects as their JSON text in one quoted cell.
    case csv
}

/// Turns the JSON Lines a replay writes into CSV rows with a fixed header.
/// Members are placed by name; a member the header lacks is dropped, a
/// column a line lacks is left empty.
public final class CSVConverter {
    public let header: [String]
    let names: [[UInt8]]
    let index: [[UInt8]: Int]
    var headerWritten = false
    var cells: [Range<Int>?]
    var scratch: [UInt8] = []

    public init(header: [String]) {
        var unique: [String] = []
        for h in header where !unique.contains(h) { unique.append(h) }
        self.header = unique
        names = unique.map { Array($0.utf8) }
        var index: [[UInt8]: Int] = [:]
        for (i, n) in names.enumerated() { index[n] = i }
        self.index = index
        cells = Array(repeating: nil, count: unique.count)
    }

    /// Converts the complete lines at the start of `json` and returns how
    /// many bytes it consumed (up to and including the last newline).
    public func convert(_ json: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Int {
        if !headerWritten {
            headerWritten = true
            for (i, n) in names.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                n.withUnsafeBytes { appendText($0, into: &out) }
            }
            out.append(0x0A)
        }
        var start = 0
        var consumed = 0
        let count = json.count
        while start < count {
            guard let nl = json[start...].firstIndex(of: 0x0A) else { break }
            let line = UnsafeRawBufferPointer(rebasing: json[start..<nl])
            if !line.isEmpty { row(line, base: start, json: json, into: &out) }
            start = nl + 1
            consumed = start
        }
        return consumed
    }

    func row(_ line: UnsafeRawBufferPointer, base: Int, json: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        for i in 0..<cells.count { cells[i] = nil }
        var next = 0
        JSONMembers.forEach(line) { name, range in
            var column = -1
            if next < names.count, names[next].withUnsafeBytes({ $0.elementsEqual(name) }) {
                column = next
            } else if let c = index[Array(name)] {
                column = c
            }
            if column >= 0 {
                cells[column] = range
                next = column + 1
            }
        }
        for (i, cell) in cells.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            guard let cell else { continue }
            appendCell(UnsafeRawBufferPointer(rebasing: line[cell]), into: &out)
        }
        out.append(0x0A)
    }

    /// One JSON value as a CSV cell.
    func appendCell(_ v: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        guard let first = v.first else { return }
        switch first {
        case UInt8(ascii: "\""):
            scratch.removeAll(keepingCapacity: true)
            JSONMembers.unescapeString(UnsafeRawBufferPointer(rebasing: v[1..<(v.count - 1)]), into: &scratch)
            scratch.withUnsafeBytes { appendText($0, into: &out) }
        case UInt8(ascii: "n"):
            return  // null
        default:
            appendText(v, into: &out)  // numbers, booleans, arrays and objects as JSON text
        }
    }

    /// Text as a cell, quoted (with doubled quotes) when it holds a comma,
    /// quote, line break, or leading/trailing space.
    func appendText(_ t: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        var needsQuotes = t.first == 0x20 || t.last == 0x20
        for c in t where c == UInt8(ascii: ",") || c == UInt8(ascii: "\"") || c == 0x0A || c == 0x0D {
            needsQuotes = true
            break
        }
        guard needsQuotes else { out.append(contentsOf: t); return }
        out.append(UInt8(ascii: "\""))
        for c in t {
            out.append(c)
            if c == UInt8(ascii: "\"") { out.append(c) }
        }
        out.append(UInt8(ascii: "\""))
    }
}
