/// The field paths a topology reads, compiled into a trie the JSON scanner
/// walks while it validates an event, so only those fields are extracted.
public final class FieldTable: @unchecked Sendable {
    // Immutable after init; shared read-only between threads.
    public let paths: [FieldPath]
    /// Per node: first edge index and edge count; edges are contiguous.
    let nodeEdgeStart: [Int32]
    let nodeEdgeCount: [Int32]
    /// Per node: the field index it extracts, or -1.
    let nodeField: [Int32]
    /// Per edge: name bytes (offset, length) in `namePool`, child node.
    let edgeNameStart: [Int32]
    let edgeNameLength: [Int32]
    let edgeChild: [Int32]
    let namePool: [UInt8]

    /// Index of `path` in `paths`.
    public func index(of path: FieldPath) -> Int? { paths.firstIndex(of: path) }

    public init(paths: [FieldPath]) {
        var unique: [FieldPath] = []
        for p in paths where !unique.contains(p) { unique.append(p) }
        self.paths = unique

        // Build a pointer-free tree first, then flatten it breadth-first.
        final class Node { var children: [(String, Node)] = []; var field: Int32 = -1 }
        let root = Node()
        for (i, path) in unique.enumerated() {
            var node = root
            for c in path.components {
                if let next = node.children.first(where: { $0.0 == c })?.1 { node = next } else {
                    let next = Node()
                    node.children.append((c, next))
                    node = next
                }
            }
            node.field = Int32(i)
        }
        var order: [Node] = [root]
        var i = 0
        while i < order.count { order.append(contentsOf: order[i].children.map(\.1)); i += 1 }
        var nodeIndex: [ObjectIdentifier: Int32] = [:]
        for (n, node) in order.enumerated() { nodeIndex[ObjectIdentifier(node)] = Int32(n) }

        var es: [Int32] = [], ec: [Int32] = [], nf: [Int32] = []
        var ens: [Int32] = [], enl: [Int32] = [], ech: [Int32] = [], pool: [UInt8] = []
        for node in order {
            es.append(Int32(ens.count)); ec.append(Int32(node.children.count)); nf.append(node.field)
            for (name, child) in node.children {
                ens.append(Int32(pool.count)); enl.append(Int32(name.utf8.count)); pool.append(contentsOf: name.utf8)
                ech.append(nodeIndex[ObjectIdentifier(child)]!)
            }
        }
        nodeEdgeStart = es; nodeEdgeCount = ec; nodeField = nf
        edgeNameStart = ens; edgeNameLength = enl; edgeChild = ech; namePool = pool
    }
}

/// The JSON kind of an extracted field.
public enum FieldKind: UInt8, Sendable {
    case missing, null, bool, number, string, object, array
}

/// One extracted field of the current event. Byte ranges point into the
/// event buffer, or into the decoder's scratch buffer for unescaped strings.
public struct FieldSlot: Sendable {
    public var kind: FieldKind = .missing
    public var boolValue: Bool = false
    /// True when `start`/`length` index the scratch buffer.
    var inScratch: Bool = false
    var start: Int32 = 0
    var length: Int32 = 0
    /// Parsed value for numbers (finite), NaN if the number overflowed.
    public var number: Double = 0
    /// A binary format's logical time (Avro timestamp-millis/micros,
    /// google.protobuf.Timestamp): `number` is epoch milliseconds, whatever
    /// the topology's time unit.
    public var isTime: Bool = false
}
